// Package taskpage is the page where the owner of a manual task answers it
// (see connectors/manual): GET /tasks/{token} shows the system, the action,
// what to do and the identifiers of the person the task is about, and POST
// takes the answer (a confirmation, "absent", or an export's file) and
// hands it to the job (app.Service.AnswerJob). The token is a signed,
// expiring link naming the job and the task; it is the owner's only
// credential. The page is server-rendered HTML (html/template, embedded),
// works without JavaScript, and is guarded against cross-site posts by the
// token in the form and a SameSite=Strict cookie that must match it.
package taskpage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/manual"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

//go:embed templates/page.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "templates/page.html"))

// csp is the page's Content-Security-Policy: no script at all, and of
// styles only the page's own <style> block, by its hash (no inline style
// otherwise, no 'unsafe-inline').
var csp = func() string {
	b, err := files.ReadFile("templates/page.html")
	if err != nil {
		panic(err)
	}
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(b)
	if m == nil {
		panic("taskpage: the page has no <style> block")
	}
	sum := sha256.Sum256(m[1])
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// App is what the page calls of the application (app.Service).
type App interface {
	Job(ctx context.Context, id string) (*dsr.Job, error)
	AnswerJob(ctx context.Context, jobID, handle string, answer []byte, by string) error
	Now() time.Time
}

// Deps is what the page needs; all are required.
type Deps struct {
	App App
	// Links checks task links (dsr.NewTaskSigner under the service's key).
	Links links.Verifier
	Log   *slog.Logger
}

// Register adds GET and POST /tasks/:token to r.
func Register(r *gin.Engine, d Deps) {
	h := &handler{app: d.App, links: d.Links, log: d.Log}
	r.GET(links.TasksPrefix+":token", h.show)
	r.POST(links.TasksPrefix+":token", h.answer)
}

type handler struct {
	app   App
	links links.Verifier
	log   *slog.Logger
}

// csrfCookie holds the value the page's forms must repeat.
const csrfCookie = "dsar_task_csrf"

// formOverhead is what a form adds to an upload: the other fields and the
// multipart framing.
const formOverhead = 64 << 10

// view is what the template renders.
type view struct {
	Title, Message, Error string
	Done, Failed          bool
	Task                  *taskView
	Token, CSRF, Action   string
}

type taskView struct {
	RequestID, System, What, Done string
	Export                        bool
	MaxUpload                     string
	MaxRecords                    int
	Identities                    []dsr.Identity
}

// open is a task a link names, checked against its job.
type open struct {
	link  manual.Link
	job   *dsr.Job
	token string
}

// problems the page shows, with their status.
var (
	errInvalid  = pageError{http.StatusNotFound, "This link is not valid", "The link is not one this service made, or it was changed. Open the link of the latest email about the task."}
	errExpired  = pageError{http.StatusGone, "This link has expired", "Every reminder email carries a fresh link: open the latest one."}
	errClosed   = pageError{http.StatusConflict, "This task is closed", "It was answered already, or it was closed or replaced. Nothing was changed."}
	errAnswered = pageError{http.StatusConflict, "This task was answered already", "An answer is being processed. Nothing was changed."}
	errForm     = pageError{http.StatusForbidden, "This form was not sent from the task page", "Open the link from the email again and answer there. Nothing was changed."}
)

type pageError struct {
	status         int
	title, message string
}

func (e pageError) Error() string { return e.title }

// find checks the link in the path and the job it names. It changes
// nothing.
func (h *handler) find(c *gin.Context) (*open, error) {
	token := c.Param("token")
	payload, _, err := links.ParseTaskToken(token, h.links, h.app.Now())
	switch {
	case errors.Is(err, links.ErrLinkExpired):
		return nil, errExpired
	case err != nil:
		return nil, errInvalid
	}
	l, err := manual.ParseLink(payload)
	if err != nil {
		return nil, errInvalid
	}
	job, err := h.app.Job(c.Request.Context(), l.Job)
	switch {
	case errors.Is(err, dsr.ErrNotFound):
		return nil, errInvalid
	case err != nil:
		return nil, err
	}
	if job.Connector != l.Connector || connectors.Action(job.Action) != l.Action {
		return nil, errInvalid
	}
	if task, err := manual.TaskOf(job.Handle); err != nil || task != l.Task ||
		(job.Status != dsr.JobWaiting && job.Status != dsr.JobRunning) {
		return nil, errClosed
	}
	if len(job.Answer) > 0 {
		return nil, errAnswered
	}
	return &open{link: l, job: job, token: token}, nil
}

func (h *handler) show(c *gin.Context) {
	o, err := h.find(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	csrf, err := h.csrf(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, http.StatusOK, h.form(o, csrf, ""))
}

// csrf returns the page's cookie value, setting a new one when there is
// none.
func (h *handler) csrf(c *gin.Context) (string, error) {
	if v, err := c.Cookie(csrfCookie); err == nil && len(v) == 32 {
		return v, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	http.SetCookie(c.Writer, &http.Cookie{Name: csrfCookie, Value: v, Path: links.TasksPrefix, HttpOnly: true,
		Secure: c.Request.TLS != nil || c.GetHeader("X-Forwarded-Proto") == "https", SameSite: http.SameSiteStrictMode})
	return v, nil
}

func (h *handler) form(o *open, csrf, problem string) view {
	l := o.link
	tv := &taskView{RequestID: o.job.RequestID, System: l.System, Export: l.Action == connectors.ActionExport,
		MaxUpload: size(l.MaxUpload), MaxRecords: l.MaxRecords, Identities: dsr.Actionable(o.job.Identities)}
	switch l.Action {
	case connectors.ActionExport:
		tv.What, tv.Done = "export the person's records", "exported the records"
	case connectors.ActionErase:
		tv.What, tv.Done = "erase the person's records", "erased the person's records"
	default:
		tv.What, tv.Done = "opt the person out (stop selling, sharing or marketing use of their data)", "opted the person out"
	}
	return view{Title: "Task: " + tv.What, Task: tv, Token: o.token, CSRF: csrf, Action: links.TaskPath(o.token), Error: problem}
}

// size writes a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (h *handler) answer(c *gin.Context) {
	o, err := h.find(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	limit := int64(formOverhead)
	if o.link.Action == connectors.ActionExport {
		limit += o.link.MaxUpload
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	if err := c.Request.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		h.formError(c, o, err)
		return
	}
	if c.Request.MultipartForm == nil {
		if err := c.Request.ParseForm(); err != nil {
			h.formError(c, o, err)
			return
		}
	}
	defer func() {
		if c.Request.MultipartForm != nil {
			_ = c.Request.MultipartForm.RemoveAll()
		}
	}()
	cookie, _ := c.Cookie(csrfCookie)
	csrf := c.Request.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(c.Request.PostFormValue("token")), []byte(o.token)) != 1 ||
		cookie == "" || subtle.ConstantTimeCompare([]byte(cookie), []byte(csrf)) != 1 {
		h.fail(c, errForm)
		return
	}
	ans := manual.Answer{Task: o.link.Task, Kind: c.Request.PostFormValue("answer")}
	if err := ans.Check(o.link.Action); err != nil {
		h.render(c, http.StatusUnprocessableEntity, h.form(o, csrf, "Choose one of the answers below."))
		return
	}
	switch ans.Kind {
	case manual.AnswerConfirm:
		if s := strings.TrimSpace(c.Request.PostFormValue("count")); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || n > 1e12 {
				h.render(c, http.StatusUnprocessableEntity, h.form(o, csrf, "The count must be a whole number of records, 0 or more; leave it empty if you do not know it."))
				return
			}
			ans.Count = &n
		}
	case manual.AnswerUpload:
		f, fh, err := c.Request.FormFile("file")
		if err != nil {
			h.render(c, http.StatusUnprocessableEntity, h.form(o, csrf, "Choose the file to upload."))
			return
		}
		recs, err := manual.ParseUpload(f, fh.Filename, o.link.MaxUpload, o.link.MaxRecords)
		_ = f.Close()
		if errors.Is(err, manual.ErrTooLarge) {
			h.render(c, http.StatusRequestEntityTooLarge, h.form(o, csrf, "The file is too large: at most "+size(o.link.MaxUpload)+". Nothing was stored."))
			return
		}
		if err != nil {
			h.render(c, http.StatusUnprocessableEntity, h.form(o, csrf, "The file was not accepted: "+err.Error()+". Nothing was stored; correct it and upload it again."))
			return
		}
		ans.Records = recs
	}
	if err := ans.Check(o.link.Action); err != nil {
		h.render(c, http.StatusUnprocessableEntity, h.form(o, csrf, "Choose one of the answers below."))
		return
	}
	body, err := json.Marshal(ans)
	if err != nil {
		h.fail(c, err)
		return
	}
	if len(body) > dsr.MaxAnswer {
		h.render(c, http.StatusRequestEntityTooLarge, h.form(o, csrf, "The records are too large to store. Nothing was stored."))
		return
	}
	if err := h.store(c.Request.Context(), o, body); err != nil {
		h.fail(c, err)
		return
	}
	h.log.InfoContext(c.Request.Context(), "manual task answered", "request_id", o.job.RequestID, "connector", o.job.Connector, "answer", ans.Kind)
	h.render(c, http.StatusOK, view{Title: "Thank you", Done: true,
		Message: "Your answer was recorded and the request goes on. You can close this page."})
}

// store hands the answer to the job. A poll of the job that runs meanwhile
// gives it a new handle for the same task: the answer then goes to that.
func (h *handler) store(ctx context.Context, o *open, body []byte) error {
	by := "task owner (" + o.job.Connector + ")"
	job := o.job
	for i := 0; ; i++ {
		err := h.app.AnswerJob(ctx, job.ID, job.Handle, body, by)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, dsr.ErrAlreadyAnswered):
			return errAnswered
		case !errors.Is(err, dsr.ErrJobNotWaiting):
			return err
		case i == 4:
			return errClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 100 * time.Millisecond):
		}
		if job, err = h.app.Job(ctx, job.ID); err != nil {
			return err
		}
		if task, err := manual.TaskOf(job.Handle); err != nil || task != o.link.Task {
			return errClosed
		}
	}
}

func (h *handler) formError(c *gin.Context, o *open, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.render(c, http.StatusRequestEntityTooLarge, view{Title: "The file is too large", Failed: true,
			Message: "At most " + size(o.link.MaxUpload) + " may be uploaded. Nothing was stored; go back and choose a smaller file."})
		return
	}
	h.render(c, http.StatusBadRequest, view{Title: "The form could not be read", Failed: true, Message: "Go back and send it again. Nothing was stored."})
}

func (h *handler) fail(c *gin.Context, err error) {
	var pe pageError
	if errors.As(err, &pe) {
		h.render(c, pe.status, view{Title: pe.title, Message: pe.message, Failed: true})
		return
	}
	h.log.ErrorContext(c.Request.Context(), "task page failed", "error", err)
	h.render(c, http.StatusInternalServerError, view{Title: "Something went wrong", Failed: true,
		Message: "Nothing was changed. Try again in a few minutes."})
}

func (h *handler) render(c *gin.Context, status int, v view) {
	hd := c.Writer.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", csp)
	c.Status(status)
	if err := page.Execute(c.Writer, v); err != nil {
		h.log.ErrorContext(c.Request.Context(), "task page not rendered", "error", err)
	}
	c.Abort()
}
