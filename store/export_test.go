package store_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// A dsr.CompactJSON is stored byte for byte, not read again; a
// json.RawMessage is still checked and compacted, and a record that is
// not JSON is refused without taking a seq.
func TestExportEncoderTakesCompactJSONAsIs(t *testing.T) {
	tests := []struct {
		name string
		doc  any
		want string // "" for an error
	}{
		{"compact JSON as is", dsr.CompactJSON(`{"a":"<b>&","n":1.50,"s":"é\u2028"}`), `{"a":"<b>&","n":1.50,"s":"é\u2028"}`},
		// What only a CompactJSON's promise makes it: bytes stored as
		// given, which a RawMessage's compaction would change.
		{"compact JSON, not read again", dsr.CompactJSON(`{"a": 1}`), `{"a": 1}`},
		{"raw JSON compacted", json.RawMessage(`{"a": 1, "b": [ 2 ]}`), `{"a":1,"b":[2]}`},
		{"raw JSON checked", json.RawMessage(`{"a":`), ""},
		{"a map encoded", map[string]any{"b": "<x>", "a": 1}, `{"a":1,"b":"<x>"}`},
		{"a nil CompactJSON is null", dsr.CompactJSON(nil), `null`},
		{"a CompactJSON with a raw newline is refused", dsr.CompactJSON("{\"a\":\n1}"), ""},
	}
	var e store.ExportEncoder
	seq := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, got, err := e.Next("c", tt.doc)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Next = %q, %d; want an error", data, got)
				}
				return
			}
			seq++
			if err != nil || data != tt.want || got != seq {
				t.Fatalf("Next = %q, %d, %v; want %q, %d", data, got, err, tt.want, seq)
			}
		})
	}
	if _, _, err := e.Next("d", dsr.CompactJSON(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Next("c", dsr.CompactJSON(`{}`)); !errors.Is(err, dsr.ErrExportOrder) {
		t.Fatalf("back to a collection left: %v; want ErrExportOrder", err)
	}
	// Append appends to what it is given, and leaves it as given on error.
	dst, got, err := e.Append([]byte("x\n"), "d", map[string]int{"n": 1})
	if string(dst) != "x\n{\"n\":1}" || got != seq+2 || err != nil {
		t.Fatalf("Append = %q, %d, %v; want the record after x and seq %d", dst, got, err, seq+2)
	}
	if dst, _, err := e.Append([]byte("x\n"), "c", map[string]int{}); string(dst) != "x\n" || !errors.Is(err, dsr.ErrExportOrder) {
		t.Fatalf("Append back to a collection left = %q, %v; want x and ErrExportOrder", dst, err)
	}
}
