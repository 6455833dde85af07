package portalpage

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// problem is what went wrong, as a page shows it: the HTTP status (the one
// the JSON API answers with, httpkit.ProblemOf), a message for the whole
// form, and messages next to the fields they concern (by field name),
// already translated.
type problem struct {
	Status  int
	Message string
	Fields  map[string]string
	// Summary lists every problem for the box at the top of the form,
	// each linking to its field.
	Summary []summaryItem
}

// summaryItem is one line of the error summary: Anchor is the id of the
// field it concerns ("" for none).
type summaryItem struct{ Anchor, Text string }

// fieldOf maps the application's field names (dsr.ValidationError) to the
// form's: the field's name and the id of the input the summary links to.
func fieldOf(field string) (name, anchor string) {
	switch {
	case field == "type":
		return "type", "type-access"
	case field == "regulation" || field == "jurisdiction":
		return "regulation", "regulation"
	case field == "subject.email":
		return "email", "email"
	case field == "subject.phone":
		return "phone", "phone"
	case field == "subject.customer_id":
		return "customer_id", "customer_id"
	case field == "subject.advertising_id":
		return "advertising_id", "advertising_id"
	case field == "subject.device_id":
		return "device_id", "device_id"
	case field == "scopes" || strings.HasPrefix(field, "scopes["):
		return "scope", "scope-" + string(dsr.Purposes[0])
	case field == "agent.name":
		return "agent_name", "agent_name"
	case field == "agent.email":
		return "agent_email", "agent_email"
	case field == "agent.signed_permission":
		return "agent_permission", "agent_permission"
	case field == "code" || field == "token":
		return "code", "code"
	case field == "purposes" || strings.HasPrefix(field, "purposes."):
		return "refuse", "refuse-" + string(dsr.Purposes[0])
	case field == "corrections":
		return "corrections", rowField("field", 0)
	}
	// corrections[i].field and corrections[i].value: row i's select and
	// text input.
	if m := correctionPath.FindStringSubmatch(field); m != nil {
		if i, err := strconv.Atoi(m[1]); err == nil && i < dsr.MaxCorrections {
			name := rowField(m[2], i)
			return name, name
		}
		return "corrections", rowField("field", 0)
	}
	return "", ""
}

var correctionPath = regexp.MustCompile(`^corrections\[([0-9]{1,4})\]\.(field|value)$`)

// messageKey is the catalogue key of the message for the form's field
// name: a row's fields share theirs (correction_field_2: correction_field).
func messageKey(name string) string {
	return "portal.err." + rowIndex.ReplaceAllString(name, "")
}

var rowIndex = regexp.MustCompile(`_[0-9]+$`)

// problemOf tells the person what err means, in their language, mapping
// the application's errors as httpkit.Error does (same statuses, same
// headers, same log lines: what the person cannot act on is logged with
// the exchange's id only). conflict is the message key of a dsr.ErrConflict
// on this page ("" : the generic one).
func (h *handler) problemOf(c *gin.Context, err error, conflict string) problem {
	p := httpkit.ProblemOf(err)
	out := problem{Status: p.Status, Fields: map[string]string{}}
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		out.Status = http.StatusUnprocessableEntity
		for _, f := range ve.Fields {
			name, anchor := fieldOf(f.Field)
			key := "portal.err.invalid"
			if name != "" {
				key = messageKey(name)
			}
			text := h.pages.T(c, key)
			if name != "" && out.Fields[name] == "" {
				out.Fields[name] = text
			} else if name != "" {
				continue // one message a field
			}
			out.Summary = append(out.Summary, summaryItem{Anchor: anchor, Text: text})
		}
		out.Message = h.pages.T(c, "portal.err.summary")
		return out
	}
	key := "common.error.message"
	var vf *app.VerificationFailure
	switch {
	case errors.As(err, &vf):
		if vf.TriesLeft > 0 {
			out.Fields["code"] = h.pages.T(c, "portal.err.code.wrong", vf.TriesLeft)
		} else {
			out.Fields["code"] = h.pages.T(c, "portal.err.code.last")
		}
		out.Summary = []summaryItem{{Anchor: "code", Text: out.Fields["code"]}}
		out.Message = out.Fields["code"]
		return out
	case p.Status == http.StatusTooManyRequests:
		if rl := (*httpkit.RateLimited)(nil); errors.As(err, &rl) {
			c.Header("Retry-After", strconv.Itoa(rl.Wait))
		}
		key = "portal.err.ratelimited"
	case p.Status == http.StatusServiceUnavailable:
		if p.Type == httpkit.TypeUnavailable {
			h.log.ErrorContext(c.Request.Context(), "store unavailable", "request_id", httpkit.RequestIDOf(c), "route", c.FullPath(), "error", err)
			c.Header("Retry-After", "5")
		} else {
			h.log.ErrorContext(c.Request.Context(), "store full", "request_id", httpkit.RequestIDOf(c), "route", c.FullPath(), "error", err)
			httpkit.MarkStorageFull(c)
			c.Header("Retry-After", "60")
		}
		key = "portal.err.unavailable"
	case p.Status == http.StatusInternalServerError:
		h.log.ErrorContext(c.Request.Context(), "page failed", "request_id", httpkit.RequestIDOf(c), "route", c.FullPath(), "error", err)
	case errors.Is(err, app.ErrNotProven):
		key = "portal.err.notproven"
	case errors.Is(err, app.ErrIdentitiesPurged):
		key = "portal.err.purged"
	case errors.Is(err, app.ErrExportNotAvailable):
		key = "portal.err.noexport"
	case errors.Is(err, dsr.ErrLocked):
		key = "portal.err.locked"
	case errors.Is(err, dsr.ErrNoCode):
		key = "portal.err.nocode"
	case errors.Is(err, app.ErrVerificationFailed):
		key = "portal.err.code.last"
	case errors.Is(err, dsr.ErrConflict) || errors.Is(err, dsr.ErrInvalidTransition):
		key = "portal.err.conflict"
		if conflict != "" {
			key = conflict
		}
	case errors.Is(err, dsr.ErrNotFound):
		key = "portal.err.notfound"
	}
	out.Message = h.pages.T(c, key)
	return out
}
