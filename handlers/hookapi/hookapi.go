// Package hookapi is the HTTP surface the business's pre-fan-out hook
// calls back: POST /v1/hooks/resume/{id}, which lifts the hold the hook
// put on a request. It is signed in the Standard Webhooks scheme with
// DSAR_HOOK_SECRET instead of an API key: a call whose signature or
// timestamp does not check out is 401 and changes nothing.
package hookapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/webhook"
)

// MaxBodyBytes is the largest resume accepted (64 KiB).
const MaxBodyBytes = 64 << 10

// Deps is what the hooks' surface needs. App and Log are required; without
// Secret every resume is refused (404: no hook is configured); Now nil
// means time.Now.
type Deps struct {
	App    *app.Service
	Secret webhook.Secret
	// Previous, while Secret changes, is accepted too.
	Previous webhook.Secret
	Log      *slog.Logger
	Now      func() time.Time
}

// Secrets returns the secrets a resume may be signed with.
func (d Deps) Secrets() []webhook.Secret {
	if len(d.Previous) > 0 {
		return []webhook.Secret{d.Secret, d.Previous}
	}
	return []webhook.Secret{d.Secret}
}

// Register adds POST /v1/hooks/resume/:id to r.
func Register(r *gin.Engine, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &api{d: d}
	r.POST("/v1/hooks/resume/:id", h.resume)
}

type api struct{ d Deps }

// resumeBody is a resume: the request it resumes (signed with the body, so
// a resume of one request cannot be replayed against another) and the
// identities it adds.
type resumeBody struct {
	RequestID     string             `json:"request_id"`
	AddIdentities []dsr.HookIdentity `json:"add_identities"`
}

// resumed answers a resume.
type resumed struct {
	RequestID  string     `json:"request_id"`
	Status     dsr.Status `json:"status"`
	ResumedAt  *time.Time `json:"resumed_at"`
	Identities int        `json:"identities"`
}

// The problem of a resume whose signature does not check out.
const (
	typeSignature  = "urn:dsar:problem:bad-signature"
	titleSignature = "Bad signature"
)

func (h *api) resume(c *gin.Context) {
	if len(h.d.Secret) == 0 {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusNotFound, Detail: "No pre-fan-out hook is configured (DSAR_HOOK_SECRET)."})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body must be at most %d bytes.", MaxBodyBytes)})
		return
	}
	if err != nil {
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeMalformed, Title: "Malformed body", Status: http.StatusBadRequest, Detail: "The body could not be read."})
		return
	}
	id := c.Param("id")
	logID := id // anyone may send a path: only a request id's form is logged
	if !dsr.ValidID(id) {
		logID = "(not a request id)"
	}
	msgID, err := webhook.Verify(c.Request.Header, body, h.d.Now(), 0, h.d.Secrets()...)
	if err != nil {
		h.d.Log.WarnContext(c.Request.Context(), "hook resume refused: signature", "request_id", logID, "error", err)
		detail := "The webhook-signature does not match this body under the hook's secret."
		switch {
		case errors.Is(err, webhook.ErrUnsigned):
			detail = "Sign the call: webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks, DSAR_HOOK_SECRET)."
		case errors.Is(err, webhook.ErrStale):
			detail = "The webhook-timestamp is more than 5 minutes from the server's clock: a replay, or a clock far off."
		}
		httpkit.Abort(c, httpkit.Problem{Type: typeSignature, Title: titleSignature, Status: http.StatusUnauthorized, Detail: detail})
		return
	}
	var b resumeBody
	if err := httpkit.Strict(body, &b); err != nil {
		p := httpkit.Problem{Type: httpkit.TypeMalformed, Title: "Malformed body", Status: http.StatusBadRequest,
			Detail: "The body is not a resume: a JSON object with request_id and, optionally, add_identities."}
		var field *httpkit.BodyFieldError
		if errors.As(err, &field) {
			p.Errors = []httpkit.FieldError{{Field: field.Field, Message: field.Message}}
		}
		httpkit.Abort(c, p)
		return
	}
	if b.RequestID != id {
		h.d.Log.WarnContext(c.Request.Context(), "hook resume refused: signed for another request", "request_id", logID)
		httpkit.Abort(c, httpkit.Problem{Type: typeSignature, Title: titleSignature, Status: http.StatusUnauthorized,
			Detail: "The signed body's request_id is not the request in the path."})
		return
	}
	rec, err := h.d.App.ResumeHook(c.Request.Context(), id, msgID, b.AddIdentities)
	if err != nil {
		httpkit.Error(c, h.d.Log, err)
		return
	}
	c.JSON(http.StatusOK, resumed{RequestID: rec.Request.ID, Status: rec.Request.Status, ResumedAt: rec.Request.HookHold.ResumedAt,
		Identities: len(rec.Request.Identities)})
}
