package handlers

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

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

// export streams a completed access request's data as a zip: manifest.json,
// then one JSON array file per connector and collection. Records are read
// from the store in batches and written straight to the response, so memory
// does not grow with the person's data.
func (a *requestsAPI) export(c *gin.Context) {
	if req, _, ok := a.load(c, c.Param("id"), false); ok {
		streamExport(c, a.store, a.log, a.now, req)
	}
}

// streamExport answers with the export of req: 409 unless it is a completed
// access request.
func streamExport(c *gin.Context, store *dsr.Store, log *slog.Logger, now func() time.Time, req *dsr.Request) {
	ctx := c.Request.Context()
	if req.Type != dsr.TypeAccess || req.Status != dsr.StatusCompleted {
		detail := "Only access requests have an export."
		if req.Type == dsr.TypeAccess {
			detail = fmt.Sprintf("The export is ready when the request is completed; it is %s.", req.Status)
		}
		problem(c, Problem{Type: problemNotAvailable, Title: "Export not available", Status: http.StatusConflict, Detail: detail})
		return
	}
	jobs, err := store.Jobs(ctx, req.ID)
	if err != nil {
		writeError(c, log, err)
		return
	}
	m := manifest{
		Request:     manifestRequest{ID: req.ID, Type: req.Type, Regulation: req.Regulation, ReceivedAt: req.ReceivedAt, ClosedAt: req.ClosedAt},
		GeneratedAt: now().UTC(),
		Connectors:  []manifestConnector{},
		Format:      "Each file is a JSON array of the records found in one collection, in MongoDB relaxed Extended JSON.",
	}
	var exported []dsr.Job
	paths := newExportPaths()
	for _, j := range jobs {
		if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
			continue
		}
		exported = append(exported, j)
		mc := manifestConnector{Name: j.Connector, Records: j.Records, Collections: []manifestCollection{}}
		for _, col := range j.Collections {
			f := ""
			if col.Records > 0 {
				f = paths.of(j.Connector, col.Name)
			}
			mc.Collections = append(mc.Collections, manifestCollection{Name: col.Name, Records: col.Records, File: f})
			if col.Outcome == dsr.OutcomeNotSearched {
				mc.Collections[len(mc.Collections)-1].NotSearched = col.Note
			}
		}
		m.Connectors = append(m.Connectors, mc)
	}

	c.Header("Content-Type", "application/zip")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="dsar-%s.zip"`, req.ID))
	c.Status(http.StatusOK)
	bw := bufio.NewWriterSize(c.Writer, 32<<10)
	zw := zip.NewWriter(bw)
	err = writeExport(ctx, store, zw, m, exported, paths)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// Headers are gone; all we can do is cut the stream so the client
		// sees a broken zip rather than a complete-looking one.
		log.ErrorContext(ctx, "export stream failed", "request_id", req.ID, "error", err)
		panic(http.ErrAbortHandler)
	}
	log.InfoContext(ctx, "export downloaded", "request_id", req.ID, "caller", caller(c))
	if _, err := store.AppendAudit(ctx, req.ID, caller(c), "downloaded", nil); err != nil {
		log.WarnContext(ctx, "audit event not recorded", "request_id", req.ID, "kind", "downloaded", "error", err)
	}
}

type exportSource interface {
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data bson.Raw) error) error
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
		err := src.EachExportRecord(ctx, j.ID, func(collection string, data bson.Raw) error {
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
			js, err := bson.MarshalExtJSON(data, false, false)
			if err != nil {
				return fmt.Errorf("render record: %w", err)
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
