package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

// listsEnv is a store with a suppression list, and a set over it.
type listsEnv struct {
	store *teststore.Store
	set   *suppression.Set
	key   dsr.SuppressionKey
}

func setupLists(t testing.TB) *listsEnv {
	t.Helper()
	idx, err := dsr.NewBlindIndex([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	st := teststore.Open(t, nil)
	key := idx.SuppressionKey()
	return &listsEnv{store: st, set: suppression.NewSet(st, key), key: key}
}

// suppress suppresses the email under scopes.
func (e *listsEnv) suppress(t testing.TB, kind dsr.Kind, value string, scopes ...dsr.Scope) string {
	t.Helper()
	h := e.key.Hash(kind, value)
	var entries []dsr.Suppression
	for _, s := range scopes {
		entries = append(entries, dsr.Suppression{Hash: h, Scope: s, Source: dsr.ConsentPortal, At: time.Now()})
	}
	if _, err := e.store.Suppress(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFilter: a record is kept when it holds a valid identity and none is
// suppressed under a scope covering the filter's; it comes out byte for
// byte.
func TestFilter(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	e.suppress(t, dsr.KindEmail, "gone@example.com", dsr.ScopeMarketing)
	e.suppress(t, dsr.KindEmail, "deleted@example.com", dsr.ScopeAll)
	e.suppress(t, dsr.KindEmail, "noprofile@example.com", dsr.ScopeProfiling)
	phone := e.suppress(t, dsr.KindPhone, "+15550100", dsr.ScopeMarketing)
	e.suppress(t, dsr.KindCustomerID, "42", dsr.ScopeMarketing)
	e.suppress(t, dsr.KindAdvertisingID, "6d92078a-8246-4ba4-ae5b-76104861e7dc", dsr.ScopeSaleShare)

	csvIn := "\ufeffEmail,name,note\r\n" +
		"keep@example.com,Kim,plain\r\n" +
		" GONE@Example.com ,Gus,case and spaces\r\n" +
		"deleted@example.com,Dee,\"a note\r\nover two lines\"\r\n" +
		"noprofile@example.com,Nia,\"quoted, with comma\"\r\n" +
		",Nobody,empty email\r\n" +
		"not-an-email,Bad,invalid email\r\n" +
		"last@example.com,Lu,no newline at the end"
	tests := []struct {
		name    string
		opts    app.FilterOptions
		in      string
		want    string
		stats   app.FilterStats
		wantErr string
	}{
		{
			name: "csv, marketing",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}},
			in:   csvIn,
			want: "\ufeffEmail,name,note\r\n" +
				"keep@example.com,Kim,plain\r\n" +
				"noprofile@example.com,Nia,\"quoted, with comma\"\r\n" +
				"last@example.com,Lu,no newline at the end\n",
			stats: app.FilterStats{Read: 7, Kept: 3, Suppressed: 2, Unidentified: 2},
		},
		{
			name: "csv, profiling, keeping the unidentified",
			opts: app.FilterOptions{Scope: dsr.ScopeProfiling, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "Email", Kind: "email"}}, KeepUnidentified: true},
			in:   csvIn,
			want: "\ufeffEmail,name,note\r\n" +
				"keep@example.com,Kim,plain\r\n" +
				" GONE@Example.com ,Gus,case and spaces\r\n" +
				",Nobody,empty email\r\n" +
				"not-an-email,Bad,invalid email\r\n" +
				"last@example.com,Lu,no newline at the end\n",
			stats: app.FilterStats{Read: 7, Kept: 3, Suppressed: 2, Unidentified: 2},
		},
		{
			name: "csv, two columns and a hash column",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}, {Name: "phone"}, {Name: "h", Kind: "hash"}}},
			in: "email,phone,h\n" +
				"a@example.com,+1 555 0100,\n" + // the phone is suppressed
				"a@example.com,,\n" +
				",+1 555 0101,\n" +
				",," + strings.ToUpper(phone[6:]) + "\n" + // not a hash: no kind
				",,phone:" + strings.ToUpper(phone[6:]) + "\n" + // upper-case hex: the phone's hash
				",,\n",
			want:  "email,phone,h\n" + "a@example.com,,\n" + ",+1 555 0101,\n",
			stats: app.FilterStats{Read: 6, Kept: 2, Suppressed: 2, Unidentified: 2},
		},
		{
			name: "ndjson",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatNDJSON, Columns: []app.IdentityColumn{{Name: "email"}, {Name: "customer_id"}}},
			in: `{"email":"keep@example.com","n":1}` + "\n" +
				"\n" + // blank lines are skipped
				`  {"email":"gone@example.com"}` + "\r\n" +
				`{"customer_id":42}` + "\n" + // a number is its text
				`{"customer_id":"43","nested":{"email":"gone@example.com"}}` + "\n" +
				`{"email":null}` + "\n" +
				`{"email":["gone@example.com"]}` + "\n" +
				`{"email":"deleted@example.com"}`,
			want: `{"email":"keep@example.com","n":1}` + "\n" +
				`{"customer_id":"43","nested":{"email":"gone@example.com"}}` + "\n",
			stats: app.FilterStats{Read: 7, Kept: 2, Suppressed: 3, Unidentified: 2},
		},
		{
			// An ad audience: the opted-out IDFA, written in upper case
			// as iOS writes it, is dropped; the all-zero id of limited
			// tracking names nobody, so it is unidentified.
			name: "csv, an audience by advertising id",
			opts: app.FilterOptions{Scope: dsr.ScopeSaleShare, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "idfa", Kind: "advertising_id"}, {Name: "device_id"}}},
			in: "idfa,device_id,audience\n" +
				"6D92078A-8246-4BA4-AE5B-76104861E7DC,,cars\n" +
				"f81d4fae-7dec-11d0-a765-00a0c91e6bf6,,cars\n" +
				"00000000-0000-0000-0000-000000000000,,cars\n" +
				",a1b2c3d4e5f60718,cars\n",
			want:  "idfa,device_id,audience\n" + "f81d4fae-7dec-11d0-a765-00a0c91e6bf6,,cars\n" + ",a1b2c3d4e5f60718,cars\n",
			stats: app.FilterStats{Read: 4, Kept: 2, Suppressed: 1, Unidentified: 1},
		},
		{
			name: "csv, stop at a malformed row",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}},
			in:   "email,n\na@example.com,1\nb@example.com,2,extra\nc@example.com,3\n",
			want: "email,n\na@example.com,1\n", stats: app.FilterStats{Read: 1, Kept: 1},
			wantErr: "line 3: wrong number of fields",
		},
		{
			name:  "csv, skip malformed rows",
			opts:  app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}, OnError: app.OnErrorSkip},
			in:    "email,n\na@example.com,1\nb@example.com,2,extra\nc@exa\"mple.com,3\n\"d@example.com\",\"4\"\n",
			want:  "email,n\na@example.com,1\n\"d@example.com\",\"4\"\n",
			stats: app.FilterStats{Read: 4, Kept: 2, Skipped: 2, SkippedLines: []int{3, 4}},
		},
		{
			name: "ndjson, stop at a line that is not JSON",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatNDJSON, Columns: []app.IdentityColumn{{Name: "email"}}},
			in:   `{"email":"a@example.com"}` + "\n\n" + `{"email":"b@example.com"` + "\n" + `{"email":"c@example.com"}` + "\n",
			want: `{"email":"a@example.com"}` + "\n", stats: app.FilterStats{Read: 1, Kept: 1},
			wantErr: "line 3: not valid JSON: syntax error at byte 24",
		},
		{
			name: "ndjson, skip",
			opts: app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatNDJSON, Columns: []app.IdentityColumn{{Name: "email"}}, OnError: app.OnErrorSkip},
			in:   `["a@example.com"]` + "\n" + `{"email":"b@example.com"}` + "\n" + `{"email":` + strings.Repeat(" ", app.MaxRecordBytes) + `"c@example.com"}` + "\n",
			want: `{"email":"b@example.com"}` + "\n", stats: app.FilterStats{Read: 3, Kept: 1, Skipped: 2, SkippedLines: []int{1, 3}},
		},
		{
			name:    "csv, a header without the column",
			opts:    app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "mail", Kind: "email"}}},
			in:      "email\na@example.com\n",
			wantErr: `invalid input: column: the header line has no column "mail"`,
		},
		{
			name:    "csv, empty",
			opts:    app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}},
			wantErr: "line 1: no header line: the input is empty",
		},
		{
			name:    "bad options",
			opts:    app.FilterOptions{Scope: "ads", Format: "xml", Columns: []app.IdentityColumn{{Name: "contact"}}, OnError: "ignore"},
			wantErr: `invalid input: scope: must be one of sale_share, marketing, profiling, all; format: must be ndjson or csv; on_error: must be stop or skip; kind: give the kind of column "contact": email, customer_id, phone, advertising_id, device_id or hash`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			stats, err := app.FilterSuppressions(context.Background(), e.set, strings.NewReader(tt.in), &out, tt.opts)
			if msg := fmt.Sprint(err); (err != nil || tt.wantErr != "") && msg != tt.wantErr {
				t.Fatalf("error %q, want %q", msg, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterSeesChangesBeforeTheStream: the list is refreshed when a
// filter starts, so a suppression made just before is honoured.
func TestFilterSeesChangesBeforeTheStream(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	opts := app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: []app.IdentityColumn{{Name: "email"}}}
	in := "email\nann@example.com\n"
	var out bytes.Buffer
	if _, err := app.FilterSuppressions(context.Background(), e.set, strings.NewReader(in), &out, opts); err != nil {
		t.Fatal(err)
	}
	if out.String() != in {
		t.Fatalf("before: %q", out.String())
	}
	e.suppress(t, dsr.KindEmail, "ann@example.com", dsr.ScopeMarketing)
	out.Reset()
	stats, err := app.FilterSuppressions(context.Background(), e.set, strings.NewReader(in), &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "email\n" || stats.Suppressed != 1 {
		t.Fatalf("after: %q, %+v", out.String(), stats)
	}
}

// TestFilterStreams feeds 200,000 records through a pipe: output comes out
// before the input ends, and the heap does not grow with the input.
func TestFilterStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200,000 records")
	}
	e := setupLists(t)
	const rows, every = 200_000, 10 // every 10th record is suppressed
	var entries []dsr.Suppression
	for i := 0; i < rows; i += every {
		entries = append(entries, dsr.Suppression{Hash: e.key.Hash(dsr.KindEmail, fmt.Sprintf("p%d@example.com", i)), Scope: dsr.ScopeMarketing, Source: dsr.ConsentAPI, At: time.Now()})
	}
	if _, err := e.store.Suppress(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	for _, format := range []app.ListFormat{app.FormatCSV, app.FormatNDJSON} {
		t.Run(string(format), func(t *testing.T) {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			firstOut := make(chan struct{})
			counted := make(chan int64, 1)
			go func() { // the reader of the output
				br := bufio.NewReader(outR)
				var n int64
				for {
					_, err := br.ReadSlice('\n')
					if err != nil {
						counted <- n
						return
					}
					if n++; n == 2 {
						close(firstOut)
					}
				}
			}()
			heap := make([]uint64, 0, 2)
			genErr := make(chan error, 1)
			go func() { // the writer of the input
				defer inW.Close()
				bw := bufio.NewWriter(inW)
				if format == app.FormatCSV {
					fmt.Fprintln(bw, "id,email,name,segment,notes")
				}
				pad := strings.Repeat("x", 80)
				for i := range rows {
					if format == app.FormatCSV {
						fmt.Fprintf(bw, "%d,p%d@example.com,Person %d,s%d,%s\n", i, i, i, i%7, pad)
					} else {
						fmt.Fprintf(bw, `{"id":%d,"email":"p%d@example.com","name":"Person %d","notes":"%s"}`+"\n", i, i, i, pad)
					}
					switch i {
					case 20_000:
						_ = bw.Flush()
						select { // the output has begun, with most of the input to come
						case <-firstOut:
						case <-time.After(10 * time.Second):
							genErr <- errors.New("no output after 20,000 records in")
							return
						}
						heap = append(heap, heapInUse())
					case rows - 1:
						_ = bw.Flush()
						heap = append(heap, heapInUse())
					}
				}
				genErr <- bw.Flush()
			}()
			var progress []app.FilterStats
			opts := app.FilterOptions{Scope: dsr.ScopeMarketing, Format: format, Columns: []app.IdentityColumn{{Name: "email"}},
				Progress: func(s app.FilterStats) { progress = append(progress, s) }}
			stats, err := app.FilterSuppressions(context.Background(), e.set, inR, outW, opts)
			_ = outW.CloseWithError(err)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-genErr; err != nil {
				t.Fatal(err)
			}
			lines := <-counted
			// The run takes seconds: progress was reported on the way, and
			// at the end with the totals.
			if len(progress) < 2 || progress[0].Read >= rows || !cmp.Equal(progress[len(progress)-1], stats) {
				t.Errorf("progress reported %d times: %+v", len(progress), progress)
			}
			want := app.FilterStats{Read: rows, Kept: rows - rows/every, Suppressed: rows / every}
			if diff := cmp.Diff(want, stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if wantLines := want.Kept + int64(map[app.ListFormat]int{app.FormatCSV: 1}[format]); lines != wantLines {
				t.Errorf("%d lines out, want %d", lines, wantLines)
			}
			// 180,000 records (about 20 MB) went through between the two
			// measures; holding them would show as megabytes.
			grew := int64(heap[1]) - int64(heap[0])
			t.Logf("heap in use after 20,000 records %d KiB, after %d %d KiB", heap[0]>>10, rows, heap[1]>>10)
			if grew > 2<<20 {
				t.Errorf("heap grew by %d KiB while streaming", grew>>10)
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestExport: the active entries, as NDJSON, by scope and since.
func TestExport(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	a := e.suppress(t, dsr.KindEmail, "a@example.com", dsr.ScopeMarketing, dsr.ScopeSaleShare)
	b := e.suppress(t, dsr.KindEmail, "b@example.com", dsr.ScopeAll)
	c := e.suppress(t, dsr.KindEmail, "c@example.com", dsr.ScopeMarketing)
	if _, err := e.store.LiftSuppressions(ctx, []string{c}, dsr.ScopeMarketing, "admin", "opted in"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	d := e.suppress(t, dsr.KindPhone, "+15550123", dsr.ScopeProfiling)

	export := func(scope dsr.Scope, since time.Time) []string {
		t.Helper()
		var out bytes.Buffer
		n, err := app.ExportSuppressions(ctx, e.store, &out, scope, since)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			var x app.ExportedSuppression
			if err := json.Unmarshal([]byte(line), &x); err != nil {
				t.Fatal(err)
			}
			if x.At.IsZero() || x.Source != dsr.ConsentPortal {
				t.Errorf("line %s: no time or not the source", line)
			}
			got = append(got, x.Hash+"|"+string(x.Scope))
		}
		if n != len(got) {
			t.Errorf("count %d, %d lines", n, len(got))
		}
		return got
	}
	sorted := func(s ...string) []string { return s }
	opt := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff(sorted(a+"|marketing", a+"|sale_share", b+"|all", d+"|profiling"), export("", time.Time{}), opt); diff != "" {
		t.Errorf("all (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(a+"|marketing", b+"|all"), export(dsr.ScopeMarketing, time.Time{}), opt); diff != "" {
		t.Errorf("marketing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(d+"|profiling"), export("", mid), opt); diff != "" {
		t.Errorf("since (-want +got):\n%s", diff)
	}
	if _, err := app.ExportSuppressions(ctx, e.store, io.Discard, "ads", time.Time{}); fmt.Sprint(err) != "invalid input: scope: must be one of sale_share, marketing, profiling, all" {
		t.Errorf("bad scope: %v", err)
	}
}

// TestImport: a partner's list is checked whole, then written in batches
// with a consent event each; importing it again adds no entry, and records
// its events.
func TestImport(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	hashed := e.key.Hash(dsr.KindEmail, "hashed@example.com")
	lifted := e.suppress(t, dsr.KindEmail, "back@example.com", dsr.ScopeMarketing)
	if _, err := e.store.LiftSuppressions(ctx, []string{lifted}, dsr.ScopeMarketing, "subject", "opted in"); err != nil {
		t.Fatal(err)
	}
	in := `{"kind":"email","value":" Ann@Example.com ","scope":"marketing"}` + "\n" +
		`{"hash":"` + hashed + `","scope":"sale_share","at":"2026-01-02T03:04:05Z"}` + "\n" +
		"\n" +
		`{"kind":"phone","value":"+1 (555) 0100","scope":"marketing"}` + "\n" +
		`{"kind":"email","value":"ann@example.com","scope":"marketing"}` + "\n" + // twice in one batch
		`{"kind":"email","value":"back@example.com","scope":"marketing"}` + "\n" +
		`{"kind":"customer_id","value":"c-1","scope":"marketing"}`
	opts := app.ImportOptions{Partner: "acme-data", Actor: "admin-key", BatchSize: 2}
	res, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Batches of two, one scope each: marketing [ann, phone], [ann, back]
	// (the batch before was written), [c-1]; sale_share [hashed]. Back was
	// lifted, and is active again.
	if diff := cmp.Diff(app.ImportResult{Lines: 6, Added: 5, Events: 4}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	ann := e.key.Hash(dsr.KindEmail, "ann@example.com")
	got, err := e.store.Suppressions(ctx, []string{ann, hashed, lifted})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	for _, s := range got {
		if !s.Active() || s.Source != dsr.ConsentImport || s.Partner != "acme-data" {
			t.Errorf("entry %s: active %v, source %s, partner %q", s.ID, s.Active(), s.Source, s.Partner)
		}
		if s.Hash == hashed && !s.At.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("at %v, want the line's", s.At)
		}
	}
	history, err := e.store.ConsentHistory(ctx, []string{ann, hashed}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 3 || history[0].Kind != dsr.ConsentImported || history[0].Source != dsr.ConsentImport || history[0].Actor != "admin-key" {
		t.Errorf("history: %+v", history)
	}

	again, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Added != 0 || again.Events != 4 {
		t.Errorf("again: %+v", again)
	}
	// The run records its own events: the history shows both imports.
	if h, err := e.store.ConsentHistory(ctx, []string{ann, hashed}, 100); err != nil || len(h) != 6 {
		t.Errorf("history again: %d events, %v", len(h), err)
	}
}

// TestImportRefusesAMalformedList: every malformed line is named, and
// nothing is written.
func TestImportRefusesAMalformedList(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	in := strings.Join([]string{
		`{"kind":"email","value":"ok@example.com","scope":"marketing"}`,
		`{"kind":"email","value":"not an email","scope":"marketing"}`,
		`{"kind":"email","value":"ok2@example.com"}`,
		`{"kind":"email","value":"ok3@example.com","scope":"ads"}`,
		`{"hash":"email:1234","scope":"all"}`,
		`{"hash":"` + e.key.Hash(dsr.KindEmail, "x@example.com") + `","kind":"email","value":"x@example.com","scope":"all"}`,
		`{"kind":"fax","value":"1","scope":"all"}`,
		`{"kind":"customer_id","value":7,"scope":"all"}`,
		`{"scope":"all"}`,
		`{"kind":"email","value":"ok4@example.com","scope":"all","at":"yesterday"}`,
		`{"kind":"email","value":"ok5@example.com","scope":"all","at":"2999-01-01T00:00:00Z"}`,
		`not json`,
	}, "\n")
	_, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), app.ImportOptions{Partner: "acme"})
	var ie *app.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want an ImportError", err)
	}
	want := []app.LineError{
		{Line: 2, Problem: "value: must be a plain email address such as name@example.com"},
		{Line: 3, Problem: "scope is missing"},
		{Line: 4, Problem: "scope must be one of sale_share, marketing, profiling, all"},
		{Line: 5, Problem: "hash is not a suppression hash (kind:64 hex digits)"},
		{Line: 6, Problem: "give hash, or kind and value, not both"},
		{Line: 7, Problem: "kind must be one of email, customer_id, phone, advertising_id, device_id"},
		{Line: 8, Problem: "value must be a string"},
		{Line: 9, Problem: "give hash, or kind and value"},
		{Line: 10, Problem: "at must be an RFC 3339 time"},
		{Line: 11, Problem: "at is in the future"},
		{Line: 12, Problem: "not a JSON object: syntax error at byte 2"},
	}
	if diff := cmp.Diff(want, ie.Lines, cmp.AllowUnexported(app.LineError{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if ie.Total != len(want) {
		t.Errorf("total %d", ie.Total)
	}
	n := 0
	if err := e.store.EachSuppressionChange(ctx, time.Time{}, func(*dsr.Suppression) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("%d entries written (%v), want none", n, err)
	}
	if _, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader("\n\n"), app.ImportOptions{Partner: "acme"}); err == nil || err.Error() != "import: no entries" {
		t.Errorf("empty: %v", err)
	}
	if _, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), app.ImportOptions{Partner: "acme corp"}); fmt.Sprint(err) != "invalid input: partner: must be 1 to 64 letters, digits, '.', '_' or '-'" {
		t.Errorf("partner: %v", err)
	}
}

// TestListsRefuseLookalikes: an address intake would refuse (lookalikes)
// is no identity to a filter (the record is unidentified: dropped by
// default) and a malformed line to an import.
func TestListsRefuseLookalikes(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	e.suppress(t, dsr.KindEmail, "grace@example.com", dsr.ScopeAll)

	var csvIn, ndIn, imp strings.Builder
	csvIn.WriteString("email\n")
	for _, v := range lookalikes {
		csvIn.WriteString(v + "\n")
		b, _ := json.Marshal(v)
		if !utf8.ValidString(v) { // the bytes as a sender would put them
			b = []byte(`"` + v + `"`)
		}
		ndIn.WriteString(`{"email":` + string(b) + "}\n")
		imp.WriteString(`{"kind":"email","value":` + string(b) + `,"scope":"marketing"}` + "\n")
	}
	for _, format := range []app.ListFormat{app.FormatCSV, app.FormatNDJSON} {
		in := csvIn.String()
		if format == app.FormatNDJSON {
			in = ndIn.String()
		}
		var out bytes.Buffer
		opts := app.FilterOptions{Scope: dsr.ScopeMarketing, Format: format, Columns: []app.IdentityColumn{{Name: "email"}}}
		st, err := app.FilterSuppressions(ctx, e.set, strings.NewReader(in), &out, opts)
		n := int64(len(lookalikes))
		if err != nil || !cmp.Equal(st, app.FilterStats{Read: n, Unidentified: n}) {
			t.Errorf("%s: %+v, %v; want all %d unidentified", format, st, err, n)
		}
		if strings.Contains(out.String(), "grace") {
			t.Errorf("%s: kept %q", format, out.String())
		}
	}

	_, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(imp.String()), app.ImportOptions{Partner: "acme"})
	var ie *app.ImportError
	if !errors.As(err, &ie) || ie.Total != len(lookalikes) {
		t.Fatalf("import: %v, want all %d lines malformed", err, len(lookalikes))
	}
	for i, l := range ie.Lines {
		if l.Line != i+1 || !strings.HasPrefix(l.Problem, "value: ") || strings.Contains(l.Problem, "grace") {
			t.Errorf("line error %+v", l)
		}
	}
}

// TestImportAfterAnOptIn: a partner's list imported again after the
// person opted in makes them suppressed again, and the history says so:
// imported, opt_in, imported. Each run records its events, before its
// entries.
func TestImportAfterAnOptIn(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	in := `{"kind":"email","value":"ivy@example.com","scope":"marketing"}` + "\n"
	ivy := e.key.Hash(dsr.KindEmail, "ivy@example.com")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	opts := app.ImportOptions{Partner: "acme", Actor: "admin-key", Now: t0}
	if _, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.LiftSuppressions(ctx, []string{ivy}, dsr.ScopeMarketing, "subject", ""); err != nil {
		t.Fatal(err)
	}
	optIn := dsr.ConsentEvent{ID: "opt-in-1", Hashes: []string{ivy}, Kind: dsr.ConsentOptIn, Scopes: []dsr.Scope{dsr.ScopeMarketing},
		Source: dsr.ConsentPortal, Actor: "subject", At: t0.Add(time.Hour)}
	if err := e.store.AddConsentEvents(ctx, []dsr.ConsentEvent{optIn}); err != nil {
		t.Fatal(err)
	}
	opts.Now = t0.Add(2 * time.Hour)
	res, err := app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(in), opts)
	if err != nil || res.Added != 1 || res.Events != 1 {
		t.Fatalf("again: %+v, %v; want one added, one event", res, err)
	}
	history, err := e.store.ConsentHistory(ctx, []string{ivy}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []dsr.ConsentKind
	for _, ev := range history {
		kinds = append(kinds, ev.Kind)
	}
	if want := []dsr.ConsentKind{dsr.ConsentImported, dsr.ConsentOptIn, dsr.ConsentImported}; !cmp.Equal(kinds, want) {
		t.Errorf("history %v, want %v", kinds, want)
	}

	// Evidence first: a store that fails the entries has the event.
	failing := &failSuppress{SuppressionImporter: e.store}
	opts.Now = t0.Add(3 * time.Hour)
	if _, err := app.ImportSuppressions(ctx, failing, e.key, strings.NewReader(in), opts); err == nil {
		t.Fatal("no error from a failed Suppress")
	}
	if h, err := e.store.ConsentHistory(ctx, []string{ivy}, 10); err != nil || len(h) != 4 || !h[3].At.Equal(opts.Now) {
		t.Errorf("after a failed write: %d events, %v; want the run's event stored", len(h), err)
	}
}

// failSuppress is a store whose Suppress fails.
type failSuppress struct{ app.SuppressionImporter }

func (failSuppress) Suppress(context.Context, []dsr.Suppression) (int, error) {
	return 0, errors.New("store down")
}

// TestFilterRefusesAmbiguousRecords: a header with an identity column
// twice is refused before the stream; an NDJSON record with a key twice
// (escaped or not, or an identity column's name in another case, which
// Go's and other decoders fold) is malformed, never kept on its first
// value.
func TestFilterRefusesAmbiguousRecords(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	ctx := context.Background()
	e.suppress(t, dsr.KindEmail, "grace@example.com", dsr.ScopeAll)
	email := []app.IdentityColumn{{Name: "email"}}

	for _, header := range []string{"email,email", "id,email,name,email", "email, Email ", "EMAIL,Email"} {
		in := header + "\nok@example.com,grace@example.com\n"
		_, err := app.FilterSuppressions(ctx, e.set, strings.NewReader(in), io.Discard, app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatCSV, Columns: email})
		var ve *dsr.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), `the header line has column "email" more than once`) {
			t.Errorf("header %q: %v, want a validation error", header, err)
		}
	}

	in := `{"email":"ok@example.com"}` + "\n" +
		`{"email":"ok@example.com","email":"grace@example.com"}` + "\n" +
		`{"email":"ok@example.com","\u0065mail":"grace@example.com"}` + "\n" +
		`{"email":"ok@example.com","Email":"grace@example.com"}` + "\n" +
		`{"email":"ok@example.com","note":{"a":1,"a":2},"n":1,"n":2}` + "\n" +
		`{"email":"ok2@example.com","note":{"a":1,"a":2}}` + "\n" + // nested: no identity in it, kept
		`{"email":"ok3@example.com"} {"email":"grace@example.com"}` + "\n"
	var out bytes.Buffer
	st, err := app.FilterSuppressions(ctx, e.set, strings.NewReader(in), &out, app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatNDJSON, Columns: email, OnError: app.OnErrorSkip})
	if err != nil {
		t.Fatal(err)
	}
	want := app.FilterStats{Read: 7, Kept: 2, Skipped: 5, SkippedLines: []int{2, 3, 4, 5, 7}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	_, err = app.FilterSuppressions(ctx, e.set, strings.NewReader(in), io.Discard, app.FilterOptions{Scope: dsr.ScopeMarketing, Format: app.FormatNDJSON, Columns: email})
	if err == nil || err.Error() != "line 2: a key is given twice in one object: the record is ambiguous" {
		t.Errorf("stop: %v", err)
	}

	imp := `{"kind":"email","value":"ok@example.com","value":"grace@example.com","scope":"marketing"}` + "\n"
	_, err = app.ImportSuppressions(ctx, e.store, e.key, strings.NewReader(imp), app.ImportOptions{Partner: "acme"})
	var ie *app.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Problem != "a key is given twice in one object: the line is ambiguous" {
		t.Errorf("import: %v", err)
	}
}

// TestImportSpool: an import spools in its directory, private to the
// user, removes its own file, and the stale ones a killed import left.
func TestImportSpool(t *testing.T) {
	t.Parallel()
	e := setupLists(t)
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "dsar-import-1.tsv")
	fresh := filepath.Join(dir, "dsar-import-2.tsv")
	other := filepath.Join(dir, "notes.txt")
	for _, f := range []string{stale, fresh, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-app.StaleSpool - time.Hour)
	for _, f := range []string{stale, other} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	in := `{"kind":"email","value":"sam@example.com","scope":"marketing"}` + "\n"
	if _, err := app.ImportSuppressions(context.Background(), e.store, e.key, strings.NewReader(in), app.ImportOptions{Partner: "acme", SpoolDir: dir}); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		left = append(left, de.Name())
	}
	if want := []string{"dsar-import-2.tsv", "notes.txt"}; !cmp.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
