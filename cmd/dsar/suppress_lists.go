package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

const suppressFilterHelp = `Usage: dsar suppress filter --scope SCOPE [--column NAME [--kind KIND]]... [flags] < IN > OUT

Copies to stdout the records of stdin that may be used under SCOPE: those with
at least one valid identity of which none is suppressed under SCOPE or all. It
is POST /v1/suppressions/filter in one process: records come out byte for byte
as they came in, in constant memory, so an export of any size can be piped
through it. The list is read once, before the first record.

stdin is CSV with a header line (the identity columns named by their header),
or NDJSON (one JSON object a line, the identity columns top-level fields);
--format says which, else the first byte does ('{' for NDJSON). --column
defaults to email; a column named after an identity kind (email, phone,
customer_id, advertising_id, device_id) or hash needs no --kind; a hash column holds suppression hashes (see 'dsar suppress key').

Records without a valid identity in any column are dropped: nothing proves they
may be used (--keep-unidentified keeps them). A malformed record (a CSV row
with the wrong number of fields, a line that is not a JSON object) stops the
filter with its line number and exit status 1; what was written before it was
checked. --on-error skip drops such records and goes on.

On a terminal, stderr shows a progress bar; elsewhere one summary line.
Exit status: 0 done, 1 a malformed record (or a read error), 2 usage, settings
or store.
`

const suppressExportHelp = `Usage: dsar suppress export [--scope SCOPE] [--since TIME] [flags] > list.ndjson

Writes the active entries of the suppression list to stdout, one JSON object a
line: {"hash": "email:...", "scope": "marketing", "at": "...", "source": "portal"}.
Hashes are keyed (the suppression key, 'dsar suppress key'): a partner holding
the key hashes its own records to match them; no identity leaves in clear.
--scope keeps the entries that cover it (that scope, or all); --since (RFC 3339,
or YYYY-MM-DD) those that changed at or after it, for an incremental export.
It is GET /v1/suppressions/export.
`

const suppressImportHelp = `Usage: dsar suppress import --partner NAME [flags] < list.ndjson

Adds a partner's suppression list to ours. Each line of stdin is a JSON object:
{"hash": "email:..."} (a suppression hash under our key) or {"kind": "email",
"value": "..."}, with a "scope" (sale_share, marketing, profiling, all) and
optionally "at" (RFC 3339: when the partner recorded it). The whole input is
checked first: a malformed line is printed with its line number, and nothing is
written (exit status 1). Then the entries are written in batches, marked with
the partner's name, with a consent event (imported) per batch and scope.
Importing the same list again changes nothing. It is POST
/v1/suppressions/import.
`

// listFlag is a flag given any number of times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runSuppressFilter(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("suppress filter", suppressFilterHelp, "filter against", "the suppressions collection", stdout, stderr)
	scope := cmd.fs.String("scope", "", "the use the records are for: sale_share, marketing, profiling or all (required)")
	format := cmd.fs.String("format", "", "csv or ndjson (default: from the first byte)")
	var columns, kinds listFlag
	cmd.fs.Var(&columns, "column", "an identity column: a CSV header or an NDJSON field; repeat for more (default email)")
	cmd.fs.Var(&kinds, "kind", "the kind of each --column, in order: email, phone, customer_id, advertising_id, device_id or hash (default: from its name)")
	onError := cmd.fs.String("on-error", "stop", "at a malformed record: stop, or skip it")
	keep := cmd.fs.Bool("keep-unidentified", false, "keep the records without a valid identity")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *scope == "" {
		return usageError("suppress filter: --scope is required")
	}
	if len(columns) == 0 {
		columns = listFlag{"email"}
	}
	if len(kinds) > len(columns) {
		return usageError("suppress filter: more --kind than --column")
	}
	opts := dsarapp.FilterOptions{Scope: dsr.Scope(*scope), Format: dsarapp.ListFormat(*format), OnError: dsarapp.OnError(*onError), KeepUnidentified: *keep}
	for i, c := range columns {
		col := dsarapp.IdentityColumn{Name: c}
		if i < len(kinds) {
			col.Kind = kinds[i]
		}
		opts.Columns = append(opts.Columns, col)
	}
	var size int64 // stdin's, when it is a file
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	in := &countingReader{r: stdin}
	br := bufio.NewReaderSize(in, 64<<10)
	if opts.Format == "" {
		opts.Format = sniffFormat(br)
	}

	set, closeStore, err := cmd.openSet(ctx, lookupEnv)
	if err != nil {
		return err
	}
	defer closeStore()
	bar := &filterProgress{w: stderr, tty: isTerminal(stderr), size: size, in: in, began: time.Now(), keep: *keep}
	opts.Progress = bar.show
	out := bufio.NewWriterSize(stdout, 64<<10)
	f, err := dsarapp.NewFilter(ctx, set, br, opts)
	if err != nil {
		return filterError(err)
	}
	bar.began = time.Now() // the list is read: the rate is the filter's
	stats, err := f.Run(ctx, flushWriter{out})
	bar.done(stats)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write: %w", ferr)
	}
	if err != nil {
		return filterError(err)
	}
	return nil
}

// filterError gives a filter's error its exit status: 2 for the options or
// the store, 1 for the input.
func filterError(err error) error {
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		var parts []string
		for _, f := range ve.Fields {
			parts = append(parts, "--"+strings.ReplaceAll(f.Field, "_", "-")+": "+f.Message)
		}
		return usageError("suppress filter: %s", strings.Join(parts, "; "))
	}
	if errors.Is(err, dsarapp.ErrSuppressionsUnavailable) {
		return exitError{code: exitUsage, err: fmt.Errorf("suppress filter: %w", err)}
	}
	return exitError{code: 1, err: fmt.Errorf("suppress filter: %w", err)}
}

// sniffFormat says NDJSON when the first byte that is not a space is '{',
// else CSV.
func sniffFormat(br *bufio.Reader) dsarapp.ListFormat {
	head, _ := br.Peek(512)
	head = bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(head) > 0 && head[0] == '{' {
		return dsarapp.FormatNDJSON
	}
	return dsarapp.FormatCSV
}

// flushWriter lets the filter flush stdout's buffer as it goes, so that a
// pipe downstream sees records while the input still comes.
type flushWriter struct{ *bufio.Writer }

func (w flushWriter) Flush() error { return w.Writer.Flush() }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// filterProgress shows a filter's progress on a terminal (a bar when the
// input's size is known, else counts, rewritten in place) and its summary.
type filterProgress struct {
	w     io.Writer
	tty   bool
	size  int64
	in    *countingReader
	began time.Time
	keep  bool // unidentified records are kept
	shown bool
}

func (p *filterProgress) show(s dsarapp.FilterStats) {
	if !p.tty {
		return
	}
	rate := ""
	if secs := time.Since(p.began).Seconds(); secs > 0 {
		rate = fmt.Sprintf(", %.0f records/s", float64(s.Read)/secs)
	}
	bar := ""
	if p.size > 0 {
		const width = 30
		filled := min(width, int(int64(width)*p.in.n.Load()/p.size))
		bar = "[" + strings.Repeat("#", filled) + strings.Repeat(" ", width-filled) + "] "
	}
	fmt.Fprintf(p.w, "\r%s%d read, %d kept, %d suppressed, %d unidentified%s ", bar, s.Read, s.Kept, s.Suppressed, s.Unidentified, rate)
	p.shown = true
}

func (p *filterProgress) done(s dsarapp.FilterStats) {
	if p.shown {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "filter: %d records read, %d kept, %d suppressed, %d without a valid identity (%s), %d malformed skipped\n",
		s.Read, s.Kept, s.Suppressed, s.Unidentified, map[bool]string{true: "kept", false: "dropped"}[p.keep], s.Skipped)
	if len(s.SkippedLines) > 0 {
		lines := make([]string, len(s.SkippedLines))
		for i, l := range s.SkippedLines {
			lines[i] = fmt.Sprint(l)
		}
		fmt.Fprintf(p.w, "filter: malformed lines skipped: %s\n", strings.Join(lines, ", "))
	}
}

func runSuppressExport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("suppress export", suppressExportHelp, "export from", "the suppressions collection", stdout, stderr)
	scope := cmd.fs.String("scope", "", "only the entries that cover this scope (default: all entries)")
	since := cmd.fs.String("since", "", "only the entries that changed at or after this `TIME` (RFC 3339 or YYYY-MM-DD)")
	if err := cmd.parse(args); err != nil {
		return err
	}
	var from time.Time
	if *since != "" {
		t, err := parseSince(*since)
		if err != nil {
			return usageError("suppress export: --since: %v", err)
		}
		from = t
	}
	if *scope != "" && !dsr.Scope(*scope).Valid() {
		return usageError("suppress export: --scope: must be one of sale_share, marketing, profiling, all")
	}
	st, closeStore, err := cmd.open(ctx, lookupEnv, store.SuppressionList)
	if err != nil {
		return err
	}
	defer closeStore()
	out := bufio.NewWriterSize(stdout, 64<<10)
	n, err := dsarapp.ExportSuppressions(ctx, st, flushWriter{out}, dsr.Scope(*scope), from)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("suppress export: %w", err)
	}
	fmt.Fprintf(stderr, "export: %d entries\n", n)
	return nil
}

// parseSince reads an RFC 3339 time, or a date (midnight UTC).
func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time or YYYY-MM-DD")
}

func runSuppressImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("suppress import", suppressImportHelp, "import into", "the suppressions collection", stdout, stderr)
	partner := cmd.fs.String("partner", "", "the partner whose list it is (required)")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *partner == "" {
		return usageError("suppress import: --partner is required")
	}
	cfg, key, err := cmd.key(lookupEnv)
	if err != nil {
		return err
	}
	st, closeStore, err := openStoreToRead(ctx, cmd.name, cfg, *cmd.dataDir, store.SuppressionList, cmd.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	res, err := dsarapp.ImportSuppressions(ctx, st, key, stdin, dsarapp.ImportOptions{Partner: *partner, Actor: "cli"})
	var ie *dsarapp.ImportError
	if errors.As(err, &ie) {
		for _, l := range ie.Lines {
			fmt.Fprintf(stderr, "line %d: %s\n", l.Line, l.Problem)
		}
		if ie.Total > len(ie.Lines) {
			fmt.Fprintf(stderr, "... and %d more\n", ie.Total-len(ie.Lines))
		}
		return exitError{code: 1, err: fmt.Errorf("suppress import: nothing imported: %w", err)}
	}
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		return usageError("suppress import: --%s", strings.TrimPrefix(ve.Error(), "invalid input: "))
	}
	if err != nil {
		return fmt.Errorf("suppress import: %w", err)
	}
	fmt.Fprintf(stderr, "import: %d entries read, %d added to the list, %d consent events\n", res.Lines, res.Added, res.Events)
	return nil
}

// key loads the settings and the suppression key: DSAR_SUPPRESSION_KEY, or
// derived from DSAR_BLIND_INDEX_KEY (and its previous keys), or with
// --data-dir from the key file 'dsar dev' keeps there. It never makes a key: hashes under another would match
// nobody, and a filter would let everyone through.
func (c *readCommand) key(lookupEnv func(string) (string, bool)) (config.Config, dsr.SuppressionKey, error) {
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return cfg, dsr.SuppressionKey{}, exitError{code: exitUsage, err: err}
	}
	if cfg.BlindIndexKey == nil && *c.dataDir == "" {
		return cfg, dsr.SuppressionKey{}, usageError("%s: set DSAR_BLIND_INDEX_KEY (the suppression key is derived from it)", c.name)
	}
	keys, err := loadIndexKeys(cfg, *c.dataDir, false)
	if err != nil {
		return cfg, dsr.SuppressionKey{}, usageError("%s: %v", c.name, err)
	}
	return cfg, keys.index.SuppressionKey(), nil
}

// openSet opens the store and a suppression set over it (read on the
// filter's first refresh).
func (c *readCommand) openSet(ctx context.Context, lookupEnv func(string) (string, bool)) (*suppression.Set, func(), error) {
	cfg, key, err := c.key(lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	st, closeStore, err := openStoreToRead(ctx, c.name, cfg, *c.dataDir, store.SuppressionList, c.stderr)
	if err != nil {
		return nil, nil, err
	}
	return suppression.NewSet(st, key), closeStore, nil
}
