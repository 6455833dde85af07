package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const requestsSummary = "file requests from a CSV file (dsar requests import FILE.csv)"

const importHelp = `Usage: dsar requests import [--url URL] [--batch N] FILE.csv

Files every row of a CSV file as a request, through the agent API's bulk
endpoint (POST /v1/requests/bulk), in batches. Each row is filed or refused on
its own; nothing is all or nothing. On a terminal it shows a progress bar.
Rows that were refused are written, with the reason, to FILE.failures.csv next
to the file (removed when there are none). Exit status: 0 when every row was
filed, 1 when some were refused, 2 on a usage, file or connection error.

The first line names the columns, in any order (only type and regulation are
required; at least one of email, customer_id, phone):

  type, regulation, email, customer_id, phone, channel, note, received_at,
  identity_verified (true|false), identity_method

The API key is read from DSAR_API_KEY (never a flag: flags show in process
lists); it needs the agent or admin role.
`

// importColumns are the CSV columns the import knows.
var importColumns = []string{"type", "regulation", "email", "customer_id", "phone", "channel", "note", "received_at", "identity_verified", "identity_method"}

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
	im := importer{url: strings.TrimSuffix(*url, "/"), key: key, batch: *batch, out: stderr, client: &http.Client{Timeout: 5 * time.Minute}}
	return im.run(ctx, fs.Arg(0))
}

// importer files the rows of one CSV file.
type importer struct {
	url, key string
	batch    int
	out      io.Writer // progress and summary
	client   *http.Client
}

// row is one CSV row: its line number and the request it describes.
type row struct {
	line int
	body map[string]any
}

func (im importer) run(ctx context.Context, path string) error {
	rows, err := readRows(path)
	if err != nil {
		return exitError{code: exitUsage, err: err}
	}
	failuresPath := strings.TrimSuffix(path, ".csv") + ".failures.csv"
	var failures [][]string
	bar := newProgress(im.out, len(rows))
	filed := 0
	for start := 0; start < len(rows); start += im.batch {
		chunk := rows[start:min(start+im.batch, len(rows))]
		results, err := im.send(ctx, chunk)
		if err != nil {
			bar.done()
			return exitError{code: exitUsage, err: fmt.Errorf("requests import: rows from line %d: %w (rows before it were filed)", chunk[0].line, err)}
		}
		for i, r := range results {
			if r.Status == http.StatusAccepted {
				filed++
				continue
			}
			failures = append(failures, []string{fmt.Sprint(chunk[i].line), fmt.Sprint(r.Status), r.reason()})
		}
		bar.add(len(chunk))
	}
	bar.done()
	fmt.Fprintf(im.out, "%d rows: %d filed, %d refused\n", len(rows), filed, len(failures))
	if len(failures) == 0 {
		_ = os.Remove(failuresPath)
		return nil
	}
	if err := writeFailures(failuresPath, failures); err != nil {
		return exitError{code: exitUsage, err: err}
	}
	fmt.Fprintf(im.out, "refused rows, with reasons: %s\n", failuresPath)
	return exitError{code: 1, err: fmt.Errorf("requests import: %d rows refused", len(failures))}
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
func (im importer) send(ctx context.Context, chunk []row) ([]bulkItem, error) {
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

// readRows reads a CSV file into request bodies.
func readRows(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("requests import: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("requests import: %s: no header line: %w", path, err)
	}
	known := map[string]bool{}
	for _, c := range importColumns {
		known[c] = true
	}
	cols := make([]string, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, fmt.Errorf("requests import: %s: unknown column %q (known: %s)", path, h, strings.Join(importColumns, ", "))
		}
		cols[i] = h
	}
	var rows []row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("requests import: %s: %w", path, err)
		}
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
		case "email", "customer_id", "phone":
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

func writeFailures(path string, failures [][]string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("requests import: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"line", "status", "reason"})
	_ = w.WriteAll(failures)
	if err := w.Error(); err != nil {
		_ = f.Close()
		return fmt.Errorf("requests import: %w", err)
	}
	return f.Close()
}

// progress draws a bar on a terminal and nothing elsewhere.
type progress struct {
	w          io.Writer
	total, now int
	tty        bool
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, total: total, tty: tty}
}

func (p *progress) add(n int) {
	p.now += n
	if !p.tty || p.total == 0 {
		return
	}
	const width = 30
	filled := width * p.now / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), p.now, p.total)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
