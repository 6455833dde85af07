package app

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// exportStore is what an export reads of the store.
type exportStore interface {
	Jobs(ctx context.Context, requestID string) ([]dsr.Job, error)
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error
	AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error)
}

// Export is a completed access request's export, ready to be written as a
// zip: manifest.json, then one JSON array file per connector and
// collection.
type Export struct {
	// Request is the request exported.
	Request *dsr.Request
	s       *Service
	by      string
	m       manifest
	jobs    []dsr.Job
	paths   *exportPaths
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
	e := &Export{Request: req, s: s, by: by, paths: newExportPaths(), m: manifest{
		Request:     manifestRequest{ID: req.ID, Type: req.Type, Regulation: req.Regulation, ReceivedAt: req.ReceivedAt, ClosedAt: req.ClosedAt},
		GeneratedAt: s.now().UTC(),
		Connectors:  []manifestConnector{},
		Format:      "Each file is a JSON array of the records found in one collection, in MongoDB relaxed Extended JSON.",
	}}
	for _, j := range jobs {
		if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
			continue
		}
		e.jobs = append(e.jobs, j)
		mc := manifestConnector{Name: j.Connector, Records: j.Records, Collections: []manifestCollection{}}
		for _, col := range j.Collections {
			f := ""
			if col.Records > 0 {
				f = e.paths.of(j.Connector, col.Name)
			}
			mc.Collections = append(mc.Collections, manifestCollection{Name: col.Name, Records: col.Records, File: f})
			if col.Outcome == dsr.OutcomeNotSearched {
				mc.Collections[len(mc.Collections)-1].NotSearched = col.Note
			}
		}
		e.m.Connectors = append(e.m.Connectors, mc)
	}
	return e, nil
}

// WriteZip writes the export to w as a zip. Records are read from the store
// in batches and written straight on, so memory does not grow with the
// person's data. Written whole, the download is logged and audited
// ("downloaded"); on an error, what w holds is not a whole zip, and the
// caller must make sure its reader sees that (cut the stream).
func (e *Export) WriteZip(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	zw := zip.NewWriter(bw)
	err := writeExport(ctx, e.s.store, zw, e.m, e.jobs, e.paths)
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
	// NotSearched says why the collection could not be searched ("no
	// phone known"): its 0 records do not mean it holds nothing.
	NotSearched string `json:"not_searched,omitempty"`
}

type exportSource interface {
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error
}

func writeExport(ctx context.Context, src exportSource, zw *zip.Writer, m manifest, jobs []dsr.Job, paths *exportPaths) error {
	mw, err := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Deflate, Modified: m.GeneratedAt})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	for _, j := range jobs {
		var (
			w       io.Writer
			current string
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
				if w, err = zw.CreateHeader(&zip.FileHeader{Name: paths.of(j.Connector, collection), Method: zip.Deflate, Modified: m.GeneratedAt}); err != nil {
					return err
				}
				current, first = collection, true
				if _, err := io.WriteString(w, "["); err != nil {
					return err
				}
			}
			buf.Reset()
			if !first {
				buf.WriteByte(',')
			}
			buf.WriteString("\n  ")
			if err := json.Indent(&buf, js, "  ", "  "); err != nil {
				return fmt.Errorf("render record: %w", err)
			}
			first = false
			_, err = w.Write(buf.Bytes())
			return err
		})
		if err != nil {
			return err
		}
		if err := closeFile(); err != nil {
			return err
		}
	}
	return nil
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
