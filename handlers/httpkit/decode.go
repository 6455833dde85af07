package httpkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
)

// DecodeJSON reads the body into v: JSON media type, at most limit bytes,
// decoded by Strict. On failure it writes the problem (400, 413 or 415) and
// returns false.
func DecodeJSON(c *gin.Context, v any, limit int64) bool {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		Abort(c, Problem{Status: http.StatusUnsupportedMediaType, Detail: "Send the body as JSON with Content-Type: application/json."})
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		Abort(c, Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body must be at most %d bytes.", limit)})
		return false
	}
	if err != nil {
		Abort(c, Problem{Type: TypeMalformed, Title: "Malformed body", Status: http.StatusBadRequest, Detail: "The body could not be read."})
		return false
	}
	err = Strict(body, v)
	if err == nil {
		return true
	}
	p := Problem{Type: TypeMalformed, Title: "Malformed body", Status: http.StatusBadRequest}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var field *BodyFieldError
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
		p.Errors = []FieldError{{Field: field, Message: "must be " + JSONKind(typ.Type.Kind().String())}}
	case errors.As(err, &field):
		p.Detail = "The body has a field this API does not know; see errors."
		if field.Message == givenTwice {
			p.Detail = "The body gives a field twice; see errors."
		}
		p.Errors = []FieldError{{Field: field.Field, Message: field.Message}}
	default:
		p.Detail = "The body could not be read as JSON: " + err.Error()
	}
	Abort(c, p)
	return false
}

// BodyFieldError is a field of a JSON body that Strict refuses: unknown, or
// given twice in one object.
type BodyFieldError struct {
	Field   string // its dotted path
	Message string // "unknown field" or "given twice"
}

func (e *BodyFieldError) Error() string { return "json: " + e.Field + ": " + e.Message }

const givenTwice = "given twice"

// Strict decodes the JSON document data into v strictly: one value, no
// field v does not have, with names matched exactly (encoding/json alone
// would take "TYPE" for "type"), and none given twice in one object
// (encoding/json alone would keep the last); values v keeps raw
// (json.RawMessage, such as a bulk call's items) are left to whoever decodes
// them. Its error is a *BodyFieldError, or encoding/json's.
func Strict(data []byte, v any) error {
	// Unknown and repeated fields first, by their full path and exact name.
	var raw any
	if json.Unmarshal(data, &raw) == nil {
		if unknown := UnknownField(raw, reflect.TypeOf(v), ""); unknown != "" {
			return &BodyFieldError{Field: unknown, Message: "unknown field"}
		}
	}
	if twice := DuplicateField(data, rawPaths(reflect.TypeOf(v), "")...); twice != "" {
		return &BodyFieldError{Field: twice, Message: givenTwice}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, extra := dec.Token(); extra != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// UnknownField returns the dotted path of the first object key in raw that
// names no field of t exactly (an empty key written `""`), or "", looking
// into arrays of objects too (an array's elements share their array's
// path, as in DuplicateField).
func UnknownField(raw any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if arr, ok := raw.([]any); ok && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		for _, el := range arr {
			if u := UnknownField(el, t.Elem(), path); u != "" {
				return u
			}
		}
		return ""
	}
	obj, ok := raw.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return ""
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		switch {
		case name == "-" || !t.Field(i).IsExported():
			continue // not decoded: a key of this name is unknown
		case name == "":
			name = t.Field(i).Name
		}
		fields[name] = t.Field(i).Type
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			if k == "" {
				return path + `""` // the empty name, named so it is not "none"
			}
			return path + k
		}
		if u := UnknownField(obj[k], ft, path+k+"."); u != "" {
			return u
		}
	}
	return ""
}

// JSONKind names, for a caller, the JSON type a Go kind decodes from ("a
// string", "an object"...).
func JSONKind(goKind string) string {
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

// DuplicateField returns the path of the first field given twice in one
// object of the JSON document body ("subject.email"; an array's elements
// share their array's path), or "" when there is none or body is not valid
// JSON (which decoding reports). Objects at or below a path of skip
// ("requests.") are not checked.
func DuplicateField(body []byte, skip ...string) string {
	type frame struct {
		object  bool
		keys    map[string]bool // nil: not checked
		path    string
		wantKey bool   // in an object: the next token is a key
		key     string // in an object: the key whose value comes next
	}
	skipped := func(path string) bool {
		for _, p := range skip {
			if strings.HasPrefix(path, p) {
				return true
			}
		}
		return false
	}
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.object {
			return top.path + top.key + "."
		}
		return top.path
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if k, ok := tok.(string); ok {
				if top.keys != nil {
					if top.keys[k] {
						return top.path + k
					}
					top.keys[k] = true
				}
				top.key, top.wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			f := &frame{object: true, path: child(), wantKey: true}
			if !skipped(f.path) {
				f.keys = map[string]bool{}
			}
			stack = append(stack, f)
			continue
		case json.Delim('['):
			stack = append(stack, &frame{path: child()})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return ""
			}
		}
		// A value ended: the document, or in an object, a key comes next.
		if len(stack) == 0 {
			return ""
		}
		if top = stack[len(stack)-1]; top.object {
			top.wantKey = true
		}
	}
}

// rawJSON is the type of values a body keeps undecoded.
var rawJSON = reflect.TypeOf(json.RawMessage(nil))

// rawPaths returns the paths ("requests.") of t's fields that keep JSON
// undecoded (json.RawMessage, or a slice of them), below prefix.
func rawPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		switch ft := f.Type; {
		case ft == rawJSON || (ft.Kind() == reflect.Slice && ft.Elem() == rawJSON):
			out = append(out, prefix+name+".")
		default:
			out = append(out, rawPaths(ft, prefix+name+".")...)
		}
	}
	return out
}
