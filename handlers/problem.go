package handlers

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
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
	problemBlank         = "about:blank"
	problemValidation    = "urn:dsar:problem:validation"
	problemMalformed     = "urn:dsar:problem:malformed-body"
	problemConflict      = "urn:dsar:problem:conflict"
	problemNotAvailable  = "urn:dsar:problem:export-not-available"
	problemKeyReused     = "urn:dsar:problem:idempotency-key-reused"
	problemRateLimited   = "urn:dsar:problem:rate-limited"
	problemVerifyFailed  = "urn:dsar:problem:verification-failed"
	problemVerifyLocked  = "urn:dsar:problem:verification-locked"
	problemProofRequired = "urn:dsar:problem:proof-required"
	problemFourEyes      = "urn:dsar:problem:four-eyes"
	problemStorageFull   = "urn:dsar:problem:storage-full"
)

// storageFullKey marks, on the gin context, an exchange that failed because
// the store's disk is full; the storage watch of the router reads it.
const storageFullKey = "dsar.storage_full"

// storageRetryAfter is the Retry-After of a 503 for a full disk, in seconds.
const storageRetryAfter = "60"

// problem writes p and stops the handler chain.
func problem(c *gin.Context, p Problem) {
	if p.Type == "" {
		p.Type = problemBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = c.Request.URL.Path
	p.RequestID = c.GetString(requestIDKey)
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// writeError answers err as its problem (problemFor), logging what the
// caller cannot act on (a full disk, a failure of the server).
func writeError(c *gin.Context, log *slog.Logger, err error) {
	p := problemFor(err)
	switch p.Status {
	case http.StatusServiceUnavailable:
		log.ErrorContext(c.Request.Context(), "store full", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "error", err)
		c.Set(storageFullKey, true)
		c.Header("Retry-After", storageRetryAfter)
	case http.StatusInternalServerError:
		log.ErrorContext(c.Request.Context(), "request failed", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "error", err)
	}
	problem(c, p)
}

// problemFor maps a domain, application or store error to its HTTP
// problem: the one place where sentinels become statuses. A refusal
// (dsr.Refusal) says its own detail.
func problemFor(err error) Problem {
	err = mongostore.StorageError(err)
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		fields := make([]FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = FieldError(f)
		}
		return Problem{Type: problemValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "One or more fields are invalid; see errors.", Errors: fields}
	}
	var p Problem
	switch {
	case errors.Is(err, dsr.ErrIdempotencyMismatch):
		p = Problem{Type: problemKeyReused, Title: "Idempotency key reused", Status: http.StatusUnprocessableEntity,
			Detail: "This Idempotency-Key was used for a different request; use a new key for a new request."}
	case errors.Is(err, dsr.ErrNotFound):
		p = Problem{Status: http.StatusNotFound, Detail: "No request has this id."}
	case errors.Is(err, dsr.ErrFourEyes):
		p = Problem{Type: problemFourEyes, Title: "Another agent must approve", Status: http.StatusForbidden,
			Detail: "You filed this request (or the request it appeals), and requests of its type are approved by a second agent (DSAR_APPROVAL_FOUR_EYES)."}
	case errors.Is(err, dsr.ErrNoExport):
		p = Problem{Type: problemNotAvailable, Title: "Export not available", Status: http.StatusConflict, Detail: "Only access requests have an export."}
	case errors.Is(err, dsr.ErrNoExtension):
		p = Problem{Type: problemConflict, Title: "No extension", Status: http.StatusConflict,
			Detail: "This request's regulation allows no (further) extension of its deadline."}
	case errors.Is(err, dsr.ErrNotPausable):
		p = Problem{Type: problemConflict, Title: "Not pausable", Status: http.StatusConflict,
			Detail: "This request's regulation does not let its clock stop (CCPA counts 45 days whatever verification takes)."}
	case errors.Is(err, dsr.ErrNotAppealable):
		p = Problem{Type: problemConflict, Title: "No appeal", Status: http.StatusConflict,
			Detail: "Only a denied request under a law that grants an appeal (VCDPA, CTDPA), not appealed before and not itself an appeal, can be appealed."}
	case errors.Is(err, dsr.ErrProofRequired):
		p = Problem{Type: problemProofRequired, Title: "New proof of identity needed", Status: http.StatusConflict,
			Detail: "This request was denied because the person's identity could not be verified (or it never was), so its appeal needs a new proof: " +
				`give "identity": {"verified": true, "method": "..."} if you verified the person, or {"verified": false} to send them the portal's verification.`}
	case errors.Is(err, dsr.ErrConflict), errors.Is(err, dsr.ErrInvalidTransition):
		p = Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "The request changed state meanwhile; reload it and try again."}
	case errors.Is(err, dsr.ErrStorageFull):
		p = Problem{Type: problemStorageFull, Title: "Storage full", Status: http.StatusServiceUnavailable,
			Detail: "The store's disk is full, so nothing was saved; try again later."}
	default:
		p = Problem{Status: http.StatusInternalServerError, Detail: "The server failed; the error is logged under this request_id."}
	}
	if r := (*dsr.Refusal)(nil); errors.As(err, &r) && r.Detail != "" {
		p.Detail = r.Detail
	}
	return p
}
