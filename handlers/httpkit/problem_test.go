package httpkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

func refuse(err error, detail string) error { return &dsr.Refusal{Err: err, Detail: detail} }

func TestProblemOf(t *testing.T) {
	t.Parallel()
	var ve dsr.ValidationError
	ve.Add("subject.email", "required")
	wrapped := func(err error) error { return fmt.Errorf("store: %w", err) }
	tests := []struct {
		name       string
		err        error
		status     int
		typ, title string
		detail     string
		fields     int
		triesLeft  int // -1: none
	}{
		{"validation", &ve, 400, httpkit.TypeValidation, "Invalid request", "One or more fields are invalid; see errors.", 1, -1},
		{"not found", wrapped(dsr.ErrNotFound), 404, httpkit.TypeBlank, "Not Found", "No request has this id.", 0, -1},
		{"conflict", dsr.ErrConflict, 409, httpkit.TypeConflict, "Conflict", "The request changed state meanwhile; reload it and try again.", 0, -1},
		{"invalid transition", wrapped(dsr.ErrInvalidTransition), 409, httpkit.TypeConflict, "Conflict", "The request changed state meanwhile; reload it and try again.", 0, -1},
		{"conflict with words", refuse(dsr.ErrConflict, "This request is not a duplicate."), 409, httpkit.TypeConflict, "Conflict", "This request is not a duplicate.", 0, -1},
		{"idempotency", dsr.ErrIdempotencyMismatch, 422, httpkit.TypeKeyReused, "Idempotency key reused", "This Idempotency-Key was used for a different request; use a new key for a new request.", 0, -1},
		{"four eyes", app.ErrFourEyes, 403, httpkit.TypeFourEyes, "Another agent must approve", "You filed this request (or the request it appeals), and requests of its type are approved by a second agent (DSAR_APPROVAL_FOUR_EYES).", 0, -1},
		{"link", app.ErrLinkInvalid, 403, httpkit.TypeBlank, "Forbidden", "This download link is not valid, or has expired; get a new one from the request's status.", 0, -1},
		{"no extension", wrapped(dsr.ErrNoExtension), 409, httpkit.TypeConflict, "No extension", "This request's regulation allows no (further) extension of its deadline.", 0, -1},
		{"not pausable", dsr.ErrNotPausable, 409, httpkit.TypeConflict, "Not pausable", "This request's regulation does not let its clock stop (CCPA counts 45 days whatever verification takes).", 0, -1},
		{"no appeal", dsr.ErrNotAppealable, 409, httpkit.TypeConflict, "No appeal", "Only a denied request under a law that grants an appeal (VCDPA, CTDPA), not appealed before and not itself an appeal, can be appealed.", 0, -1},
		{"no export", refuse(app.ErrExportNotAvailable, "The export is ready when the request is completed; it is verified."), 409, httpkit.TypeNotAvailable, "Export not available", "The export is ready when the request is completed; it is verified.", 0, -1},
		{"no code", dsr.ErrNoCode, 409, httpkit.TypeConflict, "Conflict", "No code has been sent for this request yet; wait for the email and try again.", 0, -1},
		{"locked", dsr.ErrLocked, 423, httpkit.TypeVerifyLocked, "Verification locked", "No verification tries are left for this request.", 0, -1},
		{"locked resend", refuse(dsr.ErrLocked, "No more codes can be sent for this request."), 423, httpkit.TypeVerifyLocked, "Verification locked", "No more codes can be sent for this request.", 0, -1},
		{"verification failed", &app.VerificationFailure{TriesLeft: 2, Detail: "The code has expired; ask for a new one."}, 400, httpkit.TypeVerifyFailed, "Verification failed", "The code has expired; ask for a new one.", 0, 2},
		{"last try failed", &app.VerificationFailure{}, 400, httpkit.TypeVerifyFailed, "Verification failed", "The code or link is wrong, or has expired.", 0, 0},
		{"storage full", wrapped(dsr.ErrStorageFull), 503, httpkit.TypeStorageFull, "Storage full", "The store's disk is full, so nothing was saved; try again later.", 0, -1},
		{"store unavailable", wrapped(dsr.ErrStoreUnavailable), 503, httpkit.TypeUnavailable, "Store unavailable", "The store could not serve this now; try again shortly (with the same Idempotency-Key, if you sent one: it never files twice).", 0, -1},
		{"unknown", errors.New("boom"), 500, httpkit.TypeBlank, "Internal Server Error", "The server failed; the error is logged under this request_id.", 0, -1},
		{"refusal of an unknown kind", refuse(errors.New("boom"), "secret words"), 500, httpkit.TypeBlank, "Internal Server Error", "The server failed; the error is logged under this request_id.", 0, -1},
	}
	for _, tt := range tests {
		p := httpkit.ProblemOf(tt.err)
		if p.Status != tt.status || p.Type != tt.typ || p.Title != tt.title || p.Detail != tt.detail || len(p.Errors) != tt.fields {
			t.Errorf("%s: ProblemOf = %+v", tt.name, p)
		}
		if (p.TriesLeft == nil) != (tt.triesLeft < 0) || (p.TriesLeft != nil && *p.TriesLeft != tt.triesLeft) {
			t.Errorf("%s: tries left = %v, want %d", tt.name, p.TriesLeft, tt.triesLeft)
		}
	}
}

// TestErrorStorageFull: a full disk is answered with Retry-After and marks
// the store full for readiness until a probe write succeeds.
func TestErrorStorageFull(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	watch := &httpkit.StorageWatch{}
	r.Use(httpkit.RequestID(), watch.Watch())
	r.GET("/full", func(c *gin.Context) { httpkit.Error(c, slog.New(slog.DiscardHandler), dsr.ErrStorageFull) })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/full", nil))
	if w.Code != 503 || w.Header().Get("Retry-After") != "60" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("answer = %d %v", w.Code, w.Header())
	}
	failing := func(context.Context) error { return dsr.ErrStorageFull }
	if watch.Check(t.Context(), nil) || watch.Check(t.Context(), failing) {
		t.Error("ready while the disk is full")
	}
	if !watch.Check(t.Context(), func(context.Context) error { return nil }) || !watch.Check(t.Context(), nil) {
		t.Error("not ready once a probe write succeeded")
	}
}

func TestDuplicateField(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{`{"a":1,"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":{"x":1,"y":{"z":[1,2]}},"b":[{"c":1},{"c":2}]}`, ""},
		{`{"a":{"x":1,"x":2}}`, "a.x"},
		{`{"items":[{"t":1},{"t":2,"t":3}]}`, "items.t"},
		{`{"a":[1,{"b":1}],"a":2}`, "a"},
		{`[{"a":1},{"a":1,"a":1}]`, "a"},
		{`{"a":"x","b":{"a":1}}`, ""},
		{`{"a":`, ""},
		{`1e999`, ""},
		{`"text"`, ""},
	}
	for _, tt := range tests {
		if got := httpkit.DuplicateField([]byte(tt.body)); got != tt.want {
			t.Errorf("DuplicateField(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestDuplicateFieldSkips(t *testing.T) {
	t.Parallel()
	body := `{"requests":[{"a":1,"a":2}],"x":{"b":1,"b":2}}`
	if got := httpkit.DuplicateField([]byte(body), "requests."); got != "x.b" {
		t.Errorf("DuplicateField skipping requests. = %q, want x.b", got)
	}
	if got := httpkit.DuplicateField([]byte(`{"requests":[{"a":1,"a":2}]}`), "requests."); got != "" {
		t.Errorf("DuplicateField skipping requests. = %q, want none", got)
	}
}

// TestStrictUnknownFields: Strict names every key the body type does not
// decode as an unknown field, by its path: the empty key (which
// encoding/json alone would refuse in a message of its own), a key
// differing in case, a field json ignores ("-", unexported), a key of an
// object in an array.
func TestStrictUnknownFields(t *testing.T) {
	t.Parallel()
	type inner struct {
		Email string `json:"email"`
	}
	type body struct {
		Type    string  `json:"type"`
		Skip    string  `json:"-"`
		Subject inner   `json:"subject"`
		List    []inner `json:"list"`
		hidden  string  //nolint:unused // a field json ignores
	}
	tests := []struct{ body, want string }{
		{`{"type":"a","subject":{"email":"x"}}`, ""},
		{`{"":1}`, `""`},
		{`{"subject":{"":1}}`, `subject.""`},
		{`{"TYPE":"a"}`, "TYPE"},
		{`{"-":"a"}`, "-"},
		{`{"Skip":"a"}`, "Skip"},
		{`{"hidden":"a"}`, "hidden"},
		{`{"list":[{"email":"x"},{"e":""}]}`, "list.e"}, // found by FuzzAgentRequest: an array's objects
		{`{"list":[{"email":"x"}]}`, ""},
	}
	for _, tt := range tests {
		var v body
		err := httpkit.Strict([]byte(tt.body), &v)
		var field *httpkit.BodyFieldError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Strict(%s): %v", tt.body, err)
		case tt.want != "" && (!errors.As(err, &field) || field.Field != tt.want || field.Message != "unknown field"):
			t.Errorf("Strict(%s) = %v, want unknown field %s", tt.body, err, tt.want)
		}
	}
}
