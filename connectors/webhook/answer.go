package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// Answer is the receiver's result (version 1): the body of a 200, and of a
// callback, which also names the handle it answers.
type Answer struct {
	// Handle is, in a callback, the handle the 202 gave (or, when it gave
	// none, the call's webhook-id); ignored in a 200.
	Handle string `json:"handle,omitempty"`
	// Error, when set, says the receiver could not do the action; the job
	// fails with it (and the request needs attention). Nothing else may
	// be set with it.
	Error string `json:"error,omitempty"`
	// Collections says what the action did where.
	Collections []Collection `json:"collections"`
	// Export holds, for an export, the records of each collection: as
	// many as its Collections entry counts, each a JSON object.
	Export map[string][]json.RawMessage `json:"export,omitempty"`
}

// Collection is what the action did in one collection of the receiver.
type Collection struct {
	Name string `json:"name"`
	// Records counts the records exported, erased or opted out; required.
	Records *int64 `json:"records"`
	// Outcome: export: exported; erase: deleted, masked, pulled or
	// retained; opt_out: deleted, pulled or set. Empty: exported, deleted
	// and set.
	Outcome string `json:"outcome,omitempty"`
	// Basis is the legal basis of a collection masked or retained
	// instead of deleted; required with retained.
	Basis string `json:"basis,omitempty"`
}

// Bounds of an answer.
const (
	maxCollections = 1000
	maxErrorText   = 500
	maxBasis       = 200
	maxHandle      = 256
)

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	handlePattern = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
)

// outcomes are the outcomes each action may report, the first its default.
var outcomes = map[connectors.Action][]string{
	connectors.ActionExport: {"exported"},
	connectors.ActionErase:  {"deleted", "masked", "pulled", "retained"},
	connectors.ActionOptOut: {"set", "deleted", "pulled"},
}

// decodeStrict decodes one JSON value from data into v, refusing unknown
// fields and anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not the JSON expected: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("not the JSON expected: more after the object")
	}
	return nil
}

// parseAnswer reads and checks an answer to action a. Its errors name the
// field at fault, never a value.
func parseAnswer(a connectors.Action, data []byte) (*Answer, error) {
	var ans Answer
	if err := decodeStrict(data, &ans); err != nil {
		return nil, err
	}
	if ans.Handle != "" && !handlePattern.MatchString(ans.Handle) {
		return nil, fmt.Errorf("handle: want 1 to %d printable ASCII characters, no spaces", maxHandle)
	}
	if ans.Error != "" {
		if len(ans.Error) > maxErrorText {
			return nil, fmt.Errorf("error: at most %d bytes", maxErrorText)
		}
		if ans.Collections != nil || ans.Export != nil {
			return nil, errors.New("error: nothing else may be set with it")
		}
		return &ans, nil
	}
	if ans.Collections == nil {
		return nil, errors.New("collections: required (an empty list when the receiver holds nothing of the subject)")
	}
	if len(ans.Collections) > maxCollections {
		return nil, fmt.Errorf("collections: at most %d", maxCollections)
	}
	allowed := outcomes[a]
	seen := map[string]bool{}
	for i := range ans.Collections {
		c := &ans.Collections[i]
		at := fmt.Sprintf("collections[%d]", i)
		switch {
		case !namePattern.MatchString(c.Name):
			return nil, fmt.Errorf("%s.name: want 1 to 64 of A-Z, a-z, 0-9, _, . and -", at)
		case seen[c.Name]:
			return nil, fmt.Errorf("%s.name: listed twice", at)
		case c.Records == nil:
			return nil, fmt.Errorf("%s.records: required", at)
		case *c.Records < 0:
			return nil, fmt.Errorf("%s.records: must not be negative", at)
		}
		seen[c.Name] = true
		if c.Outcome == "" {
			c.Outcome = allowed[0]
		}
		if !contains(allowed, c.Outcome) {
			return nil, fmt.Errorf("%s.outcome: for %s want one of %s", at, a, strings.Join(allowed, ", "))
		}
		switch {
		case len(c.Basis) > maxBasis:
			return nil, fmt.Errorf("%s.basis: at most %d bytes", at, maxBasis)
		case c.Basis != "" && c.Outcome != "masked" && c.Outcome != "retained":
			return nil, fmt.Errorf("%s.basis: only with outcome masked or retained", at)
		case c.Basis == "" && c.Outcome == "retained":
			return nil, fmt.Errorf("%s.basis: required with outcome retained (the legal basis the records are kept on)", at)
		}
	}
	if a != connectors.ActionExport {
		if ans.Export != nil {
			return nil, fmt.Errorf("export: only in the answer to an export, not to %s", a)
		}
		return &ans, nil
	}
	for name := range ans.Export {
		if !seen[name] {
			return nil, errors.New("export: holds a collection that collections does not list")
		}
	}
	for i, c := range ans.Collections {
		recs := ans.Export[c.Name]
		if int64(len(recs)) != *c.Records {
			return nil, fmt.Errorf("export.%s: %d records, but collections[%d].records says %d", c.Name, len(recs), i, *c.Records)
		}
		for j, r := range recs {
			if len(r) == 0 || r[0] != '{' {
				return nil, fmt.Errorf("export.%s[%d]: want a JSON object", c.Name, j)
			}
		}
	}
	return &ans, nil
}

// apply writes an answer's records to out and returns its result; an
// answer that reports an error is a permanent failure.
func (ans *Answer) apply(ctx context.Context, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	if ans.Error != "" {
		return res, connectors.Permanent(fmt.Errorf("the receiver could not do it: %s", ans.Error))
	}
	for _, c := range ans.Collections {
		for _, r := range ans.Export[c.Name] {
			if err := out.WriteRecord(ctx, c.Name, r); err != nil {
				return connectors.Result{}, fmt.Errorf("write record: %w", err)
			}
		}
		if c.Basis != "" {
			res.Retained(c.Name, c.Outcome, c.Basis, *c.Records)
		} else {
			res.Add(c.Name, c.Outcome, *c.Records)
		}
	}
	return res, nil
}

// accepted is the body of a 202: empty, or a JSON object that may name
// the handle of the work.
type accepted struct {
	Handle string `json:"handle"`
}

// parseAccepted reads a 202's body: the handle it names, or id when it
// names none (or has no body).
func parseAccepted(data []byte, id string) (string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return id, nil
	}
	var acc accepted // other fields are the receiver's business
	if err := json.Unmarshal(data, &acc); err != nil {
		return "", fmt.Errorf("not the JSON expected: %w", err)
	}
	if acc.Handle == "" {
		return id, nil
	}
	if !handlePattern.MatchString(acc.Handle) {
		return "", fmt.Errorf("handle: want 1 to %d printable ASCII characters, no spaces", maxHandle)
	}
	return acc.Handle, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
