package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/testenv"
)

// suppressed puts identities on the list under scope, as an opt-out
// would.
func (a *api) suppressed(scope dsr.Scope, kind dsr.Kind, values ...string) []string {
	a.t.Helper()
	key := a.index.SuppressionKey()
	var entries []dsr.Suppression
	var hashes []string
	for _, v := range values {
		h := key.Hash(kind, v)
		hashes = append(hashes, h)
		entries = append(entries, dsr.Suppression{Hash: h, Scope: scope, Source: dsr.ConsentPortal, At: time.Now()})
	}
	if _, err := a.store.Suppress(context.Background(), entries); err != nil {
		a.t.Fatal(err)
	}
	return hashes
}

// trailers returns the filter's trailers of resp, its body read.
func trailers(resp *http.Response) map[string]string {
	out := map[string]string{}
	for k, v := range resp.Trailer {
		if len(v) > 0 && v[0] != "" {
			out[k] = v[0]
		}
	}
	return out
}

// TestFilterRoute: the records that may be used come back as they came,
// with the counts in trailers; a malformed one stops the stream, and the
// trailers say where.
func TestFilterRoute(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	a.suppressed(dsr.ScopeMarketing, dsr.KindEmail, "gone@example.com")
	a.suppressed(dsr.ScopeAll, dsr.KindEmail, "deleted@example.com")

	tests := []struct {
		name, query, contentType, body string
		key                            string
		status                         int
		want                           string
		trailers                       map[string]string
	}{
		{
			name: "csv", query: "?scope=marketing", contentType: "text/csv", key: pipelineKey, status: 200,
			body: "id,email\n1,keep@example.com\n2,GONE@example.com\n3,\n4,deleted@example.com\n",
			want: "id,email\n1,keep@example.com\n",
			trailers: map[string]string{"Dsar-Filter-Status": "complete", "Dsar-Filter-Read": "4", "Dsar-Filter-Kept": "1",
				"Dsar-Filter-Suppressed": "2", "Dsar-Filter-Unidentified": "1", "Dsar-Filter-Skipped": "0"},
		},
		{
			name: "ndjson, a named column, keeping the unidentified", query: "?scope=profiling&format=ndjson&column=contact&kind=email&unidentified=keep",
			contentType: "application/x-ndjson", key: agentKey, status: 200,
			body: `{"contact":"gone@example.com"}` + "\n" + `{"contact":"deleted@example.com"}` + "\n" + `{"other":1}` + "\n",
			want: `{"contact":"gone@example.com"}` + "\n" + `{"other":1}` + "\n",
			trailers: map[string]string{"Dsar-Filter-Status": "complete", "Dsar-Filter-Read": "3", "Dsar-Filter-Kept": "1",
				"Dsar-Filter-Suppressed": "1", "Dsar-Filter-Unidentified": "1", "Dsar-Filter-Skipped": "0"},
		},
		{
			name: "stopped at a malformed row", query: "?scope=marketing", contentType: "text/csv", key: adminKey, status: 200,
			body: "id,email\n1,keep@example.com\n2,b@example.com,extra\n3,c@example.com\n",
			want: "id,email\n1,keep@example.com\n",
			trailers: map[string]string{"Dsar-Filter-Status": "stopped", "Dsar-Filter-Error": "line 3: wrong number of fields", "Dsar-Filter-Read": "1",
				"Dsar-Filter-Kept": "1", "Dsar-Filter-Suppressed": "0", "Dsar-Filter-Unidentified": "0", "Dsar-Filter-Skipped": "0"},
		},
		{
			name: "skipping malformed lines", query: "?scope=marketing&on_error=skip", contentType: "application/x-ndjson", key: adminKey, status: 200,
			body: "not json\n" + `{"email":"keep@example.com"}` + "\n",
			want: `{"email":"keep@example.com"}` + "\n",
			trailers: map[string]string{"Dsar-Filter-Status": "complete", "Dsar-Filter-Read": "2", "Dsar-Filter-Kept": "1",
				"Dsar-Filter-Suppressed": "0", "Dsar-Filter-Unidentified": "0", "Dsar-Filter-Skipped": "1"},
		},
		{name: "a header without the column", query: "?scope=marketing", contentType: "text/csv", key: adminKey, status: 400,
			body: "id,mail\n1,keep@example.com\n", want: `"message":"the header line has no column \"email\""`},
		{name: "an empty body", query: "?scope=marketing", contentType: "text/csv", key: adminKey, status: 400,
			want: `{"field":"line 1","message":"no header line: the input is empty"}`},
		{name: "no format", query: "?scope=marketing", contentType: "text/plain", key: adminKey, status: 400, body: "email\n",
			want: `"field":"format"`},
		{name: "an unknown parameter", query: "?scope=marketing&format=csv&colum=email", contentType: "text/csv", key: adminKey, status: 400, body: "email\n",
			want: `"field":"colum"`},
		{name: "an auditor", query: "?scope=marketing", contentType: "text/csv", key: auditorKey, status: 403, body: "email\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := a.send("POST", "/v1/suppressions/filter"+tt.query, tt.key, tt.contentType, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				if !strings.Contains(string(body), tt.want) {
					t.Errorf("body %s, want it to hold %s", body, tt.want)
				}
				return
			}
			if diff := cmp.Diff(tt.want, string(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.trailers, trailers(resp)); diff != "" {
				t.Errorf("trailers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterRouteStreams: the answer starts while the body still comes
// (full duplex), over a real connection.
func TestFilterRouteStreams(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	a.suppressed(dsr.ScopeMarketing, dsr.KindEmail, "p1@example.com")
	const rows = 50_000
	bodyR, bodyW := io.Pipe()
	go func() {
		defer bodyW.Close()
		bw := bufio.NewWriter(bodyW)
		for i := range rows {
			fmt.Fprintf(bw, `{"email":"p%d@example.com","n":%d}`+"\n", i, i)
		}
		_ = bw.Flush()
	}()
	half := make(chan struct{})
	firstHalf := &gatedReader{r: bodyR, left: 1 << 20, gate: half}
	req, err := http.NewRequest("POST", a.url+"/v1/suppressions/filter?scope=marketing", firstHalf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	done := make(chan *http.Response, 1)
	errs := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs <- err
			return
		}
		done <- resp
	}()
	var resp *http.Response
	select { // the answer comes while the body waits at its first MiB
	case resp = <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer while the body was held at 1 MiB")
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != `{"email":"p0@example.com","n":0}`+"\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	close(half)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rest), "\n") + 1; n != rows-1 {
		t.Errorf("%d lines, want %d", n, rows-1)
	}
	if tr := trailers(resp); tr["Dsar-Filter-Status"] != "complete" || tr["Dsar-Filter-Suppressed"] != "1" || tr["Dsar-Filter-Read"] != fmt.Sprint(rows) {
		t.Errorf("trailers %v", tr)
	}
}

// gatedReader reads left bytes of r, then waits for gate before reading on.
type gatedReader struct {
	r    io.Reader
	left int
	gate chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		<-g.gate
		return g.r.Read(p)
	}
	n, err := g.r.Read(p[:min(len(p), g.left)])
	g.left -= n
	return n, err
}

// TestExportAndImportRoutes: an admin exports the active list, and
// imports a partner's: all or nothing, once.
func TestExportAndImportRoutes(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	gone := a.suppressed(dsr.ScopeMarketing, dsr.KindEmail, "gone@example.com")[0]
	deleted := a.suppressed(dsr.ScopeAll, dsr.KindEmail, "deleted@example.com")[0]

	export := func(query string) []string {
		t.Helper()
		resp, body := a.send("GET", "/v1/suppressions/export"+query, adminKey, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("export: %d %s", resp.StatusCode, body)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var e struct {
				Hash   string    `json:"hash"`
				Scope  string    `json:"scope"`
				At     time.Time `json:"at"`
				Source string    `json:"source"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			got = append(got, e.Hash+"|"+e.Scope+"|"+e.Source)
		}
		if resp.Trailer.Get("Dsar-Export-Count") != fmt.Sprint(len(got)) {
			t.Errorf("count trailer %q, %d lines", resp.Trailer.Get("Dsar-Export-Count"), len(got))
		}
		// Entries written at the same time come in the order of their
		// ids, which hash; the store's suite holds the feed's order.
		slices.Sort(got)
		return got
	}
	sorted := func(l ...string) []string { return slices.Sorted(slices.Values(l)) }
	if diff := cmp.Diff(sorted(gone+"|marketing|portal", deleted+"|all|portal"), export("?scope=marketing")); diff != "" {
		t.Errorf("export (-want +got):\n%s", diff)
	}

	list := `{"kind":"email","value":"partner@example.com","scope":"sale_share"}` + "\n" +
		`{"hash":"` + gone + `","scope":"marketing"}` + "\n"
	var res map[string]int
	if resp := a.do("POST", "/v1/suppressions/import?partner=acme", adminKey, "application/x-ndjson", list, &res); resp.StatusCode != 200 {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	if diff := cmp.Diff(map[string]int{"lines": 2, "added": 1, "events": 2}, res); diff != "" {
		t.Errorf("import (-want +got):\n%s", diff)
	}
	if resp := a.do("POST", "/v1/suppressions/import?partner=acme", adminKey, "application/x-ndjson", list, &res); resp.StatusCode != 200 || res["added"] != 0 {
		t.Errorf("again: %d %v", resp.StatusCode, res)
	}
	partner := a.index.SuppressionKey().Hash(dsr.KindEmail, "partner@example.com")
	if got := export("?scope=sale_share"); !cmp.Equal(got, sorted(deleted+"|all|portal", partner+"|sale_share|import")) {
		t.Errorf("export after the import: %v", got)
	}

	bad := `{"kind":"email","value":"fine@example.com","scope":"marketing"}` + "\n" + `{"kind":"email","value":"x"}` + "\n" + `{"hash":"nope","scope":"all"}`
	var p struct {
		Errors []struct{ Field, Message string }
	}
	if resp := a.do("POST", "/v1/suppressions/import?partner=acme", adminKey, "application/x-ndjson", bad, &p); resp.StatusCode != 400 {
		t.Fatalf("bad list: %d", resp.StatusCode)
	}
	want := []struct{ Field, Message string }{{"line 2", "scope is missing"}, {"line 3", "hash is not a suppression hash (kind:64 hex digits)"}}
	if diff := cmp.Diff(want, p.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got := a.index.SuppressionKey().Hash(dsr.KindEmail, "fine@example.com"); strings.Contains(strings.Join(export(""), " "), got) {
		t.Error("a line of a refused list was imported")
	}
	for _, key := range []string{agentKey, pipelineKey, auditorKey} {
		if resp, _ := a.send("POST", "/v1/suppressions/import?partner=acme", key, "application/x-ndjson", list); resp.StatusCode != 403 {
			t.Errorf("import with a non-admin key: %d", resp.StatusCode)
		}
		if resp, _ := a.send("GET", "/v1/suppressions/export", key, "", ""); resp.StatusCode != 403 {
			t.Errorf("export with a non-admin key: %d", resp.StatusCode)
		}
	}
}

// TestFilterRouteRefusesCleanly: a filter refused before its stream (bad
// options, a header without the column) or stopped in it (a malformed
// record) leaves the server without a panic over the unread body, and a
// short body's connection serves the next request.
func TestFilterRouteRefusesCleanly(t *testing.T) {
	t.Parallel()
	var deps handlers.Deps
	setupWith(t, false, func(d *handlers.Deps) { deps = *d })
	errLog := &testenv.Buffer{}
	srv := httptest.NewUnstartedServer(handlers.New(deps))
	srv.Config.ErrorLog = log.New(errLog, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	client := srv.Client()

	queries := []struct {
		q, head string
		status  int
	}{
		{"?format=ndjson", "", 400},                                       // no scope
		{"?scope=ads&format=ndjson", "", 400},                             // a bad scope
		{"?scope=marketing&format=ndjson&on_error=halt", "", 400},         // a bad on_error
		{"?scope=marketing&format=ndjson&kind=fax", "", 400},              // a bad kind
		{"?scope=marketing&format=ndjson&column=%20", "", 400},            // a column without a name
		{"?scope=marketing&format=csv", "id,mail\n", 400},                 // a header without the column
		{"?scope=marketing&format=csv&column=email", "email\n1,2\n", 200}, // stopped at line 2
		{"?scope=marketing&format=ndjson", "", 200},                       // a whole one
	}
	// 300 bytes, 90 kB (more than the filter reads ahead, less than the
	// 256 KiB net/http reads to keep a connection), 300 kB (more)
	for _, size := range []int{10, 3_000, 10_000} {
		lines := strings.Repeat(`{"email":"someone@example.com"}`+"\n", size)
		client.CloseIdleConnections()
		reused := 0
		for _, q := range queries {
			trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
				if ci.Reused {
					reused++
				}
			}}
			ctx := httptrace.WithClientTrace(context.Background(), trace)
			req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/suppressions/filter"+q.q, strings.NewReader(q.head+lines))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+pipelineKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%d lines, %s: %v", size, q.q, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if size > 3_000 {
				// With more than 256 KiB left unread, the server closes the
				// connection after a stopped stream, whose header could not
				// say so: a client must not race it with the next request.
				client.CloseIdleConnections()
			}
			if resp.StatusCode != q.status {
				t.Errorf("%d lines, %s: %d, want %d: %s", size, q.q, resp.StatusCode, q.status, b)
			}
		}
		if size <= 3_000 && reused != len(queries)-1 {
			t.Errorf("%d lines: %d of %d requests reused the connection, want all but the first", size, reused, len(queries))
		}
	}
	time.Sleep(100 * time.Millisecond) // the server logs after the answer
	if s := errLog.String(); s != "" {
		t.Errorf("the server logged:\n%s", s)
	}
}
