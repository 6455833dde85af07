package httpkit

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// Problem is an RFC 9457 problem detail, the body of every error response
// (Content-Type application/problem+json). It never quotes input values.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RequestID is the X-Request-Id of the HTTP exchange, for support.
	RequestID string `json:"request_id,omitempty"`
	// TriesLeft, on a failed verification, says how many attempts remain.
	TriesLeft *int `json:"tries_left,omitempty"`
}

// FieldError is one problem with one input field.
type FieldError struct {
	// Field is a dotted path into the body ("subject.email") or a query
	// parameter name.
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem type URIs. docs/api.md describes each.
const (
	TypeBlank         = "about:blank"
	TypeValidation    = "urn:dsar:problem:validation"
	TypeMalformed     = "urn:dsar:problem:malformed-body"
	TypeConflict      = "urn:dsar:problem:conflict"
	TypeNotAvailable  = "urn:dsar:problem:export-not-available"
	TypeKeyReused     = "urn:dsar:problem:idempotency-key-reused"
	TypeRateLimited   = "urn:dsar:problem:rate-limited"
	TypeVerifyFailed  = "urn:dsar:problem:verification-failed"
	TypeVerifyLocked  = "urn:dsar:problem:verification-locked"
	TypeProofRequired = "urn:dsar:problem:proof-required"
	TypeFourEyes      = "urn:dsar:problem:four-eyes"
	TypeStorageFull   = "urn:dsar:problem:storage-full"
)

// storageFullKey marks, on the gin context, an exchange that failed because
// the store's disk is full; StorageWatch reads it.
const storageFullKey = "dsar.storage_full"

// MarkStorageFull records on c that the store's disk was found full, so
// StorageWatch fails readiness until a write succeeds. Error does it for
// ErrStorageFull; a handler that answers otherwise (a partly saved batch)
// calls it itself.
func MarkStorageFull(c *gin.Context) {
	c.Set(storageFullKey, true)
}

// storageRetryAfter is the Retry-After of a 503 for a full disk, in seconds.
const storageRetryAfter = "60"

// Abort writes p as application/problem+json and stops the handler chain.
// An empty Type is about:blank, an empty Title the status's text.
func Abort(c *gin.Context, p Problem) {
	if p.Type == "" {
		p.Type = TypeBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = c.Request.URL.Path
	p.RequestID = RequestIDOf(c)
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// Error answers err as its problem (ProblemOf), logging what the caller
// cannot act on (a full disk, a failure of the server).
func Error(c *gin.Context, log *slog.Logger, err error) {
	p := ProblemOf(err)
	switch p.Status {
	case http.StatusServiceUnavailable:
		log.ErrorContext(c.Request.Context(), "store full", "request_id", RequestIDOf(c), "route", c.FullPath(), "error", err)
		MarkStorageFull(c)
		c.Header("Retry-After", storageRetryAfter)
	case http.StatusInternalServerError:
		log.ErrorContext(c.Request.Context(), "request failed", "request_id", RequestIDOf(c), "route", c.FullPath(), "error", err)
	}
	Abort(c, p)
}

// ProblemOf maps a domain, application or store error to its HTTP
// problem: the one place where sentinels become statuses. A refusal
// (app.Refusal) says its own detail.
func ProblemOf(err error) Problem {
	err = dsr.StorageError(err)
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		fields := make([]FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = FieldError(f)
		}
		return Problem{Type: TypeValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "One or more fields are invalid; see errors.", Errors: fields}
	}
	var p Problem
	switch {
	case errors.Is(err, dsr.ErrIdempotencyMismatch):
		p = Problem{Type: TypeKeyReused, Title: "Idempotency key reused", Status: http.StatusUnprocessableEntity,
			Detail: "This Idempotency-Key was used for a different request; use a new key for a new request."}
	case errors.Is(err, dsr.ErrNotFound):
		p = Problem{Status: http.StatusNotFound, Detail: "No request has this id."}
	case errors.Is(err, app.ErrFourEyes):
		p = Problem{Type: TypeFourEyes, Title: "Another agent must approve", Status: http.StatusForbidden,
			Detail: "You filed this request (or the request it appeals), and requests of its type are approved by a second agent (DSAR_APPROVAL_FOUR_EYES)."}
	case errors.Is(err, app.ErrExportNotAvailable):
		p = Problem{Type: TypeNotAvailable, Title: "Export not available", Status: http.StatusConflict, Detail: "This request has no export."}
	case errors.Is(err, dsr.ErrNoExtension):
		p = Problem{Type: TypeConflict, Title: "No extension", Status: http.StatusConflict,
			Detail: "This request's regulation allows no (further) extension of its deadline."}
	case errors.Is(err, dsr.ErrNotPausable):
		p = Problem{Type: TypeConflict, Title: "Not pausable", Status: http.StatusConflict,
			Detail: "This request's regulation does not let its clock stop (CCPA counts 45 days whatever verification takes)."}
	case errors.Is(err, dsr.ErrNotAppealable):
		p = Problem{Type: TypeConflict, Title: "No appeal", Status: http.StatusConflict,
			Detail: "Only a denied request under a law that grants an appeal (VCDPA, CTDPA), not appealed before and not itself an appeal, can be appealed."}
	case errors.Is(err, dsr.ErrProofRequired):
		p = Problem{Type: TypeProofRequired, Title: "New proof of identity needed", Status: http.StatusConflict,
			Detail: "This request was denied because the person's identity could not be verified (or it never was), so its appeal needs a new proof: " +
				`give "identity": {"verified": true, "method": "..."} if you verified the person, or {"verified": false} to send them the portal's verification.`}
	case errors.Is(err, dsr.ErrConflict), errors.Is(err, dsr.ErrInvalidTransition):
		p = Problem{Type: TypeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "The request changed state meanwhile; reload it and try again."}
	case errors.Is(err, dsr.ErrStorageFull):
		p = Problem{Type: TypeStorageFull, Title: "Storage full", Status: http.StatusServiceUnavailable,
			Detail: "The store's disk is full, so nothing was saved; try again later."}
	default:
		p = Problem{Status: http.StatusInternalServerError, Detail: "The server failed; the error is logged under this request_id."}
	}
	if r := (*app.Refusal)(nil); errors.As(err, &r) {
		p.Detail = r.Detail
	}
	return p
}
