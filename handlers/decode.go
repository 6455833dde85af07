package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// decodeJSON reads the body into v strictly: JSON media type, at most
// MaxBodyBytes, no unknown fields, one value. On failure it writes the
// problem (400, 413 or 415) and returns false.
func decodeJSON(c *gin.Context, v any) bool {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			problem(c, Problem{Status: http.StatusUnsupportedMediaType, Detail: "Send the body as application/json."})
			return false
		}
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		problem(c, Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body must be at most %d bytes.", MaxBodyBytes)})
		return false
	}
	p := Problem{Type: problemMalformed, Title: "Malformed body", Status: http.StatusBadRequest}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		p.Detail = "The body is empty; send a JSON object."
	case errors.As(err, &syntax):
		p.Detail = fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		p.Detail = "The body ends in the middle of a JSON value."
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		p.Detail = "A field has the wrong JSON type; see errors."
		p.Errors = []FieldError{{Field: field, Message: "must be " + jsonKind(typ.Type.Kind().String())}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p.Detail = "The body has a field this API does not know; see errors."
		p.Errors = []FieldError{{Field: name, Message: "unknown field"}}
	default:
		p.Detail = "The body could not be read as JSON: " + err.Error()
	}
	problem(c, p)
	return false
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	case "ptr":
		return "an object or a string"
	}
	return "a number"
}
