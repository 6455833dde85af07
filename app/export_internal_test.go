package app

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// lazySource yields n records of incompressible data for each job and
// counts how many it has handed out.
type lazySource struct {
	n       int
	yielded int
}

func (s *lazySource) EachExportRecord(_ context.Context, _ string, fn func(string, json.RawMessage) error) error {
	for i := range s.n {
		b := make([]byte, 100)
		_, _ = rand.Read(b)
		doc, _ := json.Marshal(bson.D{{Key: "i", Value: i}, {Key: "blob", Value: hex.EncodeToString(b)}})
		s.yielded++
		if err := fn("orders", doc); err != nil {
			return err
		}
	}
	return nil
}

// pacedSink records the largest number of records read between two writes
// of output.
type pacedSink struct {
	src    *lazySource
	last   int
	maxGap int
	writes int
}

func (p *pacedSink) Write(b []byte) (int, error) {
	p.writes++
	if gap := p.src.yielded - p.last; gap > p.maxGap {
		p.maxGap = gap
	}
	p.last = p.src.yielded
	return len(b), nil
}

// TestExportStreams shows that the zip is written while records are read:
// the number of records read between two writes of output stays the same
// whether the person has 2,000 records or 20,000, so memory does not grow
// with their data.
func TestExportStreams(t *testing.T) {
	t.Parallel()
	var gaps []int
	for _, n := range []int{2_000, 20_000} {
		src := &lazySource{n: n}
		sink := &pacedSink{src: src}
		zw := zip.NewWriter(sink)
		if err := writeExport(context.Background(), src, zw, contentsOf(dsr.Job{ID: "j", Connector: "shop", Records: int64(n),
			Collections: []dsr.CollectionResult{{Name: "orders", Records: int64(n)}}})); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, sink.maxGap)
	}
	t.Logf("most records read between two writes: %d of 2,000, %d of 20,000", gaps[0], gaps[1])
	if gaps[1] > 2*gaps[0] || gaps[1] >= 2_000 {
		t.Errorf("records read between writes grow with the data (%d at 2,000, %d at 20,000): the export buffers", gaps[0], gaps[1])
	}
}

// contentsOf is the contents of an export of jobs.
func contentsOf(jobs ...dsr.Job) *exportContents {
	c := &exportContents{paths: newExportPaths(), m: manifest{Connectors: []manifestConnector{}}}
	c.sum = summary{Systems: []systemSummary{}}
	for _, j := range jobs {
		c.add(j)
	}
	return c
}

// BenchmarkExport measures writing an access export (zip, manifest,
// summary, a JSON array, a CSV file per collection and index.html) against its baseline in the same run: rendering
// the same records as JSON with no zip. It reports ns per record for
// both and their ratio, which is what to compare between runs (benchstat):
// the absolute figures depend on the machine.
func BenchmarkExport(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			src := &fixedSource{docs: makeDocs(n)}
			var base, full time.Duration
			for b.Loop() {
				start := time.Now()
				_ = src.EachExportRecord(context.Background(), "j", func(_ string, d json.RawMessage) error {
					var buf bytes.Buffer
					err := json.Indent(&buf, d, "  ", "  ")
					_, _ = io.Discard.Write(buf.Bytes())
					return err
				})
				base += time.Since(start)

				start = time.Now()
				zw := zip.NewWriter(io.Discard)
				if err := writeExport(context.Background(), src, zw, contentsOf(dsr.Job{ID: "j", Connector: "shop", Records: int64(n),
					Collections: []dsr.CollectionResult{{Name: "orders", Records: int64(n)}}})); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
				full += time.Since(start)
			}
			per := float64(b.N * n)
			b.ReportMetric(float64(base.Nanoseconds())/per, "baseline-ns/record")
			b.ReportMetric(float64(full.Nanoseconds())/per, "zip-ns/record")
			b.ReportMetric(float64(full)/float64(base), "zip/baseline")
		})
	}
}

// fixedSource yields the same records for every job.
type fixedSource struct{ docs []json.RawMessage }

func (s *fixedSource) EachExportRecord(_ context.Context, _ string, fn func(string, json.RawMessage) error) error {
	for _, d := range s.docs {
		if err := fn("orders", d); err != nil {
			return err
		}
	}
	return nil
}

func makeDocs(n int) []json.RawMessage {
	docs := make([]json.RawMessage, n)
	for i := range docs {
		docs[i], _ = bson.MarshalExtJSON(bson.D{
			{Key: "_id", Value: fmt.Sprintf("ord_%06d", i)}, {Key: "customer_id", Value: "cus_ada"},
			{Key: "items", Value: bson.A{"analytical engine manual", "punched cards"}}, {Key: "total", Value: 42.5},
			{Key: "shipping_address", Value: "1 Example Row, London"}, {Key: "placed_at", Value: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		}, false, false)
	}
	return docs
}

func TestExportPathsAreUnique(t *testing.T) {
	t.Parallel()
	p := newExportPaths()
	got := []string{p.of("shop", "a b"), p.of("shop", "a/b"), p.of("shop", "a_b"), p.of("shop", "../../etc"), p.of("shop", "a b")}
	want := []string{"shop/a_b.json", "shop/a_b-2.json", "shop/a_b-3.json", "shop/.._.._etc.json", "shop/a_b.json"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("path %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestExportDeepRecordIsNotAmplified: a record nested thousands of levels
// deep (an uploaded file of a manual task may hold one, and so may a JSON
// column) is written to the zip's JSON file at about its own size. Indented,
// each level adds its depth in spaces to two lines: a 60 KB record became
// 200 MB, and a 1 MB upload a 3.4 GB file that took 40 s to write on each
// download.
func TestExportDeepRecordIsNotAmplified(t *testing.T) {
	t.Parallel()
	const depth = 5_000
	deep := json.RawMessage(strings.Repeat(`{"a":`, depth) + `"x"` + strings.Repeat("}", depth))
	src := &fixedSource{docs: []json.RawMessage{deep, json.RawMessage(`{"b": {"c": 1}}`)}}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	if err := writeExport(context.Background(), src, zw, contentsOf(dsr.Job{ID: "j", Connector: "shop", Records: 2,
		Collections: []dsr.CollectionResult{{Name: "orders", Records: 2}}})); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.UncompressedSize64 > 8*uint64(len(deep)) {
			t.Errorf("%s: %d bytes for a record of %d", f.Name, f.UncompressedSize64, len(deep))
		}
		if f.Name != "shop/orders.json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var recs []json.RawMessage
		if err := json.NewDecoder(rc).Decode(&recs); err != nil || len(recs) != 2 {
			t.Fatalf("orders.json: %d records, %v", len(recs), err)
		}
		if !bytes.Equal(recs[0], deep) {
			t.Errorf("the deep record changed")
		}
		if want := "{\n    \"b\": {\n      \"c\": 1\n    }\n  }"; string(recs[1]) != want {
			t.Errorf("a shallow record is %q; want it indented as before, %q", recs[1], want)
		}
	}
}

func TestNesting(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		`1`: 0, `"{["`: 0, `{}`: 1, `[[1],[2,[3]]]`: 3, `{"a":"{[{\"}"}`: 1, `{"a\\":[{"b":"\\"}]}`: 3,
	} {
		if got := nesting([]byte(in)); got != want {
			t.Errorf("nesting(%s) = %d; want %d", in, got, want)
		}
	}
}
