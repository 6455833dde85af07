package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dsar-project/dsar/dsr"
)

// This file holds the suppression list's bulk tools: the filter that
// streams an audience through the list (FilterSuppressions), the export of
// the list for partners and processors (ExportSuppressions) and the import
// of a partner's list (ImportSuppressions). Each works in constant memory,
// whatever the size of its input or of the list.

// suppressionListStore is what the export and import of the list need
// of the store.
type suppressionListStore interface {
	SuppressionFeed
	SuppressionImporter
}

// NewSuppressionFilter is NewFilter over the process's suppression set;
// ErrSuppressionsOff when it keeps none.
func (s *Service) NewSuppressionFilter(ctx context.Context, in io.Reader, opts FilterOptions) (*Filter, error) {
	if s.suppressions == nil {
		return nil, ErrSuppressionsOff
	}
	return NewFilter(ctx, s.suppressions, in, opts)
}

// ExportSuppressions is the package's ExportSuppressions on the store.
func (s *Service) ExportSuppressions(ctx context.Context, out io.Writer, scope dsr.Scope, since time.Time) (int, error) {
	return ExportSuppressions(ctx, s.store, out, scope, since)
}

// ImportSuppressions is the package's ImportSuppressions on the store,
// under the suppression key, by actor; it logs the partner and the counts.
func (s *Service) ImportSuppressions(ctx context.Context, in io.Reader, partner, actor string) (ImportResult, error) {
	if s.suppressions == nil {
		return ImportResult{}, ErrSuppressionsOff
	}
	res, err := ImportSuppressions(ctx, s.store, s.suppressions.Key(), in, ImportOptions{Partner: partner, Actor: actor, Now: s.now()})
	if err == nil {
		s.log.InfoContext(ctx, "suppression list imported", "partner", partner, "by", actor, "lines", res.Lines, "added", res.Added, "events", res.Events)
	}
	return res, err
}

// SuppressionChecker answers from the suppression list without a store
// query per identity: suppression.Set is one.
type SuppressionChecker interface {
	// Refresh catches up with the store's changes.
	Refresh(ctx context.Context) error
	// Suppressed reports whether an active entry of hash covers scope.
	Suppressed(hash string, scope dsr.Scope) bool
	// Key is the key of suppression hashes.
	Key() dsr.SuppressionKey
}

// ListFormat is the format of a stream of records: one JSON object a line,
// or CSV with a header line.
type ListFormat string

// The list formats.
const (
	FormatNDJSON ListFormat = "ndjson"
	FormatCSV    ListFormat = "csv"
)

// KindHash is the kind of a column holding suppression hashes
// ([dsr.SuppressionKey.Hash]), computed by a pipeline that holds the key.
const KindHash = "hash"

// IdentityColumn names where the records of a stream hold an identity: a
// CSV column by its header, or an NDJSON object's top-level field; and its
// kind (an identity kind, or KindHash).
type IdentityColumn struct {
	Name string
	Kind string
}

// ColumnKind is the kind a column's name implies: an identity kind
// (dsr.Kinds: email, phone, customer_id, advertising_id, device_id), or
// hash for "hash" and "suppression_hash"; "" for any other name.
func ColumnKind(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	switch {
	case dsr.Kind(n).Valid():
		return n
	case n == KindHash || n == "suppression_hash":
		return KindHash
	}
	return ""
}

// OnError says what a filter does with a malformed record.
type OnError string

// The filter's ways with a malformed record.
const (
	// OnErrorStop ends the output at the first malformed record: what was
	// written before it was checked, and the error says its line.
	OnErrorStop OnError = "stop"
	// OnErrorSkip drops malformed records (they cannot be checked) and
	// goes on; FilterStats counts them and names the first lines.
	OnErrorSkip OnError = "skip"
)

// FilterOptions say how to filter a stream.
type FilterOptions struct {
	// Scope is the use the records are meant for: a record is dropped when
	// one of its identities is suppressed under a scope that covers it.
	Scope  dsr.Scope
	Format ListFormat
	// Columns are where the records hold identities (at least one, at most
	// MaxFilterColumns). A record is kept when it has at least one valid
	// identity and none is suppressed.
	Columns []IdentityColumn
	// OnError is OnErrorStop (the default, "") or OnErrorSkip.
	OnError OnError
	// KeepUnidentified keeps the records that hold no valid identity in
	// any column; by default they are dropped, as nothing proves that
	// they may be used.
	KeepUnidentified bool
	// Progress, when set, is called about every FlushInterval while the
	// filter runs, and once at its end.
	Progress func(FilterStats)
}

// MaxFilterColumns is the most identity columns a filter checks.
const MaxFilterColumns = 8

// MaxRecordBytes is the longest record (line) a filter or an import reads.
const MaxRecordBytes = 1 << 20

// FlushInterval is how often a filter or an export flushes what it wrote
// (when out has a Flush method), so that a slow input still moves along.
const FlushInterval = 100 * time.Millisecond

// maxReportedLines bounds the line numbers a filter's stats or an
// import's error name.
const maxReportedLines = 100

// FilterStats count the records of a filter. Every record read is kept,
// suppressed, unidentified (dropped, or kept with KeepUnidentified) or
// skipped.
type FilterStats struct {
	Read         int64 `json:"read"`
	Kept         int64 `json:"kept"`
	Suppressed   int64 `json:"suppressed"`
	Unidentified int64 `json:"unidentified"`
	Skipped      int64 `json:"skipped"`
	// SkippedLines are the lines of the first skipped records (at most
	// 100).
	SkippedLines []int `json:"skipped_lines,omitempty"`
}

// LineError is a malformed line of an input: its number (from 1) and what
// is wrong, never its content.
type LineError struct {
	Line    int    `json:"line"`
	Problem string `json:"problem"`
	fatal   bool   // reading cannot go on after it
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Problem) }

// ErrSuppressionsUnavailable: the suppression list could not be read, so
// nothing can be proved allowed.
var ErrSuppressionsUnavailable = errors.New("suppression list unavailable")

// Filter is a stream of records checked against the suppression list,
// ready to run: NewFilter has checked its options, refreshed the list and
// read the CSV header.
type Filter struct {
	in     *beforeRead
	set    SuppressionChecker
	opts   FilterOptions
	key    dsr.SuppressionKey
	recs   recordReader
	header []byte // the CSV header line, written first
}

// Validate checks the options, and fills in their defaults (OnError, the
// kinds the columns' names imply): a *dsr.ValidationError. NewFilter calls
// it; a server calls it first too, to refuse bad options before it reads
// the body.
func (opts *FilterOptions) Validate() error {
	var ve dsr.ValidationError
	if !opts.Scope.Valid() {
		ve.Add("scope", "must be one of sale_share, marketing, profiling, all")
	}
	if opts.Format != FormatNDJSON && opts.Format != FormatCSV {
		ve.Add("format", "must be ndjson or csv")
	}
	if opts.OnError == "" {
		opts.OnError = OnErrorStop
	}
	if opts.OnError != OnErrorStop && opts.OnError != OnErrorSkip {
		ve.Add("on_error", "must be stop or skip")
	}
	switch n := len(opts.Columns); {
	case n == 0:
		ve.Add("column", "name at least one identity column")
	case n > MaxFilterColumns:
		ve.Add("column", "at most %d identity columns", MaxFilterColumns)
	}
	for i, c := range opts.Columns {
		if strings.TrimSpace(c.Name) == "" {
			ve.Add("column", "column %d has no name", i+1)
		}
		if c.Kind == "" {
			c.Kind = ColumnKind(c.Name)
			opts.Columns[i].Kind = c.Kind
		}
		if c.Kind != KindHash && !dsr.Kind(c.Kind).Valid() {
			ve.Add("kind", "give the kind of column %q: %s or hash", c.Name, Join(dsr.Kinds))
		}
	}
	return ve.Err()
}

// NewFilter checks opts (Validate), refreshes set once (the whole stream
// is checked against the list as it is then) and, for CSV, reads the
// header line and finds the columns. Its errors come before any output: a
// *dsr.ValidationError for bad options or a header without a column, a
// *LineError for an unreadable header, ErrSuppressionsUnavailable.
func NewFilter(ctx context.Context, set SuppressionChecker, in io.Reader, opts FilterOptions) (*Filter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := &Filter{in: &beforeRead{r: in}, set: set, opts: opts, key: set.Key()}
	in = f.in
	if opts.Format == FormatCSV {
		cr, header, err := newCSVRecords(in, opts.Columns)
		if err != nil {
			return nil, err
		}
		f.recs, f.header = cr, header
	} else {
		f.recs = newNDJSONRecords(in, opts.Columns)
	}
	if err := set.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSuppressionsUnavailable, err)
	}
	return f, nil
}

// Run writes to out the records that may be used under the scope, as they
// came (byte for byte, CSV header first), and returns the counts. It holds
// one record at a time. What it wrote is flushed (out's Flush method too,
// when it has one: an HTTP response) before each read of the input, which
// may block, and about every FlushInterval. A malformed record ends the run
// with a *LineError under OnErrorStop (what was written before it stays
// written: it was checked); under OnErrorSkip it is counted and dropped.
// Any other error is the input's, the output's or ctx's.
func (f *Filter) Run(ctx context.Context, out io.Writer) (FilterStats, error) {
	var st FilterStats
	w := newTicker(out)
	var flushErr error
	f.in.fn = func() { // the input may block: send what is ready first
		if w.Buffered() > 0 && flushErr == nil {
			flushErr = w.Flush()
		}
	}
	defer func() { f.in.fn = nil }()
	if f.header != nil {
		if _, err := w.Write(f.header); err != nil {
			return st, err
		}
	}
	report := func() {
		if f.opts.Progress != nil {
			f.opts.Progress(st)
		}
	}
	hashes := make([]string, 0, len(f.opts.Columns))
	reported := time.Now()
	for {
		raw, values, line, err := f.recs.next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			if f.opts.OnError == OnErrorStop || le.fatal {
				report()
				return st, errors.Join(le, w.Flush())
			}
			st.Read++
			st.Skipped++
			if len(st.SkippedLines) < maxReportedLines {
				st.SkippedLines = append(st.SkippedLines, le.Line)
			}
			continue
		}
		if err != nil {
			return st, fmt.Errorf("read line %d: %w", line, err)
		}
		if flushErr != nil {
			return st, flushErr
		}
		st.Read++
		hashes = hashes[:0]
		for i, v := range values {
			if h, ok := f.hash(f.opts.Columns[i].Kind, v); ok {
				hashes = append(hashes, h)
			}
		}
		keep := false
		switch {
		case len(hashes) == 0:
			st.Unidentified++
			keep = f.opts.KeepUnidentified
		case f.suppressed(hashes):
			st.Suppressed++
		default:
			st.Kept++
			keep = true
		}
		if keep {
			if _, err := w.Write(raw); err != nil {
				return st, err
			}
		}
		if st.Read%256 == 0 || w.due() {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if w.due() {
				if err := w.Flush(); err != nil {
					return st, err
				}
			}
			if now := time.Now(); now.Sub(reported) >= FlushInterval {
				reported = now
				report()
			}
		}
	}
	report()
	return st, w.Flush()
}

// hash returns the suppression hash of a column's value, and false when it
// holds no valid identity: one that intake would refuse too
// (dsr.NormalizeGiven), such as an address in fullwidth letters or with an
// invisible character, which a mailer may deliver to someone suppressed.
func (f *Filter) hash(kind, v string) (string, bool) {
	if kind == KindHash {
		h := strings.ToLower(strings.TrimSpace(v))
		return h, dsr.ValidSuppressionHash(h)
	}
	n, err := dsr.NormalizeGiven(dsr.Kind(kind), v)
	if err != nil {
		return "", false
	}
	return f.key.Hash(dsr.Kind(kind), n), true
}

func (f *Filter) suppressed(hashes []string) bool {
	for _, h := range hashes {
		if f.set.Suppressed(h, f.opts.Scope) {
			return true
		}
	}
	return false
}

// FilterSuppressions is NewFilter then Run: it writes to out the records
// of in that may be used under opts.Scope.
func FilterSuppressions(ctx context.Context, set SuppressionChecker, in io.Reader, out io.Writer, opts FilterOptions) (FilterStats, error) {
	f, err := NewFilter(ctx, set, in, opts)
	if err != nil {
		return FilterStats{}, err
	}
	return f.Run(ctx, out)
}

// recordReader reads one record at a time: its bytes as they came, the
// values of the identity columns ("" where absent) and its first line.
// A malformed record is a *LineError, after which reading goes on with the
// next.
type recordReader interface {
	next() (raw []byte, values []string, line int, err error)
}

// ndjsonRecords reads NDJSON: one JSON object a line; blank lines are
// skipped.
type ndjsonRecords struct {
	lines  *lineReader
	cols   []IdentityColumn
	names  []string // the columns' names
	values []string
	obj    map[string]json.RawMessage
}

func newNDJSONRecords(in io.Reader, cols []IdentityColumn) *ndjsonRecords {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return &ndjsonRecords{lines: newLineReader(in), cols: cols, names: names, values: make([]string, len(cols))}
}

func (r *ndjsonRecords) next() ([]byte, []string, int, error) {
	for {
		raw, err := r.lines.next()
		n := r.lines.n
		if err != nil {
			return nil, nil, n, err
		}
		body := bytes.TrimSpace(raw)
		if len(body) == 0 {
			continue
		}
		if body[0] != '{' {
			return nil, nil, n, &LineError{Line: n, Problem: "not a JSON object"}
		}
		if r.obj == nil {
			r.obj = map[string]json.RawMessage{}
		}
		switch dup, err := decodeObject(body, r.obj); {
		case err != nil:
			return nil, nil, n, &LineError{Line: n, Problem: "not valid JSON: " + jsonProblem(err)}
		case dup || foldDuplicate(r.obj, r.names):
			return nil, nil, n, &LineError{Line: n, Problem: "a key is given twice in one object: the record is ambiguous"}
		}
		for i, c := range r.cols {
			r.values[i] = jsonScalar(r.obj[c.Name])
		}
		if raw[len(raw)-1] != '\n' { // the last line, without its newline
			raw = append(raw, '\n')
		}
		return raw, r.values, n, nil
	}
}

// foldDuplicate reports whether obj has one of names as a key twice up to
// case (email, Email): many decoders (Go's into a struct) fold case, and
// would read the other.
func foldDuplicate(obj map[string]json.RawMessage, names []string) bool {
	if len(obj) < 2 {
		return false
	}
	for _, name := range names {
		n := 0
		for k := range obj {
			if strings.EqualFold(k, name) {
				n++
			}
		}
		if n > 1 {
			return true
		}
	}
	return false
}

// decodeObject reads the JSON object body into obj (cleared first), its
// top-level values raw, and reports whether a key came twice (its names
// unescaped: "email" and "\u0065mail" are the same key), in which case
// obj holds the keys up to the second. Data after the object is an error.
func decodeObject(body []byte, obj map[string]json.RawMessage) (dup bool, err error) {
	defer func() {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) { // cut short
			err = &json.SyntaxError{Offset: int64(len(body))}
		}
	}()
	clear(obj)
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil {
		return false, err
	} else if tok != json.Delim('{') {
		return false, errNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false, err
		}
		if _, ok := obj[key]; ok {
			return true, nil
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return false, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return false, nil
}

var errNotObject = errors.New("not an object")

// jsonScalar is a JSON string's text or a number's literal; "" for
// anything else (null, absent, an object).
func jsonScalar(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return string(v)
	}
	return ""
}

// jsonProblem describes a JSON syntax error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "not an object"
}

// lineReader reads lines of at most MaxRecordBytes; a longer one is a
// *LineError and is skipped.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	n   int // the number of the line last read
}

func newLineReader(in io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(in, 64<<10)}
}

// next returns the next line, its newline included (absent on a last line
// without one); io.EOF after the last.
func (l *lineReader) next() ([]byte, error) {
	l.buf = l.buf[:0]
	tooLong := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > MaxRecordBytes {
				tooLong, l.buf = true, l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if errors.Is(err, io.EOF) && len(l.buf) == 0 && !tooLong {
			return nil, io.EOF
		}
		l.n++
		if tooLong {
			return nil, &LineError{Line: l.n, Problem: fmt.Sprintf("longer than %d bytes", MaxRecordBytes)}
		}
		return l.buf, nil
	}
}

// csvRecords reads CSV (RFC 4180, any field count but the header's is
// malformed), keeping each record's bytes as they came.
type csvRecords struct {
	tap    *tap
	cr     *csv.Reader
	idx    []int // the identity columns' positions
	values []string
	end    int64 // offset of the end of the last record
	line   int   // the last line of the last record
}

// newCSVRecords reads the header line of in and finds cols in it (by exact
// name, else ignoring case and surrounding spaces; a UTF-8 byte order mark
// is ignored). A column absent, or there twice (ignoring case and spaces),
// is a *dsr.ValidationError.
func newCSVRecords(in io.Reader, cols []IdentityColumn) (*csvRecords, []byte, error) {
	t := &tap{r: in}
	cr := csv.NewReader(t)
	cr.ReuseRecord = true
	r := &csvRecords{tap: t, cr: cr, idx: make([]int, len(cols)), values: make([]string, len(cols))}
	names, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, &LineError{Line: 1, Problem: "no header line: the input is empty"}
	}
	if err != nil {
		return nil, nil, csvLineError(err, 1)
	}
	cr.FieldsPerRecord = len(names)
	r.line, _ = cr.FieldPos(len(names) - 1)
	names[0] = strings.TrimPrefix(names[0], "\ufeff")
	var ve dsr.ValidationError
	for i, c := range cols {
		r.idx[i] = findColumn(names, c.Name)
		switch {
		case r.idx[i] < 0:
			ve.Add("column", "the header line has no column %q", c.Name)
		case countColumn(names, c.Name) > 1:
			// Which one a mailer reads is anyone's guess.
			ve.Add("column", "the header line has column %q more than once (ignoring case and spaces): the records are ambiguous", c.Name)
		}
	}
	if err := ve.Err(); err != nil {
		return nil, nil, err
	}
	header := r.take()
	return r, append([]byte(nil), header...), nil
}

// countColumn counts the columns named want, ignoring case and
// surrounding spaces.
func countColumn(names []string, want string) int {
	n := 0
	for _, name := range names {
		if strings.EqualFold(strings.TrimSpace(name), strings.TrimSpace(want)) {
			n++
		}
	}
	return n
}

func findColumn(names []string, want string) int {
	for i, n := range names {
		if n == want {
			return i
		}
	}
	for i, n := range names {
		if strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(want)) {
			return i
		}
	}
	return -1
}

func (r *csvRecords) next() ([]byte, []string, int, error) {
	rec, err := r.cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, r.line + 1, io.EOF
	}
	if errors.Is(err, errTooLong) {
		return nil, nil, r.line + 1, &LineError{Line: r.line + 1, Problem: fmt.Sprintf("longer than %d bytes", MaxRecordBytes), fatal: true}
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return nil, nil, r.line + 1, err
		}
		r.take()
		r.line = pe.Line
		return nil, nil, pe.StartLine, csvLineError(err, pe.StartLine)
	}
	line, _ := r.cr.FieldPos(0)
	r.line, _ = r.cr.FieldPos(len(rec) - 1)
	raw := r.take()
	for i, j := range r.idx {
		r.values[i] = rec[j]
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' { // the last line, without its newline
		raw = append(raw, '\n')
	}
	return raw, r.values, line, nil
}

// take returns the bytes of the record last read, and forgets them.
func (r *csvRecords) take() []byte {
	end := r.cr.InputOffset()
	raw := r.tap.take(end - r.end)
	r.end = end
	return raw
}

func csvLineError(err error, line int) *LineError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(pe.Err, csv.ErrFieldCount):
			return &LineError{Line: pe.StartLine, Problem: "wrong number of fields"}
		case errors.Is(pe.Err, csv.ErrQuote), errors.Is(pe.Err, csv.ErrBareQuote):
			return &LineError{Line: pe.Line, Problem: pe.Err.Error()}
		}
		return &LineError{Line: pe.Line, Problem: pe.Err.Error()}
	}
	return &LineError{Line: line, Problem: "unreadable"}
}

var errTooLong = errors.New("record too long")

// tap keeps the bytes read through it until they are taken: the bytes of
// the records a csv.Reader reads (which reads ahead by its buffer).
type tap struct {
	r     io.Reader
	buf   []byte
	start int // buf[:start] is taken
}

func (t *tap) Read(p []byte) (int, error) {
	if t.start > 0 { // forget what was taken: at most once a read ahead
		t.buf = t.buf[:copy(t.buf, t.buf[t.start:])]
		t.start = 0
	}
	if len(t.buf) > MaxRecordBytes+64<<10 {
		return 0, errTooLong
	}
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// take returns the next n bytes kept, valid until the next Read.
func (t *tap) take(n int64) []byte {
	out := t.buf[t.start : t.start+int(n) : t.start+int(n)]
	t.start += int(n)
	return out
}

// beforeRead calls fn, when set, before each read of r: a filter flushes
// its output there, so that records go out before the input blocks.
type beforeRead struct {
	r  io.Reader
	fn func()
}

func (b *beforeRead) Read(p []byte) (int, error) {
	if b.fn != nil {
		b.fn()
	}
	return b.r.Read(p)
}

// ticker is out behind a buffer, flushed (out's Flush included, when it
// has one) when due: about every FlushInterval.
type ticker struct {
	*bufio.Writer
	out  io.Writer
	last time.Time
}

func newTicker(out io.Writer) *ticker {
	return &ticker{Writer: bufio.NewWriterSize(out, 32<<10), out: out, last: time.Now()}
}

func (t *ticker) due() bool { return time.Since(t.last) >= FlushInterval }

func (t *ticker) Flush() error {
	t.last = time.Now()
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	switch f := t.out.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}

// SuppressionFeed is the store's change feed of the suppression list.
type SuppressionFeed interface {
	EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error
}

// ExportedSuppression is one line of an export: an active entry of the
// list, hashed, with its scope, time and source (never a partner's name or
// a request).
type ExportedSuppression struct {
	Hash   string            `json:"hash"`
	Scope  dsr.Scope         `json:"scope"`
	At     time.Time         `json:"at"`
	Source dsr.ConsentSource `json:"source"`
}

// ExportSuppressions writes to out, one JSON object a line
// (ExportedSuppression), the active entries of the list that changed at or
// after since (zero: all), whose scope covers scope ("" : any; "marketing"
// includes the entries under "all"), in the order of their last change. It
// reads the store in batches and holds one entry at a time; out is flushed
// about every FlushInterval when it has a Flush method. It returns how many
// it wrote.
func ExportSuppressions(ctx context.Context, feed SuppressionFeed, out io.Writer, scope dsr.Scope, since time.Time) (int, error) {
	if scope != "" && !scope.Valid() {
		var ve dsr.ValidationError
		ve.Add("scope", "must be one of sale_share, marketing, profiling, all")
		return 0, ve.Err()
	}
	w := newTicker(out)
	enc := json.NewEncoder(w)
	n := 0
	err := feed.EachSuppressionChange(ctx, since, func(s *dsr.Suppression) error {
		if !s.Active() || (scope != "" && !s.Scope.Covers(scope)) {
			return nil
		}
		if err := enc.Encode(ExportedSuppression{Hash: s.Hash, Scope: s.Scope, At: s.At.UTC(), Source: s.Source}); err != nil {
			return err
		}
		n++
		if w.due() {
			return w.Flush()
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("export suppressions: %w", err)
	}
	return n, w.Flush()
}

// SuppressionImporter is where an import writes: the store.
type SuppressionImporter interface {
	Suppress(ctx context.Context, entries []dsr.Suppression) (int, error)
	AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error
}

// ImportOptions say whose list is imported, and by whom.
type ImportOptions struct {
	// Partner names the partner whose list it is (letters, digits, ".",
	// "_" and "-", at most 64): recorded on every entry.
	Partner string
	// Actor names who imports it (an API key's name; "cli"), for the
	// consent history.
	Actor string
	// Now is the time of the import; zero: time.Now.
	Now time.Time
	// BatchSize is how many entries are written at once; 0: 1000.
	BatchSize int
	// SpoolDir is where the hashes wait while the input is checked (a
	// file of at most ~1 GB, removed at the end); "": os.TempDir()'s
	// dsar-import. Spool files older than StaleSpool there, left by an
	// import that was killed, are removed when an import starts.
	SpoolDir string
}

// StaleSpool is the age past which an import's spool file is taken for
// one a killed import left.
const StaleSpool = 24 * time.Hour

// spoolDir returns the directory for an import's spool file, made (0700)
// and rid of stale spool files: dir, or os.TempDir()'s dsar-import. When
// that cannot be made private to this user (another made it first), it
// is os.TempDir() itself, where nothing is removed.
func spoolDir(dir string) string {
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "dsar-import")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return os.TempDir()
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return os.TempDir()
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "dsar-import-*.tsv"))
	for _, name := range stale {
		if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > StaleSpool {
			_ = os.Remove(name)
		}
	}
	return dir
}

// ImportResult counts an import.
type ImportResult struct {
	// Lines is how many entries the input held (blank lines aside).
	Lines int `json:"lines"`
	// Added is how many entries became active: new to the list, or lifted
	// before. A repeated import adds none.
	Added int `json:"added"`
	// Events is how many consent events the import recorded: one per
	// batch and scope, each run its own (the same list imported again
	// records them again: the history shows every import).
	Events int `json:"events"`
}

// ImportError is an input with malformed lines: the first
// maxImportErrors of them, and how many there were. Nothing was written.
type ImportError struct {
	Lines []LineError
	Total int
}

func (e *ImportError) Error() string {
	if len(e.Lines) == 0 {
		return "import: no entries"
	}
	return fmt.Sprintf("import: %d malformed lines, the first %s", e.Total, e.Lines[0].Error())
}

// maxImportErrors bounds the lines an ImportError names.
const maxImportErrors = 1000

// importLine is one line of an import: a hash, or a kind and a value, and
// a scope.
type importLine struct {
	Hash  string `json:"hash"`
	Kind  string `json:"kind"`
	Value string `json:"value"`
	Scope string `json:"scope"`
	At    string `json:"at"`
}

// ImportSuppressions adds a partner's list to the suppression list. Each
// line of in is a JSON object: {"hash": "email:…"} or {"kind": "email",
// "value": "…"} (a value intake would refuse, dsr.NormalizeGiven, is a
// malformed line), with a "scope" (required) and an optional "at" (RFC 3339,
// when the partner recorded it; default: now). It reads the whole input
// first, keeping only the hashes (in a temporary file, never an identity
// in clear): when a line is malformed it writes nothing and returns an
// *ImportError naming every malformed line (the first 1000). Then it
// writes the entries in batches (source import, the partner's name), each
// after its consent event (imported; one per batch and scope, with an ID of
// its own per run): importing the same list again adds no entry, but
// records its events, so that the history shows each import. An entry
// active already is left as it is; one lifted
// (the person opted in again) is made active again: the partner's list
// says so, and its time is recorded.
func ImportSuppressions(ctx context.Context, st SuppressionImporter, key dsr.SuppressionKey, in io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	if !validPartner(opts.Partner) {
		var ve dsr.ValidationError
		ve.Add("partner", "must be 1 to 64 letters, digits, '.', '_' or '-'")
		return res, ve.Err()
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	spool, err := os.CreateTemp(spoolDir(opts.SpoolDir), "dsar-import-*.tsv")
	if err != nil {
		return res, fmt.Errorf("import: spool: %w", err)
	}
	defer func() { _ = spool.Close(); _ = os.Remove(spool.Name()) }()

	sw := bufio.NewWriter(spool)
	bad := &ImportError{}
	lines := newLineReader(in)
	obj := map[string]json.RawMessage{}
	for {
		raw, err := lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			bad.add(*le)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("import: read line %d: %w", lines.n+1, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		hash, scope, at, problem := parseImportLine(raw, obj, key, opts.Now)
		if problem != "" {
			bad.add(LineError{Line: lines.n, Problem: problem})
			continue
		}
		res.Lines++
		if bad.Total == 0 {
			fmt.Fprintf(sw, "%s\t%s\t%s\n", hash, scope, at.Format(time.RFC3339Nano))
		}
	}
	if bad.Total > 0 || res.Lines == 0 {
		return ImportResult{}, bad
	}
	if err := sw.Flush(); err != nil {
		return res, fmt.Errorf("import: spool: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("import: spool: %w", err)
	}

	run, err := uuid.NewV7()
	if err != nil {
		return res, fmt.Errorf("import: run id: %w", err)
	}
	batches := map[dsr.Scope]*importBatch{}
	write := func(b *importBatch) error {
		if len(b.entries) == 0 {
			return nil
		}
		// Evidence first: the event, then the entries it accounts for. A
		// run that stops between them leaves an event without its entries,
		// which the retry writes; never an entry without its event.
		if err := st.AddConsentEvents(ctx, []dsr.ConsentEvent{b.event(opts, run)}); err != nil {
			return fmt.Errorf("import: consent event: %w", err)
		}
		res.Events++
		added, err := st.Suppress(ctx, b.entries)
		if err != nil {
			return fmt.Errorf("import: suppress: %w", err)
		}
		res.Added += added
		b.reset()
		return nil
	}
	sc := bufio.NewScanner(spool)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		at, _ := time.Parse(time.RFC3339Nano, f[2])
		scope := dsr.Scope(f[1])
		b := batches[scope]
		if b == nil {
			b = &importBatch{scope: scope, seen: map[string]bool{}}
			batches[scope] = b
		}
		if b.seen[f[0]] {
			continue
		}
		b.seen[f[0]] = true
		b.entries = append(b.entries, dsr.Suppression{Hash: f[0], Scope: scope, Source: dsr.ConsentImport, Partner: opts.Partner, At: at})
		if len(b.entries) >= opts.BatchSize {
			if err := write(b); err != nil {
				return res, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("import: spool: %w", err)
	}
	for _, s := range dsr.Scopes {
		if b := batches[s]; b != nil {
			if err := write(b); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (e *ImportError) add(le LineError) {
	e.Total++
	if len(e.Lines) < maxImportErrors {
		e.Lines = append(e.Lines, le)
	}
}

// importKeys are the keys of an import line (importLine's).
var importKeys = []string{"hash", "kind", "value", "scope", "at"}

// parseImportLine checks one line of an import and returns its hash, scope
// and time, or what is wrong (never quoting the value). A key given twice
// (or one of importKeys twice up to case, which json.Unmarshal folds) is
// wrong: which value counts is anyone's guess. obj is scratch space.
func parseImportLine(raw []byte, obj map[string]json.RawMessage, key dsr.SuppressionKey, now time.Time) (string, dsr.Scope, time.Time, string) {
	var l importLine
	if dup, err := decodeObject(bytes.TrimSpace(raw), obj); err == nil && (dup || foldDuplicate(obj, importKeys)) {
		return "", "", time.Time{}, "a key is given twice in one object: the line is ambiguous"
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return "", "", time.Time{}, fmt.Sprintf("%s must be a string", te.Field)
		}
		return "", "", time.Time{}, "not a JSON object: " + jsonProblem(err)
	}
	scope := dsr.Scope(l.Scope)
	switch {
	case l.Scope == "":
		return "", "", time.Time{}, "scope is missing"
	case !scope.Valid():
		return "", "", time.Time{}, "scope must be one of sale_share, marketing, profiling, all"
	}
	at := now
	if l.At != "" {
		t, err := time.Parse(time.RFC3339, l.At)
		if err != nil {
			return "", "", time.Time{}, "at must be an RFC 3339 time"
		}
		if t.After(now.Add(5 * time.Minute)) {
			return "", "", time.Time{}, "at is in the future"
		}
		at = t
	}
	var hash string
	switch {
	case l.Hash != "" && (l.Kind != "" || l.Value != ""):
		return "", "", time.Time{}, "give hash, or kind and value, not both"
	case l.Hash != "":
		hash = strings.ToLower(l.Hash)
		if !dsr.ValidSuppressionHash(hash) {
			return "", "", time.Time{}, "hash is not a suppression hash (kind:64 hex digits)"
		}
	case l.Kind == "" && l.Value == "":
		return "", "", time.Time{}, "give hash, or kind and value"
	case !dsr.Kind(l.Kind).Valid():
		return "", "", time.Time{}, "kind must be one of " + Join(dsr.Kinds)
	default:
		v, err := dsr.NormalizeGiven(dsr.Kind(l.Kind), l.Value)
		if err != nil {
			return "", "", time.Time{}, "value: " + err.Error()
		}
		hash = key.Hash(dsr.Kind(l.Kind), v)
	}
	return hash, scope, at.UTC(), ""
}

func validPartner(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// importBatch is the entries of one scope waiting to be written.
type importBatch struct {
	scope   dsr.Scope
	entries []dsr.Suppression
	seen    map[string]bool
}

// event is the consent event of the batch in the import run: its ID is the
// partner's, the run's, the scope's and the batch's hashes'. Each run
// records its own, so that a list imported again after an opt-in, which
// makes the entry active again, shows in the history (imported, opt_in,
// imported).
func (b *importBatch) event(opts ImportOptions, run uuid.UUID) dsr.ConsentEvent {
	hashes := make([]string, len(b.entries))
	for i, e := range b.entries {
		hashes[i] = e.Hash
	}
	sorted := slices.Sorted(slices.Values(hashes))
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return dsr.ConsentEvent{
		ID:     "import:" + opts.Partner + ":" + run.String() + ":" + string(b.scope) + ":" + hex.EncodeToString(sum[:16]),
		Hashes: hashes, Kind: dsr.ConsentImported, Scopes: []dsr.Scope{b.scope}, Source: dsr.ConsentImport,
		Actor: opts.Actor, At: opts.Now.UTC(),
	}
}

func (b *importBatch) reset() {
	b.entries = b.entries[:0]
	clear(b.seen)
}
