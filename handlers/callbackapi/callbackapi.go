// Package callbackapi is the HTTP surface through which outside systems
// answer the jobs that wait on them: POST /v1/callbacks/{job}, a signed
// callback of a connector whose system answered "later" (the webhook
// connector's 202). It takes no API key: the connector of the job checks
// the call (connectors.CallbackVerifier: the Standard Webhooks signature
// under the connector's own secret, the replay window, the body), and the
// application stores the body as the job's answer only while the job waits
// on the handle it names (app.Service.AnswerJob). A refused callback
// changes nothing.
package callbackapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// MaxBodyBytes is the largest callback accepted: a job's largest answer
// (a connector may take less, see BodyLimiter).
const MaxBodyBytes = dsr.MaxAnswer

// BodyLimiter is a callback verifier whose callbacks are smaller than
// MaxBodyBytes: a longer body is refused (413) before it is read whole.
type BodyLimiter interface {
	// MaxCallbackBytes is the largest callback the connector takes.
	MaxCallbackBytes() int64
}

// Connectors finds the connector a job names.
type Connectors interface {
	Lookup(name string) (connectors.Connector, bool)
}

// Deps is what the surface needs. App and Log are required; Connectors nil
// means no connector takes callbacks (every callback is 404); Now nil
// means time.Now.
type Deps struct {
	App        *app.Service
	Connectors Connectors
	Log        *slog.Logger
	Now        func() time.Time
}

// Register adds POST /v1/callbacks/:job to r.
func Register(r *gin.Engine, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &api{d: d}
	r.POST("/v1/callbacks/:job", h.callback)
}

type api struct{ d Deps }

// typeSignature is the problem of a callback whose signature or timestamp
// does not check out, as for the hooks' resumes.
const typeSignature = "urn:dsar:problem:bad-signature"

// typeUnreachable is the problem of a callback the connector could not
// check now, and unreachableRetryAfter when to send it again (seconds).
const (
	typeUnreachable       = "urn:dsar:problem:system-unreachable"
	unreachableRetryAfter = "60"
)

// accepted answers a callback taken.
type accepted struct {
	Job    string `json:"job"`
	Status string `json:"status"`
}

func (h *api) callback(c *gin.Context) {
	ctx := c.Request.Context()
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusUnsupportedMediaType, Detail: "Send the callback as JSON with Content-Type: application/json."})
		return
	}
	// The job and its connector first: the route takes no key, so a body
	// is read only for a job that takes callbacks, and only up to what
	// its connector takes.
	id := c.Param("job")
	job, err := h.d.App.Job(ctx, id)
	if errors.Is(err, dsr.ErrNotFound) {
		notFound(c)
		return
	}
	if err != nil {
		httpkit.Error(c, h.d.Log, err)
		return
	}
	v, ok := h.verifier(job.Connector)
	if !ok {
		notFound(c) // a job of a connector that takes no callbacks: as if it did not exist
		return
	}
	limit := int64(MaxBodyBytes)
	if l, ok := v.(BodyLimiter); ok && l.MaxCallbackBytes() > 0 {
		limit = min(limit, l.MaxCallbackBytes())
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body must be at most %d bytes.", limit)})
		return
	}
	if err != nil {
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeMalformed, Title: "Malformed body", Status: http.StatusBadRequest, Detail: "The body could not be read."})
		return
	}
	log := h.d.Log.With("request_id", job.RequestID, "job", job.Connector+"/"+string(job.Action), "x_request_id", httpkit.RequestIDOf(c))
	handle, err := v.VerifyCallback(ctx, connectors.Action(job.Action), c.Request.Header, body, h.d.Now())
	switch {
	case errors.Is(err, connectors.ErrCallbackForbidden):
		log.WarnContext(ctx, "callback refused: not authenticated", "error", err)
		httpkit.Abort(c, httpkit.Problem{Type: typeSignature, Title: "Bad signature", Status: http.StatusForbidden,
			Detail: "The callback is not signed by the system this job waits on (OpenDSR: X-OpenDSR-Processor-Domain and X-OpenDSR-Signature, under the certificate its discovery names for the domain the connector trusts)."})
		return
	case errors.Is(err, connectors.ErrCallbackUnauthenticated):
		log.WarnContext(ctx, "callback refused: not authenticated", "error", err)
		httpkit.Abort(c, httpkit.Problem{Type: typeSignature, Title: "Bad signature", Status: http.StatusUnauthorized,
			Detail: "The callback is not signed with this connector's secret (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature), or its timestamp is outside the accepted window."})
		return
	case errors.Is(err, connectors.ErrCallbackInvalid):
		log.WarnContext(ctx, "callback refused: body not valid", "error", err)
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeValidation, Title: "Invalid callback", Status: http.StatusBadRequest,
			Detail: "The callback's body is not an answer the connector accepts; see errors.",
			Errors: []httpkit.FieldError{{Field: "(body)", Message: strings.TrimPrefix(err.Error(), connectors.ErrCallbackInvalid.Error()+": ")}}})
		return
	case err != nil:
		// The connector could not check it now (its system's key could
		// not be fetched): the sender is to try again, as callers do; a
		// warning, not an error, since anyone may send callbacks.
		log.WarnContext(ctx, "callback not checked: the connector could not reach its system", "error", err)
		c.Header("Retry-After", unreachableRetryAfter)
		httpkit.Abort(c, httpkit.Problem{Type: typeUnreachable, Title: "Cannot check now", Status: http.StatusServiceUnavailable,
			Detail: "The callback could not be checked now: the connector could not reach its system for the key it is checked with. Send it again later."})
		return
	}
	err = h.d.App.AnswerJob(ctx, id, handle, body, "callback:"+job.Connector)
	switch {
	case errors.Is(err, dsr.ErrAlreadyAnswered):
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeConflict, Title: "Already answered", Status: http.StatusConflict,
			Detail: "This job's wait was answered already; the answer is being processed."})
		return
	case errors.Is(err, dsr.ErrJobNotWaiting):
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeConflict, Title: "Not waiting", Status: http.StatusConflict,
			Detail: "This job is not waiting on the handle the callback names: it finished, is running (try again shortly), or waits on other work."})
		return
	case errors.Is(err, dsr.ErrNotFound):
		notFound(c)
		return
	case err != nil:
		httpkit.Error(c, h.d.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, accepted{Job: id, Status: "answered"})
}

// verifier returns the callback verifier of the connector called name.
func (h *api) verifier(name string) (connectors.CallbackVerifier, bool) {
	if h.d.Connectors == nil {
		return nil, false
	}
	conn, ok := h.d.Connectors.Lookup(name)
	if !ok {
		return nil, false
	}
	v, ok := conn.(connectors.CallbackVerifier)
	return v, ok
}

func notFound(c *gin.Context) {
	httpkit.Abort(c, httpkit.Problem{Status: http.StatusNotFound, Detail: "No job waiting on a callback has this id."})
}
