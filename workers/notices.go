package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/drp"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/internal/netguard"
	"github.com/dsar-project/dsar/internal/opendsr"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/workers/notify"
)

// TypeNotice sends one notice to a request's subject.
const TypeNotice = "dsar:notice"

type noticePayload struct {
	RequestID string `json:"request_id"`
	Notice    string `json:"notice"`
}

// NewNoticeTask returns the task that sends a notice. Its task id is
// "notice:<notice>:<request id>"; the payload carries no personal data.
func NewNoticeTask(requestID, notice string) (*asynq.Task, []asynq.Option) {
	b, _ := json.Marshal(noticePayload{RequestID: requestID, Notice: notice})
	return asynq.NewTask(TypeNotice, b), []asynq.Option{asynq.TaskID("notice:" + notice + ":" + requestID)}
}

// EnqueueNotice enqueues the sending of a notice that is pending on a
// request, on the notice queue (NoticeQueue; a verification code on the
// code queue, CodeQueue), so a backlog of work never holds up a receipt,
// nor a backlog of receipts a verification code. A notice already queued is
// not queued again.
func (q *Queue) EnqueueNotice(ctx context.Context, requestID, notice string) error {
	_, err := q.enqueueNotice(ctx, requestID, notice)
	return err
}

func (q *Queue) enqueueNotice(ctx context.Context, requestID, notice string) (bool, error) {
	t, opts := NewNoticeTask(requestID, notice)
	return q.enqueue(ctx, noticeQueueOf(q.name, notice), t, "notice:"+notice+":"+requestID, append(opts, asynq.MaxRetry(q.maxRetry), asynq.Timeout(2*time.Minute)))
}

// Notifier delivers a message to a person.
type Notifier interface {
	Send(ctx context.Context, m notify.Message) error
}

// NoticeOptions configures what notices say and link to.
type NoticeOptions struct {
	// PublicURL is where the API is reached from outside, e.g.
	// https://privacy.example.com; download links start with it.
	PublicURL string
	// PortalURL is where the privacy portal's pages are; verification
	// emails link to PortalURL/verify#request=...&token=... (the token in
	// the fragment never reaches a server log). Empty: the email gives the
	// code only.
	PortalURL string
	// MaxRounds caps the verification codes sent for one request.
	MaxRounds int
	// CodeTTL is how long a verification code works.
	CodeTTL time.Duration
	// LinkTTL is how long a download link works.
	LinkTTL time.Duration
	// Links signs download links.
	Links *dsr.LinkSigner
}

// NoticeStore is what sending notices reads and writes in the store.
type NoticeStore interface {
	AuditStore
	Request(ctx context.Context, id string) (*dsr.Request, error)
	// Jobs are read for the post-processing hook's outcome, and for the
	// results of an OpenDSR status.
	Jobs(ctx context.Context, requestID string) ([]dsr.Job, error)
	NoticeSent(ctx context.Context, id, notice string) error
	VerificationSent(ctx context.Context, id string) error
	IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error
	AddStatusToken(ctx context.Context, id, tokenHash string) error
}

// CodeHasher hashes verification codes (dsr.BlindIndex does).
type CodeHasher interface {
	HashCode(requestID, code string) string
}

// NoticeDeps is what a NoticeHandler works with.
type NoticeDeps struct {
	Store NoticeStore
	Index CodeHasher
	// Notifier delivers notices; nil drops them (tests that send none).
	Notifier Notifier
	// Escalation is where alerts (reminders, overdue) go.
	Escalation EscalationOptions
	// Hooks: the post-processing hook (PostURL, Secret) is told outcomes.
	Hooks HookOptions
	// CallbackClient posts the status of Data Rights Protocol requests to their
	// agents' status_callback; nil: a client that reaches public
	// addresses only (internal/netguard).
	CallbackClient *http.Client
	// DRPAgents are the agents still trusted (the directory of
	// DSAR_DRP_AGENTS_FILE): a request's status goes to its callback only
	// while its agent is one of them; an agent removed from the directory
	// is told nothing more. Nil: every agent (tests).
	DRPAgents drp.Directory
	// OpenDSR signs the status callbacks to OpenDSR controllers (nil: this
	// service is no processor, and none are sent).
	OpenDSR *opendsr.Signer
	// OpenDSRControllers are the controllers still allowed
	// (DSAR_OPENDSR_CONTROLLERS): a controller removed from them is told
	// nothing more. Nil: every controller (tests).
	OpenDSRControllers map[string][32]byte
	// OpenDSRBase is the public URL of this processor's OpenDSR routes,
	// under which the callbacks' results_url is.
	OpenDSRBase string
	Log         *slog.Logger
}

// NoticeHandler handles TypeNotice: the notices to subjects, and the
// alerts to the escalation channel.
type NoticeHandler struct {
	store      NoticeStore
	index      CodeHasher
	notifier   Notifier
	escalation EscalationOptions
	webhook    *webhook.Sender
	hooks      HookOptions
	hook       *webhook.Sender
	callbacks  *http.Client
	drpAgents  drp.Directory
	openDSR    *opendsr.Signer
	openDSRCon map[string][32]byte
	openDSRURL string
	audit      func(ctx context.Context, requestID, kind string, data map[string]string)
	log        *slog.Logger
	notices    NoticeOptions
	now        func() time.Time
}

// NewNoticeHandler returns a NoticeHandler; now nil means time.Now.
func NewNoticeHandler(d NoticeDeps, o NoticeOptions, now func() time.Time) *NoticeHandler {
	now = orNow(now)
	h := &NoticeHandler{store: d.Store, index: d.Index, notifier: d.Notifier, escalation: d.Escalation, log: d.Log, notices: o, now: now,
		webhook: webhook.New(d.Escalation.Client, d.Escalation.WebhookSecret, webhook.WithClock(now), webhook.WithPrevious(d.Escalation.WebhookPrevious)),
		hooks:   d.Hooks, hook: webhook.New(d.Hooks.Client, d.Hooks.Secret, webhook.WithClock(now), webhook.WithPrevious(d.Hooks.Previous)),
		audit: auditor{store: d.Store, log: d.Log}.audit, callbacks: d.CallbackClient, drpAgents: d.DRPAgents, openDSR: d.OpenDSR, openDSRCon: d.OpenDSRControllers, openDSRURL: d.OpenDSRBase}
	if h.callbacks == nil {
		h.callbacks = netguard.Client(netguard.Options{Timeout: 10 * time.Second})
	}
	return h
}

// ProcessTask sends one pending notice (see SendNotice).
func (h *NoticeHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl noticePayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.RequestID == "" || !dsr.IsNotice(pl.Notice) {
		return fmt.Errorf("notice: malformed payload: %w", asynq.SkipRetry)
	}
	err := h.SendNotice(ctx, pl.RequestID, pl.Notice)
	if err != nil {
		h.log.WarnContext(ctx, "notice not sent", "request_id", pl.RequestID, "notice", pl.Notice, "error", err)
	}
	return err
}

// SendNotice sends a notice that is pending on a request to its subject,
// then marks it sent. A notice no longer pending is not sent again; a
// request that does not notify, or has no email, drops it. A message the
// mail system refuses for good is dropped (and logged) rather than retried.
// Its error never quotes the subject's identities.
func (h *NoticeHandler) SendNotice(ctx context.Context, requestID, notice string) (err error) {
	req, err := h.store.Request(ctx, requestID)
	if errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("notice: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("notice: %w", err)
	}
	defer func() { err = redactErr(err, req.Identities) }()
	if !slices.Contains(req.PendingNotices, notice) {
		return nil
	}
	if notice == dsr.NoticeProtocolStatus {
		if req.OpenDSR != nil {
			return h.sendOpenDSRStatus(ctx, req)
		}
		return h.sendDRPStatus(ctx, req)
	}
	if notice == dsr.NoticeHookOutcome {
		if err := h.sendOutcome(ctx, req); err != nil {
			return err
		}
		return h.store.NoticeSent(ctx, req.ID, notice)
	}
	if dsr.IsAlert(notice) {
		if err := h.sendAlert(ctx, req, notice); err != nil {
			return err
		}
		return h.store.NoticeSent(ctx, req.ID, notice)
	}
	to := subjectEmail(req)
	if !req.Notify || to == "" || h.notifier == nil {
		h.log.InfoContext(ctx, "notice dropped: the request does not notify its subject", "request_id", req.ID, "notice", notice)
		return h.store.NoticeSent(ctx, req.ID, notice)
	}
	msg, err := h.compose(ctx, req, notice, to)
	if errors.Is(err, dsr.ErrConflict) {
		// The request moved on (a verification for a request no longer
		// verifying): nothing to say any more.
		return h.store.NoticeSent(ctx, req.ID, notice)
	}
	if err != nil {
		return fmt.Errorf("compose %s notice: %w", notice, err)
	}
	err = h.notifier.Send(ctx, msg)
	if err == nil && notice == dsr.NoticeVerify {
		err = h.store.VerificationSent(ctx, req.ID)
	}
	if errors.Is(err, notify.ErrRejected) {
		h.log.WarnContext(ctx, "notice refused by the mail system; not retried", "request_id", req.ID, "notice", notice, "error", redact(err.Error(), req.Identities))
		return h.store.NoticeSent(ctx, req.ID, notice)
	}
	if err != nil {
		return fmt.Errorf("send %s notice: %w", notice, err)
	}
	if err := h.store.NoticeSent(ctx, req.ID, notice); err != nil {
		return err
	}
	h.log.InfoContext(ctx, "notice sent", "request_id", req.ID, "notice", notice)
	return nil
}

// subjectEmail is the email the subject gave, if any.
func subjectEmail(r *dsr.Request) string {
	for _, id := range r.Identities {
		if id.Kind == dsr.KindEmail && id.Source == dsr.SourceSubject {
			return id.Value
		}
	}
	return ""
}

// newStatusToken makes a new status token for request id, stores only its
// hash, and returns the token.
func (h *NoticeHandler) newStatusToken(ctx context.Context, id string) (string, error) {
	token, err := dsr.NewToken()
	if err != nil {
		return "", err
	}
	if err := h.store.AddStatusToken(ctx, id, dsr.HashToken(token)); err != nil {
		return "", err
	}
	return token, nil
}

// compose writes the message of a notice from its template. Verification
// and merge notices make their secrets here, store only their hashes, and
// put the secrets in the message alone.
func (h *NoticeHandler) compose(ctx context.Context, r *dsr.Request, notice, to string) (notify.Message, error) {
	m := notify.Message{To: to, RequestID: r.ID, Kind: notice}
	data := newMessage(r)
	switch notice {
	case dsr.NoticeReceipt:
		data.Verifying = r.Status == dsr.StatusVerifying
	case dsr.NoticeVerify:
		if v := r.Verification; v != nil && h.notices.MaxRounds > 0 && v.Round >= h.notices.MaxRounds {
			return m, fmt.Errorf("%w: %d codes sent already", dsr.ErrConflict, v.Round)
		}
		code, err := dsr.NewCode()
		if err != nil {
			return m, err
		}
		token, err := dsr.NewToken()
		if err != nil {
			return m, err
		}
		if err := h.store.IssueVerification(ctx, r.ID, h.index.HashCode(r.ID, code), dsr.HashToken(token), h.now().Add(h.notices.CodeTTL)); err != nil {
			return m, err
		}
		data.Code, data.CodeTTL = code, h.notices.CodeTTL
		data.VerifyLink = links.Verify(h.notices.PortalURL, r.ID, token)
		if r.Agent != nil {
			data.Agent, data.AgentName = true, r.Agent.Name
		}
		if r.DRP != nil {
			data.DRPAgent = r.DRP.Agent
		}
		if !links.FiledBySubject(r.Source) {
			// Filed for the person (by an agent): give them, with each
			// code, a status token the portal asks for with it. A new one
			// each time, so a resent email is never without one.
			st, err := h.newStatusToken(ctx, r.ID)
			if err != nil {
				return m, err
			}
			data.StatusToken = st
		}
	case dsr.NoticeCompleted:
		if r.Type == dsr.TypeAccess {
			data.ExportUntil = h.now().Add(h.notices.LinkTTL).UTC().Truncate(time.Second)
			data.ExportLink = links.Export(h.notices.PublicURL, r.ID, data.ExportUntil, h.notices.Links)
		}
	case dsr.NoticeDenied:
		data.Reason = "no reason was recorded"
		if n := len(r.History); n > 0 && r.History[n-1].Reason != "" {
			data.Reason = r.History[n-1].Reason
		}
	case dsr.NoticeExtended:
		if r.Extension == nil {
			return m, fmt.Errorf("%w: no extension recorded", dsr.ErrConflict)
		}
		data.Reason = r.Extension.Reason
	case dsr.NoticeMerged:
		token, err := h.newStatusToken(ctx, r.ID)
		if err != nil {
			return m, err
		}
		data.StatusToken = token
		data.StatusLink = links.Status(h.notices.PublicURL, r.ID)
	default:
		return m, fmt.Errorf("unknown notice %q", notice)
	}
	var err error
	m.Subject, m.Text, err = render(notice, data)
	return m, err
}

// quoted renders one line of someone else's text (an agent's name) inline
// as data: in double quotes, with quotes, backslashes and any character
// that does not print escaped, so where it ends is never in doubt; and
// isolated (U+2068 ... U+2069), so a right-to-left name cannot reorder the
// words around it.
func quoted(s string) string {
	return "\u2068" + strconv.Quote(s) + "\u2069"
}

// quoteBlock renders free text (a reason an agent wrote) as a quoted
// block: every line after "    > ", so none of it starts a line where the
// message's own words do. Characters that break lines, reorder text or do
// not print are dropped, whatever the store holds. It ends with a line
// break.
func quoteBlock(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(s)
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.Map(func(r rune) rune {
			if r == '\t' {
				return ' '
			}
			if dsr.Hidden(r) && r != 0x200C && r != 0x200D {
				return -1
			}
			return r
		}, line)
		b.WriteString("    > " + line + "\n")
	}
	return b.String()
}
