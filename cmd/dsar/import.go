package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

const requestsSummary = "file requests from a CSV file (dsar requests import FILE.csv)"

const importHelp = `Usage: dsar requests import [--url URL] [--batch N] [--resume] FILE.csv

Files every row of a CSV file as a request, through the agent API's bulk
endpoint (POST /v1/requests/bulk), in batches. Each row is filed or refused on
its own; nothing is all or nothing. On a terminal it shows a progress bar,
elsewhere one line per batch. Rows that were refused are written, with the
reason, to FILE.failures.csv next to the file (removed when there are none).
Exit status: 0 when every row was filed, 1 when some were refused, 2 on a
usage, file or connection error.

Where it is: FILE.progress records, after each batch, the rows the API has
answered. An import that stops (a time-out, the API down, Ctrl-C) leaves it,
and --resume goes on after the last row answered; without --resume an
existing FILE.progress is an error, and a changed FILE is never resumed. The
rows of a batch sent but not answered are sent again: a row the API had
filed becomes a duplicate of it (within DSAR_DUPLICATE_WINDOW). Neither
FILE.progress nor FILE.failures.csv is ever overwritten or followed through a
link: move away what an earlier import left, or resume it.

Each batch may take 30s plus 1s per row before it is given up; a batch that
takes more than a quarter of that halves the next one.

The first line names the columns, in any order (only type and regulation are
required; at least one of email, customer_id, phone, advertising_id,
device_id):

  type, regulation, email, customer_id, phone, advertising_id, device_id,
  channel, note, received_at, identity_verified (true|false), identity_method

The API key is read from DSAR_API_KEY (never a flag: flags show in process
lists); it needs the agent or admin role.
`

// importColumns are the CSV columns the import knows.
var importColumns = []string{"type", "regulation", "email", "customer_id", "phone", "advertising_id", "device_id", "channel", "note", "received_at", "identity_verified", "identity_method"}

// Batch time-outs: a batch of n rows may take batchBase + n*batchPerRow.
// Bulk filing on the embedded store runs at hundreds of rows a second, so
// this leaves a wide margin on a loaded machine.
const (
	batchBase   = 30 * time.Second
	batchPerRow = time.Second
)

// runRequests runs `dsar requests <subcommand>`.
func runRequests(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stdout, importHelp)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return nil
		}
		return usageError("requests: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("dsar requests import", flag.ContinueOnError)
	fs.SetOutput(stdout)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the dsar API")
	batch := fs.Int("batch", 500, "rows per bulk call (1 to 1000)")
	resume := fs.Bool("resume", false, "go on after the last row an earlier import of FILE got an answer for (FILE.progress)")
	fs.Usage = func() { fmt.Fprint(stdout, importHelp, "\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{code: exitUsage, err: err}
	}
	if fs.NArg() != 1 {
		return usageError("requests import: give one CSV file")
	}
	if *batch < 1 || *batch > 1000 {
		return usageError("requests import: --batch must be from 1 to 1000")
	}
	key, _ := lookupEnv("DSAR_API_KEY")
	if key == "" {
		return usageError("requests import: set DSAR_API_KEY to an agent's or admin's API key")
	}
	im := importer{url: strings.TrimSuffix(*url, "/"), key: key, batch: *batch, resume: *resume, out: stderr, client: &http.Client{},
		base: batchBase, perRow: batchPerRow}
	return im.run(ctx, fs.Arg(0))
}

// importer files the rows of one CSV file.
type importer struct {
	url, key string
	batch    int
	resume   bool
	out      io.Writer // progress and summary
	client   *http.Client
	// A batch of n rows is given up after base + n*perRow.
	base, perRow time.Duration
}

// row is one CSV row: its line number and the request it describes.
type row struct {
	line int
	body map[string]any
}

func (im importer) run(ctx context.Context, path string) error {
	rows, sum, err := readRows(path)
	if err != nil {
		return exitError{code: exitUsage, err: err}
	}
	failuresPath := strings.TrimSuffix(path, ".csv") + ".failures.csv"
	pos, err := openPosition(path+".progress", sum, im.resume)
	if err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
	}
	defer pos.close()
	fails, err := openFailures(failuresPath, pos.at.Rows > 0)
	if err != nil {
		if pos.at.Rows == 0 {
			pos.finish() // nothing was sent: the next run starts afresh
		}
		return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
	}
	if pos.at.Rows > 0 {
		fmt.Fprintf(im.out, "resuming after line %d: %d rows answered before (%d filed, %d refused)\n", pos.at.Line, pos.at.Rows, pos.at.Filed, pos.at.Refused)
	}
	at := pos.at
	bar := newProgress(im.out, len(rows), at.Rows)
	size := im.batch
	for at.Rows < len(rows) {
		chunk := rows[at.Rows:min(at.Rows+size, len(rows))]
		limit := im.base + time.Duration(len(chunk))*im.perRow
		started := time.Now()
		results, err := im.send(ctx, chunk, limit)
		if err != nil {
			bar.done()
			_ = fails.close(false)
			return exitError{code: exitUsage, err: fmt.Errorf("requests import: rows from line %d: %w (the rows before it were answered; "+
				"run again with --resume to go on from line %d)", chunk[0].line, err, chunk[0].line)}
		}
		for i, r := range results {
			if r.Status == http.StatusAccepted {
				at.Filed++
				continue
			}
			at.Refused++
			if err := fails.write([]string{fmt.Sprint(chunk[i].line), fmt.Sprint(r.Status), r.reason()}); err != nil {
				return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
			}
		}
		at.Rows += len(chunk)
		at.Line = chunk[len(chunk)-1].line
		// The failures first: a position never counts a refusal that
		// FILE.failures.csv lacks.
		if err := fails.flush(); err != nil {
			return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
		}
		if err := pos.record(at); err != nil {
			return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
		}
		bar.set(at, chunk[0].line)
		if took := time.Since(started); took > limit/4 && size > 1 {
			size = max(1, size/2)
		}
	}
	bar.done()
	fmt.Fprintf(im.out, "%d rows: %d filed, %d refused\n", len(rows), at.Filed, at.Refused)
	if err := fails.close(at.Refused == 0); err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("requests import: %w", err)}
	}
	pos.finish()
	if at.Refused == 0 {
		return nil
	}
	fmt.Fprintf(im.out, "refused rows, with reasons: %s\n", failuresPath)
	return exitError{code: 1, err: fmt.Errorf("requests import: %d rows refused", at.Refused)}
}

// bulkResult is one result of the bulk endpoint.
type bulkItem struct {
	Status  int `json:"status"`
	Problem *struct {
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"problem"`
}

func (b bulkItem) reason() string {
	if b.Problem == nil {
		return "refused"
	}
	var parts []string
	for _, e := range b.Problem.Errors {
		parts = append(parts, e.Field+": "+e.Message)
	}
	if len(parts) == 0 {
		return b.Problem.Detail
	}
	return strings.Join(parts, "; ")
}

// send files one batch and returns its results in order.
func (im importer) send(ctx context.Context, chunk []row, limit time.Duration) ([]bulkItem, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	reqs := make([]map[string]any, len(chunk))
	for i, r := range chunk {
		reqs[i] = r.body
	}
	body, err := json.Marshal(map[string]any{"requests": reqs})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, im.url+"/v1/requests/bulk", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+im.key)
	resp, err := im.client.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("no answer within %s (the API may still file them)", limit)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &p)
		return nil, fmt.Errorf("the API answered %d: %s", resp.StatusCode, p.Detail)
	}
	var out struct {
		Results []bulkItem `json:"results"`
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.Results) != len(chunk) {
		return nil, fmt.Errorf("the API's answer is not a bulk result for %d rows", len(chunk))
	}
	return out.Results, nil
}

// readRows reads a CSV file into request bodies, and returns the hex
// SHA-256 of its content.
func readRows(path string) ([]row, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("requests import: %w", err)
	}
	sum := sha256.Sum256(data)
	rows, err := parseRows(path, data)
	return rows, hex.EncodeToString(sum[:]), err
}

func parseRows(path string, data []byte) ([]row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("requests import: %s: line 1: no header line: the file is empty", path)
	}
	if err != nil {
		return nil, fmt.Errorf("requests import: %s: the header line: %w", path, err)
	}
	known := map[string]bool{}
	for _, c := range importColumns {
		known[c] = true
	}
	cols := make([]string, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, fmt.Errorf("requests import: %s: line 1: unknown column %q (known: %s)", path, h, strings.Join(importColumns, ", "))
		}
		cols[i] = h
	}
	var rows []row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			// A *csv.ParseError, which names its line. (FieldPos is not
			// asked: it panics when the record's first field is the bad
			// one.)
			return nil, fmt.Errorf("requests import: %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		rows = append(rows, row{line: line, body: rowBody(cols, rec)})
	}
}

// rowBody turns one CSV record into the body the API takes. Empty cells are
// left out; the API checks the rest.
func rowBody(cols, rec []string) map[string]any {
	body := map[string]any{}
	subject := map[string]any{}
	identity := map[string]any{}
	for i, v := range rec {
		v = strings.TrimSpace(v)
		if v == "" || i >= len(cols) {
			continue
		}
		switch c := cols[i]; c {
		case "email", "customer_id", "phone", "advertising_id", "device_id":
			subject[c] = v
		case "identity_verified":
			identity["verified"] = strings.EqualFold(v, "true") || v == "1" || strings.EqualFold(v, "yes")
		case "identity_method":
			identity["method"] = v
		default:
			body[c] = v
		}
	}
	body["subject"] = subject
	if len(identity) > 0 {
		body["identity"] = identity
	}
	return body
}

// failures is FILE.failures.csv: refused rows with their reasons.
type failures struct {
	path string
	f    *os.File
	w    *csv.Writer
}

// openFailures creates path exclusively, never through a link nor over a
// file (O_EXCL), with its header. When resuming, an existing one that is a
// regular file is added to instead.
func openFailures(path string, resuming bool) (*failures, error) {
	if resuming {
		if st, err := os.Lstat(path); err == nil {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file (a link?): move it away; the import writes refused rows there", path)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", path, err)
			}
			return &failures{path: path, f: f, w: csv.NewWriter(f)}, nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s exists (a file or a link): move it away; the import never overwrites it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fl := &failures{path: path, f: f, w: csv.NewWriter(f)}
	if err := fl.write([]string{"line", "status", "reason"}); err != nil {
		_ = fl.close(true)
		return nil, err
	}
	return fl, nil
}

func (fl *failures) write(rec []string) error {
	if err := fl.w.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", fl.path, err)
	}
	return nil
}

// flush writes what is buffered through to the file.
func (fl *failures) flush() error {
	fl.w.Flush()
	if err := fl.w.Error(); err != nil {
		return fmt.Errorf("write %s: %w", fl.path, err)
	}
	if err := fl.f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", fl.path, err)
	}
	return nil
}

// close closes the file, and removes it when empty is set: no row of the
// file was refused, in this run or an earlier one it resumes, so it holds
// its header alone.
func (fl *failures) close(empty bool) error {
	err := fl.flush()
	if cerr := fl.f.Close(); err == nil {
		err = cerr
	}
	if empty {
		_ = os.Remove(fl.path)
		return nil
	}
	return err
}

// position is where an import of one file is: the rows the API answered.
type position struct {
	Rows    int `json:"rows"` // rows answered, from the first
	Line    int `json:"line"` // the line of the last of them
	Filed   int `json:"filed"`
	Refused int `json:"refused"`
}

// positionFile is FILE.progress: a line naming the file's SHA-256, then a
// JSON position per batch answered, appended; the last whole line counts.
type positionFile struct {
	path string
	f    *os.File
	at   position
}

const progressHeader = "dsar requests import progress, sha256 "

// openPosition opens the position of an import of the file whose content has
// hex SHA-256 sum. Without resume it creates path exclusively (an earlier
// import's is an error saying what to do); with resume it reads the earlier
// one and goes on in it, or creates it when there is none.
func openPosition(path, sum string, resume bool) (*positionFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		p := &positionFile{path: path, f: f}
		if _, err := f.WriteString(progressHeader + sum + "\n"); err != nil {
			p.finish()
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		return p, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if !resume {
		return nil, fmt.Errorf("%s exists: an earlier import of this file stopped; run again with --resume to go on after the rows it filed, "+
			"or remove %s to file every row again", path, path)
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (a link?): remove it", path)
	}
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	p := &positionFile{path: path, f: f}
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		p.close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	lines := strings.Split(string(data), "\n")
	if lines[0] != progressHeader+sum {
		p.close()
		return nil, fmt.Errorf("%s is not the progress of this file's content (it changed since): remove %s to file every row", path, path)
	}
	for _, l := range lines[1 : len(lines)-1] { // the last, unterminated one may be half-written
		var at position
		if json.Unmarshal([]byte(l), &at) == nil {
			p.at = at
		}
	}
	return p, nil
}

// record appends a position and syncs it.
func (p *positionFile) record(at position) error {
	b, _ := json.Marshal(at)
	if _, err := p.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	p.at = at
	return nil
}

func (p *positionFile) close() { _ = p.f.Close() }

// finish removes the position: every row was answered.
func (p *positionFile) finish() {
	p.close()
	_ = os.Remove(p.path)
}

// progress draws a bar on a terminal, and elsewhere writes a line per
// batch.
type progress struct {
	w            io.Writer
	total, start int
	began        time.Time
	tty          bool
}

func newProgress(w io.Writer, total, start int) *progress {
	return &progress{w: w, total: total, start: start, began: time.Now(), tty: isTerminal(w)}
}

// set shows the position after a batch whose first row was on line from.
func (p *progress) set(at position, from int) {
	rate := ""
	if s := time.Since(p.began).Seconds(); s > 0 {
		rate = fmt.Sprintf(", %.0f rows/s", float64(at.Rows-p.start)/s)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "lines %d-%d answered: %d/%d rows, %d filed, %d refused%s\n", from, at.Line, at.Rows, p.total, at.Filed, at.Refused, rate)
		return
	}
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = width * at.Rows / p.total
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d rows, %d refused%s ", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), at.Rows, p.total, at.Refused, rate)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
