package app

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/csvsafe"
)

// exportStore is what an export reads of the store.
type exportStore interface {
	Jobs(ctx context.Context, requestID string) ([]dsr.Job, error)
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error
	AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error)
}

// Export is a completed access request's export, ready to be written as a
// zip, the access package the person receives (see WriteZip).
type Export struct {
	// Request is the request exported.
	Request *dsr.Request
	s       *Service
	by      string
	c       *exportContents
}

// exportContents is what an export's zip is written from: its manifest and
// summary, the export jobs whose records it holds, and their files' names.
type exportContents struct {
	m     manifest
	sum   summary
	jobs  []dsr.Job
	paths *exportPaths
}

// Filename is the name a download of the export is offered under.
func (e *Export) Filename() string { return "dsar-" + e.Request.ID + ".zip" }

// Export returns the export of request id for by (an agent, or "subject"):
// ErrExportNotAvailable (a Refusal saying why) unless it is a completed
// access request.
func (s *Service) Export(ctx context.Context, id, by string) (*Export, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.ExportOf(ctx, req, by)
}

// ExportOf is Export of a request already read.
func (s *Service) ExportOf(ctx context.Context, req *dsr.Request, by string) (*Export, error) {
	if req.Type != dsr.TypeAccess || req.Status != dsr.StatusCompleted {
		detail := "Only access requests have an export."
		if req.Type == dsr.TypeAccess {
			detail = fmt.Sprintf("The export is ready when the request is completed; it is %s.", req.Status)
		}
		return nil, dsr.Refuse(ErrExportNotAvailable, detail)
	}
	jobs, err := s.store.Jobs(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	c := &exportContents{paths: newExportPaths(), m: manifest{
		Request:     manifestRequest{ID: req.ID, Type: req.Type, Regulation: req.Regulation, ReceivedAt: req.ReceivedAt, ClosedAt: req.ClosedAt},
		GeneratedAt: s.now().UTC(),
		Connectors:  []manifestConnector{},
		Format:      exportFormat,
	}}
	c.sum = summary{Request: c.m.Request, GeneratedAt: c.m.GeneratedAt, Systems: []systemSummary{}, Rights: rightsNotice}
	for _, j := range jobs {
		if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
			continue
		}
		c.add(j)
	}
	e := &Export{Request: req, s: s, by: by, c: c}
	return e, nil
}

// WriteZip writes the export to w as a zip:
//
//   - manifest.json: the request, and per system and collection the number
//     of records and the files holding them;
//   - summary.json: per system what GDPR Art. 15(1) says the person must be
//     told (purpose, categories, recipients, retention, source, legal
//     basis), as its connector's data map declares it ("not declared"
//     otherwise), with the records found;
//   - <system>/<collection>.json: the records, a JSON array;
//   - <system>/<collection>.csv: the same records, a row each (see
//     columns for how they are flattened);
//   - index.html: a page to read in a browser, offline, with no script: the
//     summary and a table of each collection's records (at most
//     maxHTMLRows each).
//
// Records are read from the store in batches and written straight on, once
// per file that shows them (JSON, CSV, HTML): none is held, so memory does
// not grow with the person's data. Written whole, the download is logged and audited
// ("downloaded"); on an error, what w holds is not a whole zip, and the
// caller must make sure its reader sees that (cut the stream).
func (e *Export) WriteZip(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	zw := zip.NewWriter(bw)
	err := writeExport(ctx, e.s.store, zw, e.c)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		e.s.log.ErrorContext(ctx, "export stream failed", "request_id", e.Request.ID, "error", err)
		return fmt.Errorf("export %s: %w", e.Request.ID, err)
	}
	e.s.log.InfoContext(ctx, "export downloaded", "request_id", e.Request.ID, "caller", e.by)
	e.s.audit(ctx, e.Request.ID, e.by, "downloaded", nil)
	return nil
}

// manifest describes an access export: manifest.json in the zip.
type manifest struct {
	Request     manifestRequest     `json:"request"`
	GeneratedAt time.Time           `json:"generated_at"`
	Connectors  []manifestConnector `json:"connectors"`
	Format      string              `json:"format"`
}

type manifestRequest struct {
	ID         string         `json:"id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	ReceivedAt time.Time      `json:"received_at"`
	ClosedAt   *time.Time     `json:"completed_at,omitempty"`
}

type manifestConnector struct {
	Name        string               `json:"name"`
	Records     int64                `json:"records"`
	Collections []manifestCollection `json:"collections"`
}

type manifestCollection struct {
	Name    string `json:"name"`
	Records int64  `json:"records"`
	// File is the path in the zip; empty when nothing was found.
	File string `json:"file,omitempty"`
	// CSV is the path of the same records as CSV; empty when nothing was
	// found.
	CSV string `json:"csv,omitempty"`
	// NotSearched says why the collection could not be searched ("no
	// phone known"): its 0 records do not mean it holds nothing.
	NotSearched string `json:"not_searched,omitempty"`
}

type exportSource interface {
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error
}

// exportFormat is the manifest's description of the files.
const exportFormat = "Each .json file is a JSON array of the records found in one collection, in MongoDB relaxed Extended JSON; " +
	"each .csv file holds the same records, a row each, nested fields as dotted columns and arrays as JSON text. " +
	"summary.json says per system why it holds the data, what kinds, who receives it, how long it is kept, where it came from " +
	"and on what legal basis; index.html shows it all in a browser."

// add adds an export job's system to the manifest and the summary.
func (c *exportContents) add(j dsr.Job) {
	c.jobs = append(c.jobs, j)
	mc := manifestConnector{Name: j.Connector, Records: j.Records, Collections: []manifestCollection{}}
	for _, col := range j.Collections {
		mcol := manifestCollection{Name: col.Name, Records: col.Records}
		if col.Records > 0 {
			mcol.File = c.paths.of(j.Connector, col.Name)
			mcol.CSV = csvPath(mcol.File)
		}
		if col.Outcome == dsr.OutcomeNotSearched {
			mcol.NotSearched = col.Note
		}
		mc.Collections = append(mc.Collections, mcol)
	}
	c.m.Connectors = append(c.m.Connectors, mc)
	c.sum.Systems = append(c.sum.Systems, systemOf(j, mc.Collections))
	c.sum.Records += j.Records
}

// csvPath is the path of the CSV file beside a collection's JSON file.
func csvPath(jsonPath string) string { return strings.TrimSuffix(jsonPath, ".json") + ".csv" }

// collection returns what the manifest says of a system's collection; a
// collection it does not list (records the job's counts missed) gets its
// files named.
func (c *exportContents) collection(system int, name string) manifestCollection {
	for _, col := range c.m.Connectors[system].Collections {
		if col.Name == name {
			return col
		}
	}
	f := c.paths.of(c.jobs[system].Connector, name)
	return manifestCollection{Name: name, File: f, CSV: csvPath(f)}
}

// writeExport writes the files of the zip (see WriteZip), reading each job's
// records three times: for the JSON files, learning the CSV columns on the
// way; for the CSV files; for index.html.
func writeExport(ctx context.Context, src exportSource, zw *zip.Writer, c *exportContents) error {
	create := func(name string) (io.Writer, error) {
		return zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: c.m.GeneratedAt})
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", c.m}, {"summary.json", c.sum}} {
		w, err := create(f.name)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // text as written: "<" is no danger in a JSON file
		if err := enc.Encode(f.v); err != nil {
			return err
		}
	}
	cols := map[[2]string]*columns{}
	for _, j := range c.jobs {
		if err := writeJSON(ctx, src, create, j, c.paths, cols); err != nil {
			return err
		}
	}
	for _, j := range c.jobs {
		if err := writeCSV(ctx, src, create, j, c.paths, cols); err != nil {
			return err
		}
	}
	return writeHTML(ctx, src, create, c, cols)
}

// writeJSON writes one job's JSON files, a JSON array per collection, and
// learns each collection's columns.
func writeJSON(ctx context.Context, src exportSource, create func(string) (io.Writer, error), j dsr.Job, paths *exportPaths, cols map[[2]string]*columns) error {
	var (
		w       io.Writer
		current string
		col     *columns
		first   bool
		buf     bytes.Buffer
	)
	closeFile := func() error {
		if w == nil {
			return nil
		}
		_, err := io.WriteString(w, "\n]\n")
		return err
	}
	err := src.EachExportRecord(ctx, j.ID, func(collection string, js json.RawMessage) error {
		if w == nil || collection != current {
			if err := closeFile(); err != nil {
				return err
			}
			var err error
			if w, err = create(paths.of(j.Connector, collection)); err != nil {
				return err
			}
			current, first = collection, true
			col = newColumns()
			cols[[2]string{j.Connector, collection}] = col
			if _, err := io.WriteString(w, "["); err != nil {
				return err
			}
		}
		buf.Reset()
		if !first {
			buf.WriteByte(',')
		}
		buf.WriteString("\n  ")
		render := func(dst *bytes.Buffer, src []byte) error { return json.Indent(dst, src, "  ", "  ") }
		if nesting(js) > maxIndentDepth {
			render = json.Compact
		}
		if err := render(&buf, js); err != nil {
			return fmt.Errorf("render record: %w", err)
		}
		first = false
		if err := col.learn(js); err != nil {
			return err
		}
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return err
	}
	return closeFile()
}

// maxIndentDepth is the deepest record the JSON files show indented; a
// deeper one is written compact, on one line. Indenting adds each line's
// depth in spaces: a record nested n levels grows by about 2n² bytes, so a
// 60 KB one nested 10,000 levels (an uploaded file may hold it) would take
// 200 MB.
const maxIndentDepth = 32

// nesting is how deeply objects and arrays nest in js, a valid JSON text.
func nesting(js []byte) int {
	depth, most, inString, escaped := 0, 0, false, false
	for _, c := range js {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			most = max(most, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return most
}

// utf8BOM starts each CSV file, so that a spreadsheet reads it as UTF-8.
const utf8BOM = "\uFEFF"

// writeCSV writes one job's CSV files, one per collection: a header row of
// the collection's columns, then a row per record, each cell guarded
// against formulas (csvsafe.Cell).
func writeCSV(ctx context.Context, src exportSource, create func(string) (io.Writer, error), j dsr.Job, paths *exportPaths, cols map[[2]string]*columns) error {
	var (
		cw      *csv.Writer
		current string
		col     *columns
		safe    []string
	)
	write := func(cells []string) error {
		safe = csvsafe.Row(safe, cells)
		return cw.Write(safe)
	}
	flush := func() error {
		if cw == nil {
			return nil
		}
		cw.Flush()
		return cw.Error()
	}
	err := src.EachExportRecord(ctx, j.ID, func(collection string, js json.RawMessage) error {
		if cw == nil || collection != current {
			if err := flush(); err != nil {
				return err
			}
			col = cols[[2]string{j.Connector, collection}]
			if col == nil {
				return fmt.Errorf("render %s: records not seen in the first pass", collection)
			}
			w, err := create(csvPath(paths.of(j.Connector, collection)))
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, utf8BOM); err != nil {
				return err
			}
			cw, current = csv.NewWriter(w), collection
			cw.UseCRLF = true
			if err := write(col.header()); err != nil {
				return err
			}
		}
		row, err := col.row(js)
		if err != nil {
			return err
		}
		return write(row)
	})
	if err != nil {
		return err
	}
	return flush()
}

// errPassDone stops a pass over a job's records that needs no more.
var errPassDone = errors.New("pass done")

// withRecords counts the collections of j with records.
func withRecords(j dsr.Job) int {
	n := 0
	for _, col := range j.Collections {
		if col.Records > 0 {
			n++
		}
	}
	return n
}

// writeHTML writes index.html: the summary, then per system its data map,
// its collections and a table of each one's records.
func writeHTML(ctx context.Context, src exportSource, create func(string) (io.Writer, error), c *exportContents, cols map[[2]string]*columns) error {
	zf, err := create("index.html")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(zf, 16<<10)
	head := pageHead{Request: c.m.Request, GeneratedAt: c.m.GeneratedAt, Records: c.sum.Records, Systems: c.sum.Systems, Rights: c.sum.Rights}
	if err := page.ExecuteTemplate(w, "head", head); err != nil {
		return err
	}
	for i, j := range c.jobs {
		if err := page.ExecuteTemplate(w, "system", c.sum.Systems[i]); err != nil {
			return err
		}
		var (
			open  bool
			end   tableEnd
			col   *columns
			named string
			// left counts the collections with records, as the job
			// counted them, whose table is not started yet: once none
			// is left and the last table is full, the pass stops
			// rather than read records it would not show.
			left = withRecords(j)
		)
		closeTable := func() error {
			if !open {
				return nil
			}
			open = false
			return page.ExecuteTemplate(w, "tableEnd", end)
		}
		err := src.EachExportRecord(ctx, j.ID, func(collection string, js json.RawMessage) error {
			if !open || collection != named {
				if err := closeTable(); err != nil {
					return err
				}
				col = cols[[2]string{j.Connector, collection}]
				if col == nil {
					return fmt.Errorf("render %s: records not seen in the first pass", collection)
				}
				named, open = collection, true
				end = tableEnd{Collection: c.collection(i, collection)}
				if end.Collection.Records > 0 {
					left--
				}
				if err := page.ExecuteTemplate(w, "table", tableHead{Collection: end.Collection, Header: col.header()}); err != nil {
					return err
				}
			}
			end.Read++
			if end.Shown >= maxHTMLRows {
				if left == 0 {
					end.Read = max(end.Read, end.Collection.Records)
					return errPassDone
				}
				return nil
			}
			row, err := col.row(js)
			if err != nil {
				return err
			}
			end.Shown++
			return writeRow(w, row)
		})
		if err != nil && !errors.Is(err, errPassDone) {
			return err
		}
		if err := closeTable(); err != nil {
			return err
		}
		if err := page.ExecuteTemplate(w, "systemEnd", nil); err != nil {
			return err
		}
	}
	if err := page.ExecuteTemplate(w, "foot", nil); err != nil {
		return err
	}
	return w.Flush()
}

var unsafePathChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// exportPaths names the file of each collection in the zip:
// connector/collection.json, with anything but letters, digits, dot, dash and
// underscore replaced, and a -2, -3... suffix where two collections would
// otherwise share a name ("a b" and "a_b").
type exportPaths struct {
	byKey map[[2]string]string
	used  map[string]bool
}

func newExportPaths() *exportPaths {
	return &exportPaths{byKey: map[[2]string]string{}, used: map[string]bool{}}
}

// of returns the file of a connector's collection, the same on every call.
func (p *exportPaths) of(connector, collection string) string {
	key := [2]string{connector, collection}
	if path, ok := p.byKey[key]; ok {
		return path
	}
	base := unsafePathChars.ReplaceAllString(connector, "_") + "/" + unsafePathChars.ReplaceAllString(collection, "_")
	path := base + ".json"
	for n := 2; p.used[path] || path == "manifest.json"; n++ {
		path = fmt.Sprintf("%s-%d.json", base, n)
	}
	p.byKey[key], p.used[path] = path, true
	return path
}
