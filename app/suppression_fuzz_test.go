package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// FuzzFilterCSV: filtering a CSV list against the suppression list never
// panics, under either way with malformed records; every error is a
// *LineError naming a line of the input (or, for a header without the
// column, a *dsr.ValidationError); and what was written, even when a
// malformed record stopped the run, is the header and whole records of
// the input, each with a valid identity that is not suppressed, as many
// as the counts say.
func FuzzFilterCSV(f *testing.F) {
	for _, s := range []string{
		"\ufeffEmail,name\r\nkeep@example.com,Kim\r\n GONE@Example.com ,Gus\r\n",
		"email,note\nkeep@example.com,\"a note\r\nover two lines\"\n,nobody\nnot-an-email,bad\nlast@example.com,no newline",
		"email,name\nkeep@example.com,Kim,extra\n\"a\"b,c\nz@example.com,Zed\n",
		"name,other\nx,y\n",
		"email\n\"unterminated\n",
		"",
	} {
		f.Add([]byte(s))
	}
	e := setupLists(f)
	e.suppress(f, dsr.KindEmail, "gone@example.com", dsr.ScopeAll)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, onError := range []app.OnError{app.OnErrorStop, app.OnErrorSkip} {
			var out bytes.Buffer
			opts := app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}, OnError: onError}
			st, err := app.FilterSuppressions(ctx, e.set, bytes.NewReader(data), &out, opts)
			var le *app.LineError
			var ve *dsr.ValidationError
			switch {
			case err == nil:
			case errors.As(err, &ve):
				if out.Len() > 0 {
					t.Fatalf("%s: %d bytes written before a refusal of the header", onError, out.Len())
				}
				continue
			case errors.As(err, &le):
				if le.Line < 1 || le.Line > bytes.Count(data, []byte("\n"))+2 {
					t.Fatalf("%s: line %d of a file of %d lines", onError, le.Line, bytes.Count(data, []byte("\n"))+1)
				}
			default:
				t.Fatalf("%s: error %v names no line", onError, err)
			}
			if onError == app.OnErrorSkip {
				// Only the header line, or a record too long to skip, stops it.
				if le != nil && out.Len() > 0 && !strings.Contains(le.Problem, "longer than") {
					t.Fatalf("skip: stopped by a record it could skip: %v", err)
				}
				if st.Read != st.Kept+st.Suppressed+st.Unidentified+st.Skipped || int64(len(st.SkippedLines)) != min(st.Skipped, 100) {
					t.Fatalf("skip: counts %+v", st)
				}
			}
			checkFiltered(t, data, out.Bytes(), st)
		}
	})
}

// checkFiltered fails t unless out is in's header line followed by whole
// records, st.Kept of them, each with a valid email that is not
// gone@example.com.
func checkFiltered(t *testing.T, in, out []byte, st app.FilterStats) {
	t.Helper()
	if len(out) == 0 {
		if st.Kept > 0 {
			t.Fatalf("%d records kept, none written", st.Kept)
		}
		return
	}
	r := csv.NewReader(bytes.NewReader(out))
	header, err := r.Read()
	if err != nil {
		t.Fatalf("the header written does not read back: %v", err)
	}
	if end := r.InputOffset(); !bytes.HasPrefix(in, out[:end]) {
		t.Fatalf("the header written is not the input's: %q", out[:end])
	}
	r.FieldsPerRecord = len(header)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	col := -1
	for i, h := range header {
		if h == "email" {
			col = i
			break
		}
		if col < 0 && strings.EqualFold(strings.TrimSpace(h), "email") {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("the header written has no email column: %q", header)
	}
	var kept int64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("a record written is not whole: %v\n%q", err, out)
		}
		kept++
		email, err := dsr.NormalizeGiven(dsr.KindEmail, rec[col])
		if err != nil || email == "gone@example.com" {
			t.Fatalf("a record written has the email %q (%v)", rec[col], err)
		}
	}
	if kept != st.Kept {
		t.Fatalf("%d records written, %d counted as kept", kept, st.Kept)
	}
	if !isSubsequence(out, in) {
		t.Fatalf("the output is not made of the input's bytes in order: %q", out)
	}
}

// isSubsequence reports whether every byte of a appears in b in order,
// but for the newline the filter ends a last line without one with.
func isSubsequence(a, b []byte) bool {
	a = bytes.TrimSuffix(a, []byte("\n"))
	j := 0
	for i := 0; i < len(a); i++ {
		for j < len(b) && b[j] != a[i] {
			j++
		}
		if j == len(b) {
			return false
		}
		j++
	}
	return true
}
