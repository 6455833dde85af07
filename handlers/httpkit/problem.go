package httpkit

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

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
	TypeUnavailable   = "urn:dsar:problem:store-unavailable"
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

// storageRetryAfter is the Retry-After of a 503 for a full disk, in
// seconds; unavailableRetryAfter that of a store busy or unavailable.
const (
	storageRetryAfter     = "60"
	unavailableRetryAfter = "5"
)

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
	case http.StatusTooManyRequests:
		if rl := (*RateLimited)(nil); errors.As(err, &rl) {
			c.Header("Retry-After", strconv.Itoa(rl.Wait))
		}
	case http.StatusServiceUnavailable:
		if p.Type == TypeUnavailable {
			log.ErrorContext(c.Request.Context(), "store unavailable", "request_id", RequestIDOf(c), "route", c.FullPath(), "error", err)
			c.Header("Retry-After", unavailableRetryAfter)
			break
		}
		log.ErrorContext(c.Request.Context(), "store full", "request_id", RequestIDOf(c), "route", c.FullPath(), "error", err)
		MarkStorageFull(c)
		c.Header("Retry-After", storageRetryAfter)
	case http.StatusInternalServerError:
		log.ErrorContext(c.Request.Context(), "request failed", "request_id", RequestIDOf(c), "route", c.FullPath(), "error", err)
	}
	Abort(c, p)
}

// kind is how one kind of error is answered.
type kind struct {
	err    error
	status int
	typ    string
	title  string
	detail string // unless the error says more (dsr.Refusal)
}

// kinds lists every error a caller is told about, most specific first.
var kinds = []kind{
	{dsr.ErrIdempotencyMismatch, http.StatusUnprocessableEntity, TypeKeyReused, "Idempotency key reused",
		"This Idempotency-Key was used for a different request; use a new key for a new request."},
	{dsr.ErrNotFound, http.StatusNotFound, TypeBlank, "", "No request has this id."},
	{app.ErrFourEyes, http.StatusForbidden, TypeFourEyes, "Another agent must approve",
		"You filed this request (or the request it appeals), and requests of its type are approved by a second agent (DSAR_APPROVAL_FOUR_EYES)."},
	{app.ErrLinkInvalid, http.StatusForbidden, TypeBlank, "",
		"This download link is not valid, or has expired; get a new one from the request's status."},
	{app.ErrNotProven, http.StatusForbidden, TypeBlank, "",
		"This request's identity was not proven, so its token cannot open the preference centre."},
	{app.ErrIdentitiesPurged, http.StatusGone, TypeBlank, "",
		"This request's identities were deleted after its retention period."},
	{app.ErrExportNotAvailable, http.StatusConflict, TypeNotAvailable, "Export not available", "This request has no export."},
	{dsr.ErrNoExtension, http.StatusConflict, TypeConflict, "No extension",
		"This request's regulation allows no (further) extension of its deadline."},
	{dsr.ErrNotPausable, http.StatusConflict, TypeConflict, "Not pausable",
		"This request's regulation does not let its clock stop (CCPA counts 45 days whatever verification takes)."},
	{dsr.ErrNotAppealable, http.StatusConflict, TypeConflict, "No appeal",
		"Only a denied request under a law that grants an appeal (VCDPA, CTDPA), not appealed before and not itself an appeal, can be appealed."},
	{dsr.ErrProofRequired, http.StatusConflict, TypeProofRequired, "New proof of identity needed",
		"This request was denied because the person's identity could not be verified (or it never was), so its appeal needs a new proof: " +
			`give "identity": {"verified": true, "method": "..."} if you verified the person, or {"verified": false} to send them the portal's verification.`},
	{dsr.ErrNoCode, http.StatusConflict, TypeConflict, "Conflict",
		"No code has been sent for this request yet; wait for the email and try again."},
	{dsr.ErrLocked, http.StatusLocked, TypeVerifyLocked, "Verification locked", "No verification tries are left for this request."},
	{app.ErrVerificationFailed, http.StatusBadRequest, TypeVerifyFailed, "Verification failed", "The code or link is wrong, or has expired."},
	{dsr.ErrConflict, http.StatusConflict, TypeConflict, "Conflict", "The request changed state meanwhile; reload it and try again."},
	{dsr.ErrInvalidTransition, http.StatusConflict, TypeConflict, "Conflict", "The request changed state meanwhile; reload it and try again."},
	{dsr.ErrStorageFull, http.StatusServiceUnavailable, TypeStorageFull, "Storage full",
		"The store's disk is full, so nothing was saved; try again later."},
	{dsr.ErrStoreUnavailable, http.StatusServiceUnavailable, TypeUnavailable, "Store unavailable",
		"The store could not serve this now; try again shortly (with the same Idempotency-Key, if you sent one: it never files twice)."},
}

// ProblemOf returns the problem err answers with: the one place where
// domain, application and store errors become statuses (a full disk is
// dsr.ErrStorageFull, which the store marks on every write's error). A validation error names its fields; an
// dsr.Refusal gives its own detail; an app.VerificationFailure its tries
// left; a RateLimited its wait; anything unknown is a 500 whose cause is
// for the log alone.
// Instance and RequestID are left to Abort.
func ProblemOf(err error) Problem {
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		fields := make([]FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = FieldError(f)
		}
		return Problem{Type: TypeValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "One or more fields are invalid; see errors.", Errors: fields}
	}
	p := Problem{Type: TypeBlank, Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
		Detail: "The server failed; the error is logged under this request_id."}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			p = Problem{Type: k.typ, Title: k.title, Status: k.status, Detail: k.detail}
			if p.Title == "" {
				p.Title = http.StatusText(k.status)
			}
			break
		}
	}
	var rl *RateLimited
	if errors.As(err, &rl) {
		return Problem{Type: TypeRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("Too many calls; try again in %d seconds.", rl.Wait)}
	}
	if p.Status == http.StatusInternalServerError {
		return p // its cause is for the log alone
	}
	if r := (*dsr.Refusal)(nil); errors.As(err, &r) {
		p.Detail = r.Detail
	}
	if vf := (*app.VerificationFailure)(nil); errors.As(err, &vf) {
		left := vf.TriesLeft
		p.TriesLeft = &left
		if vf.Detail != "" {
			p.Detail = vf.Detail
		}
	}
	return p
}
