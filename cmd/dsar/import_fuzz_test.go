package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// importLineRef is how an import's error points at its line.
var importLineRef = regexp.MustCompile(`line (\d+)`)

// FuzzImportRows: reading a requests import (CSV) never panics; it is all
// or nothing (an error returns no rows, so no row is filed from a file
// that is refused); every error names a line of the file; and the rows
// are the file's records, in order, each at the line it starts on, with
// only the body fields the API knows.
func FuzzImportRows(f *testing.F) {
	for _, s := range []string{
		"type,regulation,email\naccess,gdpr,ada@example.com\n",
		"\ufeffType, Regulation ,EMAIL,phone,identity_verified,identity_method\r\ndeletion,ccpa,,+44 20 7946 0958,yes,\"account, login\"\r\n",
		"type,email,note\naccess,a@example.com,\"two\nlines\"\nopt_out,b@example.com,x\n",
		"type,email\n\"a\"b,c\n",
		"type,email\naccess\n",
		"type,nope\n",
		"\"type\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := parseRows("in.csv", data)
		if err != nil {
			if rows != nil {
				t.Fatalf("%d rows returned with the error %v", len(rows), err)
			}
			m := importLineRef.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("the error names no line: %v", err)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("the error names line %d of a file of %d lines: %v", n, bytes.Count(data, []byte("\n"))+1, err)
			}
			return
		}
		// The file's records, read on their own.
		r := csv.NewReader(bytes.NewReader(data))
		r.TrimLeadingSpace = true
		if _, err := r.Read(); err != nil {
			t.Fatalf("rows from a file without a header line: %v", err)
		}
		var lines []int
		for {
			_, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("rows from a malformed file: %v", err)
			}
			line, _ := r.FieldPos(0)
			lines = append(lines, line)
		}
		if len(rows) != len(lines) {
			t.Fatalf("%d rows from %d records", len(rows), len(lines))
		}
		for i, row := range rows {
			if row.line != lines[i] || row.line < 2 {
				t.Fatalf("row %d at line %d, its record at line %d", i, row.line, lines[i])
			}
			for k, v := range row.body {
				switch k {
				case "subject", "identity":
					if _, ok := v.(map[string]any); !ok {
						t.Fatalf("row %d: %s is %T", i, k, v)
					}
				default:
					if !slices.Contains(importColumns, k) {
						t.Fatalf("row %d: unknown field %q", i, k)
					}
					if s, ok := v.(string); !ok || s == "" || strings.TrimSpace(s) != s {
						t.Fatalf("row %d: %s is %q", i, k, v)
					}
				}
			}
		}
	})
}
