package app

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// record is one stored export record.
type record struct{ collection, data string }

// jobsSource yields each job's records, as the store does.
type jobsSource map[string][]record

func (s jobsSource) EachExportRecord(_ context.Context, jobID string, fn func(string, json.RawMessage) error) error {
	for _, r := range s[jobID] {
		if err := fn(r.collection, json.RawMessage(r.data)); err != nil {
			return err
		}
	}
	return nil
}

// unzip writes c from src as a zip and returns its files, in order.
func unzip(t *testing.T, src exportSource, c *exportContents) ([]string, map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if err := writeExport(t.Context(), src, zw, c); err != nil {
		t.Fatalf("writeExport: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, f.Name)
		files[f.Name] = string(b)
	}
	return names, files
}

// accessPackage is the export of two systems, shop declaring its data map
// and crm none, whose records carry nested fields, arrays, Extended JSON,
// a script and spreadsheet formulas.
func accessPackage() (jobsSource, *exportContents) {
	src := jobsSource{
		"j-shop": {
			{"customers", `{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"name":"<script>alert(1)</script>","email":"ada@example.com",` +
				`"address":{"city":"London","geo":{"lat":51.5}},"tags":["vip","=HYPERLINK(\"http://evil\")"],"since":{"$date":"2024-01-02T03:04:05Z"}}`},
			{"orders", `{"_id":"o1","total":-42.5,"note":"=1+1","by":"@SUM(A1)","ref":"+44 20","empty":{},"gone":null}`},
			{"orders", `{"_id":"o2","total":12,"extra":true}`},
		},
		"j-crm": {
			{"contacts", `{"id":7,"note":"-1+1"}`},
		},
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c := &exportContents{paths: newExportPaths(), m: manifest{
		Request:     manifestRequest{ID: "req-1", Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, ReceivedAt: now.Add(-48 * time.Hour), ClosedAt: &now},
		GeneratedAt: now, Connectors: []manifestConnector{},
	}}
	c.sum = summary{Request: c.m.Request, GeneratedAt: now, Systems: []systemSummary{}, Rights: rightsNotice}
	c.add(dsr.Job{ID: "j-shop", Connector: "shop", Records: 3, Collections: []dsr.CollectionResult{
		{Name: "customers", Records: 1}, {Name: "orders", Records: 2}, {Name: "tickets", Records: 0},
	}, DataMap: &dsr.DataMap{Purpose: "Orders <b>and</b> support", Categories: []string{"contact details", "orders"},
		Recipients: []string{"parcel carrier"}, Retention: "6 years", LegalBasis: "contract"}})
	c.add(dsr.Job{ID: "j-crm", Connector: "crm", Records: 1, Collections: []dsr.CollectionResult{{Name: "contacts", Records: 1}}})
	return src, c
}

// TestAccessPackage checks the files of the package: the JSON files as
// before, a CSV file per collection, summary.json from the data maps, and
// index.html.
func TestAccessPackage(t *testing.T) {
	t.Parallel()
	src, c := accessPackage()
	names, files := unzip(t, src, c)
	want := []string{"manifest.json", "summary.json", "shop/customers.json", "shop/orders.json", "crm/contacts.json",
		"shop/customers.csv", "shop/orders.csv", "crm/contacts.csv", "index.html"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	t.Run("csv", func(t *testing.T) {
		wantCSV := map[string]string{
			"shop/customers.csv": "\uFEFF_id,name,email,address.city,address.geo.lat,tags,since\r\n" +
				`65a1b2c3d4e5f60718293a4b,<script>alert(1)</script>,ada@example.com,London,51.5,"[""vip"",""=HYPERLINK(\""http://evil\"")""]",2024-01-02T03:04:05Z` + "\r\n",
			// Formulas are quoted; a plain negative number is not.
			"shop/orders.csv": "\uFEFF_id,total,note,by,ref,empty,gone,extra\r\n" +
				"o1,-42.5,'=1+1,'@SUM(A1),'+44 20,{},,\r\n" +
				"o2,12,,,,,,true\r\n",
			"crm/contacts.csv": "\uFEFFid,note\r\n7,'-1+1\r\n",
		}
		for name, w := range wantCSV {
			if diff := cmp.Diff(w, files[name]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	})

	t.Run("json files unchanged", func(t *testing.T) {
		var orders []map[string]any
		if err := json.Unmarshal([]byte(files["shop/orders.json"]), &orders); err != nil || len(orders) != 2 || orders[0]["note"] != "=1+1" {
			t.Errorf("shop/orders.json: %v, %v", orders, err)
		}
		var m struct {
			Connectors []struct {
				Collections []manifestCollection `json:"collections"`
			} `json:"connectors"`
		}
		if err := json.Unmarshal([]byte(files["manifest.json"]), &m); err != nil {
			t.Fatal(err)
		}
		wantCols := []manifestCollection{{Name: "customers", Records: 1, File: "shop/customers.json", CSV: "shop/customers.csv"},
			{Name: "orders", Records: 2, File: "shop/orders.json", CSV: "shop/orders.csv"}, {Name: "tickets"}}
		if diff := cmp.Diff(wantCols, m.Connectors[0].Collections); diff != "" {
			t.Errorf("manifest's collections (-want +got):\n%s", diff)
		}
	})

	t.Run("summary", func(t *testing.T) {
		var got summary
		if err := json.Unmarshal([]byte(files["summary.json"]), &got); err != nil {
			t.Fatal(err)
		}
		if got.Request.ID != "req-1" || got.Records != 4 || !got.GeneratedAt.Equal(c.m.GeneratedAt) || got.Request.ClosedAt == nil || got.Rights == "" {
			t.Errorf("summary: %+v", got)
		}
		wantSystems := []systemSummary{
			{Name: "shop", Records: 3, Collections: c.m.Connectors[0].Collections, DataMap: "declared",
				Purpose: "Orders <b>and</b> support", Categories: []string{"contact details", "orders"}, Recipients: []string{"parcel carrier"},
				Retention: "6 years", LegalBasis: "contract", LegalBasisArticle: "GDPR Art. 6(1)(b)", NotDeclared: []string{"source"}},
			{Name: "crm", Records: 1, Collections: c.m.Connectors[1].Collections, DataMap: "not declared",
				NotDeclared: []string{"purpose", "categories", "recipients", "retention", "source", "legal_basis"}},
		}
		if diff := cmp.Diff(wantSystems, got.Systems); diff != "" {
			t.Errorf("summary's systems (-want +got):\n%s", diff)
		}
	})

	t.Run("html", func(t *testing.T) {
		page := files["index.html"]
		if strings.Contains(strings.ToLower(page), "<script") {
			t.Errorf("index.html holds a script element:\n%s", page)
		}
		for _, s := range []string{
			"&lt;script&gt;alert(1)&lt;/script&gt;", // the record's value, as text
			"Orders &lt;b&gt;and&lt;/b&gt; support", // the data map's too
			`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
			"<tr><th>Legal basis</th><td>contract (GDPR Art. 6(1)(b))</td></tr>",
			"<tr><th>Source</th><td>not declared</td></tr>",
			`<section id="system-crm">`, "<tr><th>Purpose</th><td>not declared</td></tr>",
			`<a href="shop/orders.csv">CSV</a>`,
			"<thead><tr><th>_id</th><th>total</th><th>note</th><th>by</th><th>ref</th><th>empty</th><th>gone</th><th>extra</th></tr></thead>",
			"<tr><td>o1</td><td>-42.5</td><td>=1+1</td><td>@SUM(A1)</td>",
			"<td>[&#34;vip&#34;,&#34;=HYPERLINK(\\&#34;http://evil\\&#34;)&#34;]</td>",
			"req-1", "4 March 2026, 05:06 UTC",
		} {
			if !strings.Contains(page, s) {
				t.Errorf("index.html lacks %q", s)
			}
		}
	})
}

func TestFlatten(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want [][2]string
	}{
		{`{"a":1,"b":"x","c":true,"d":null}`, [][2]string{{"a", "1"}, {"b", "x"}, {"c", "true"}, {"d", ""}}},
		{`{"a":{"b":{"c":1}},"e":{}}`, [][2]string{{"a.b.c", "1"}, {"e", "{}"}}},
		{`{"a":[1, {"b": 2}]}`, [][2]string{{"a", `[1,{"b":2}]`}}},
		{`{"_id":{"$oid":"5f"},"n":{"$numberDecimal":"1.5"},"d":{"$date":{"$numberLong":"-1"}},"b":{"$binary":{"base64":"AA==","subType":"00"}}}`,
			[][2]string{{"_id", "5f"}, {"n", "1.5"}, {"d", `{"$date":{"$numberLong":"-1"}}`}, {"b", `{"$binary":{"base64":"AA==","subType":"00"}}`}}},
		{`"just text"`, [][2]string{{"value", "just text"}}},
		{`{"a.b":1,"a":{"b":2}}`, [][2]string{{"a.b", "1"}, {"a.b", "2"}}},
		{" { \"a\" : \"x\\\"y\\u00e9\" ,\n \"b\" : [ \"]\" , {\"c\":\"}\"} ] , \"k\\u00e9\": -1.5e3 } ",
			[][2]string{{"a", `x"yé`}, {"b", `["]",{"c":"}"}]`}, {"ké", "-1.5e3"}}},
		{`{"x":{"$oid":"5f","y":1}}`, [][2]string{{"x", `{"$oid":"5f","y":1}`}}},
	} {
		var got [][2]string
		if err := flatten([]byte(tt.in), func(k, v string) { got = append(got, [2]string{k, v}) }); err != nil {
			t.Errorf("flatten(%s): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("flatten(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, bad := range []string{`{"a":`, `{"a":1`, `{"a" 1}`, `{"a":}`, `{"a":1}x`, `{"a":"x`, `{"a":[1,2}`, `{a:1}`, ``, `{"a":1,}`} {
		if err := flatten([]byte(bad), func(string, string) {}); err == nil {
			t.Errorf("flatten(%s): no error", bad)
		}
	}
}

// TestColumnsBound: a collection's fields past maxColumns, and a field
// whose column a record fills twice, go to the _other column, as JSON.
func TestColumnsBound(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"a.b":"dotted","a":{"b":"nested"}`)
	for i := range maxColumns + 5 {
		fmt.Fprintf(&b, `,"f%03d":%d`, i, i)
	}
	b.WriteString("}")
	rec := []byte(b.String())
	c := newColumns()
	if err := c.learn(rec); err != nil {
		t.Fatal(err)
	}
	h := c.header()
	if len(h) != maxColumns+1 || h[0] != "a.b" || h[maxColumns-1] != fmt.Sprintf("f%03d", maxColumns-2) || h[maxColumns] != otherColumn {
		t.Fatalf("header: %d columns, %v ... %v", len(h), h[:2], h[len(h)-2:])
	}
	row, err := c.row(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a.b":"nested","f099":"99","f100":"100","f101":"101","f102":"102","f103":"103","f104":"104"}`
	if row[0] != "dotted" || row[len(row)-1] != want {
		t.Errorf("row: first %q, _other %q; want %q", row[0], row[len(row)-1], want)
	}
	if _, err := c.row([]byte(`{"new_field":1}`)); err != nil {
		t.Errorf("a field not seen goes to _other when the collection has one: %v", err)
	}
	small := newColumns()
	if err := small.learn([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := small.row([]byte(`{"b":1}`)); err == nil {
		t.Error("a field not seen in the first pass, no _other column: no error")
	}
}

// heapSampler writes nowhere and samples the live heap as the zip is
// written.
type heapSampler struct {
	writes  int
	written int64
	peak    uint64
	sample  []metrics.Sample
}

func newHeapSampler() *heapSampler {
	return &heapSampler{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (h *heapSampler) Write(b []byte) (int, error) {
	h.writes++
	h.written += int64(len(b))
	if h.writes%16 == 0 {
		metrics.Read(h.sample)
		h.peak = max(h.peak, h.sample[0].Value.Uint64())
	}
	return len(b), nil
}

// heapBudget is what writing an export's zip may add to the heap, whatever
// the number of records.
const heapBudget = 16 << 20

// TestExportHeap writes the zip of an export of 100,000 records (about 25
// MB of JSON, written three times: JSON, CSV, HTML) and checks that the
// heap, sampled as the zip is written, stays within heapBudget of what it
// was before: the records are not held. It runs alone (no t.Parallel), so
// that no other test's memory is counted.
func TestExportHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 records three times")
	}
	const n = 100_000
	src := &lazySource{n: n}
	c := contentsOf(dsr.Job{ID: "j", Connector: "shop", Records: n, Collections: []dsr.CollectionResult{{Name: "orders", Records: n}}})
	runtime.GC()
	sink := newHeapSampler()
	metrics.Read(sink.sample)
	base := sink.sample[0].Value.Uint64()
	zw := zip.NewWriter(sink)
	if err := writeExport(t.Context(), src, zw, c); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	grew := int64(sink.peak) - int64(base)
	t.Logf("%d records read, %d MiB of zip written; heap %d MiB before, peak %d MiB (+%d MiB)",
		src.yielded, sink.written>>20, base>>20, sink.peak>>20, grew>>20)
	if src.yielded != 2*n+maxHTMLRows+1 { // JSON, CSV, and index.html stops at the record after its full table
		t.Errorf("records read: %d; want %d", src.yielded, 2*n+maxHTMLRows+1)
	}
	if sink.written < 2*n*100 {
		t.Fatalf("only %d bytes written: the test proves nothing", sink.written)
	}
	if grew > heapBudget {
		t.Errorf("the heap grew by %d MiB writing the zip of %d records; the budget is %d MiB", grew>>20, n, heapBudget>>20)
	}
}

// FuzzFlatten: any input is flattened or refused, never a panic; valid
// JSON is never refused.
func FuzzFlatten(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":"}"}]},"d":{"$oid":"x"}}`, `"s"`, `[1]`, `{"a":"\u00e9\""}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := flatten(data, func(string, string) {})
		if err != nil && json.Valid(data) {
			t.Errorf("flatten(%q) of valid JSON: %v", data, err)
		}
	})
}
