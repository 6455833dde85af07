package manual

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// ErrTooLarge is the error of an upload over its size limit.
var ErrTooLarge = errors.New("the file is too large")

// UploadError is a problem with an uploaded file, at a line when Line > 0.
type UploadError struct {
	Line int
	Msg  string
}

func (e *UploadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// ParseUpload reads an uploaded export: a JSON array of objects, NDJSON
// (one object per line), or CSV with a header row (each row becomes an
// object keyed by the header, in its order, every value a string, kept as
// written: a cell "=1+1" stays the text "=1+1"). The format is taken from
// the file name's extension (.json, .ndjson, .jsonl, .csv), else from its
// first character. It reads at most limit bytes (more is [ErrTooLarge]) and
// returns at most maxRecords records; every problem is an [*UploadError]
// naming its line. The file must be UTF-8.
func ParseUpload(r io.Reader, name string, limit int64, maxRecords int) ([]json.RawMessage, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read the file: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: at most %d bytes", ErrTooLarge, limit)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, &UploadError{Line: badUTF8Line(data), Msg: "the file is not UTF-8 text"}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &UploadError{Msg: "the file is empty"}
	}
	var recs []json.RawMessage
	switch ext := strings.ToLower(path.Ext(name)); {
	case ext == ".csv":
		recs, err = parseCSV(data, maxRecords)
	case ext == ".ndjson" || ext == ".jsonl":
		recs, err = parseNDJSON(data, maxRecords)
	case ext == ".json" && trimmed[0] == '{':
		recs, err = parseNDJSON(data, maxRecords) // one object, or one per line
	case ext == ".json" || trimmed[0] == '[':
		recs, err = parseArray(data, maxRecords)
	case trimmed[0] == '{':
		recs, err = parseNDJSON(data, maxRecords)
	default:
		recs, err = parseCSV(data, maxRecords)
	}
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, &UploadError{Msg: "the file holds no records; if the person is not in the system, report them absent instead"}
	}
	return recs, nil
}

func tooMany(line, max int) error {
	return &UploadError{Line: line, Msg: fmt.Sprintf("more than %d records: split the export, or ask for a higher max_records", max)}
}

// lineAt is the line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

func badUTF8Line(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return lineAt(data, int64(i))
		}
		i += n
	}
	return 0
}

// syntaxError says where data, which is not valid JSON, goes wrong.
func syntaxError(data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && se.Offset > 0 && int(se.Offset) <= len(data):
		// Offset counts the bytes read up to and including the bad one.
		return &UploadError{Line: lineAt(data, se.Offset-1), Msg: "not valid JSON: " + se.Error()}
	case errors.As(err, &se):
		return &UploadError{Line: lineAt(data, int64(len(data))), Msg: "the JSON ends too soon"}
	case err != nil:
		return &UploadError{Msg: "not valid JSON: " + err.Error()}
	}
	return &UploadError{Msg: "not valid JSON"}
}

// object checks that raw is a JSON object.
func object(raw json.RawMessage) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func parseArray(data []byte, maxRecords int) ([]json.RawMessage, error) {
	if !json.Valid(data) {
		return nil, syntaxError(data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, &UploadError{Line: 1, Msg: "want a JSON array of objects, one per record"}
	}
	var out []json.RawMessage
	for dec.More() {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data) // unreachable: data is valid JSON
		}
		for start < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[start]) >= 0 {
			start++
		}
		line := lineAt(data, start)
		if !object(raw) {
			return nil, &UploadError{Line: line, Msg: "each record must be a JSON object"}
		}
		if len(out) == maxRecords {
			return nil, tooMany(line, maxRecords)
		}
		out = append(out, compact(raw))
	}
	return out, nil
}

func parseNDJSON(data []byte, maxRecords int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), len(data)+1)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if !json.Valid(text) {
			e := syntaxError(text).(*UploadError)
			e.Line = line
			return nil, e
		}
		if !object(text) {
			return nil, &UploadError{Line: line, Msg: "each line must be one JSON object"}
		}
		if len(out) == maxRecords {
			return nil, tooMany(line, maxRecords)
		}
		out = append(out, compact(text))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the file: %w", err)
	}
	return out, nil
}

func parseCSV(data []byte, maxRecords int) ([]json.RawMessage, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, csvError(err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, &UploadError{Line: 1, Msg: fmt.Sprintf("column %d has no name: the first row names every column", i+1)}
		}
		if seen[h] {
			return nil, &UploadError{Line: 1, Msg: fmt.Sprintf("column %q is named twice", h)}
		}
		seen[h] = true
		header[i] = h
	}
	var out []json.RawMessage
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(out) == maxRecords {
			return nil, tooMany(line, maxRecords)
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for i, v := range row {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(header[i])
			s, _ := json.Marshal(v)
			b.Write(k)
			b.WriteByte(':')
			b.Write(s)
		}
		b.WriteByte('}')
		out = append(out, b.Bytes())
	}
	return out, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			msg = "this row has a different number of columns than the header"
		}
		return &UploadError{Line: pe.Line, Msg: "not valid CSV: " + msg}
	}
	return &UploadError{Msg: "not valid CSV: " + err.Error()}
}

// compact returns raw without insignificant space.
func compact(raw []byte) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}
