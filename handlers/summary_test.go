package handlers_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
)

// statsAPI serves the API on a store whose clock the test sets, as the
// API's (and the metrics') clock.
type statsAPI struct {
	*api
	clock *testenv.Clock
}

func setupStats(t *testing.T) *statsAPI {
	t.Helper()
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := teststore.Open(t, clock.Now)
	cmds := store.Commands
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string, role apikey.Role, secret string) apikey.Key {
		return apikey.Key{Name: name, Role: role, Hash: sha256.Sum256([]byte(secret))}
	}
	logs := &testenv.Buffer{}
	h := handlers.New(handlers.Deps{
		Store: store, Queue: failingQueue{}, Index: idx, Log: slog.New(slog.NewJSONHandler(logs, nil)),
		Keys: apikey.NewKeyring(key("ops", apikey.RoleAdmin, adminKey), key("desk", apikey.RoleAgent, agentKey), key("audit", apikey.RoleAuditor, auditorKey)),
		Now:  clock.Now,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "@example.com") {
			t.Errorf("logs hold personal data:\n%s", logs)
		}
	})
	return &statsAPI{api: &api{t: t, url: srv.URL, client: apitest.Client(t), store: store, cmds: cmds, index: idx}, clock: clock}
}

// at sets the clock.
func (s *statsAPI) at(t time.Time) { s.clock.Add(t.Sub(s.clock.Now())) }

// file stores a verified request received at received and moves it along
// path, the nth move after[n] after receipt, the last with reason.
func (s *statsAPI) file(typ dsr.Type, reg dsr.Regulation, received time.Time, path []dsr.Status, after []time.Duration, basis dsr.DenialBasis) *dsr.Request {
	s.t.Helper()
	ctx := context.Background()
	s.at(received)
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: reg, Source: "test", FiledBy: "desk", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: fmt.Sprintf("person%d@example.com", received.Unix()), Source: dsr.SourceSubject}},
		ReceivedAt: received,
	}, s.index)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.store.CreateRequest(ctx, r); err != nil {
		s.t.Fatal(err)
	}
	from := dsr.StatusVerified
	for i, to := range path {
		s.at(received.Add(after[i]))
		if _, err := s.store.Transition(ctx, r.ID, from, to, dsr.Change{Actor: "desk", DenialBasis: basis}); err != nil {
			s.t.Fatal(err)
		}
		from = to
	}
	return r
}

func on(m time.Month, d int) time.Time { return time.Date(2026, m, d, 10, 0, 0, 0, time.UTC) }

const statsDay = 24 * time.Hour

// seedStats files, in [1 January, 1 March 2026): access (gdpr) requests
// completed after 2, 5 and 60 days (the last late) and one open; deletion
// (ccpa) requests denied after 1 and 3 days, unverifiable and exempt. After it:
// an opt-out (ccpa) received on 1 March at midnight, open. It returns the
// open access request.
func (s *statsAPI) seedStats() *dsr.Request {
	done := []dsr.Status{dsr.StatusInProgress, dsr.StatusCompleted}
	after := func(days float64) []time.Duration {
		d := time.Duration(days * float64(statsDay))
		return []time.Duration{d / 2, d}
	}
	s.file(dsr.TypeAccess, dsr.RegulationGDPR, on(1, 5), done, after(2), "")
	s.file(dsr.TypeAccess, dsr.RegulationGDPR, on(1, 10), done, after(5), "")
	s.file(dsr.TypeAccess, dsr.RegulationGDPR, on(1, 20), done, after(60), "")
	open := s.file(dsr.TypeAccess, dsr.RegulationGDPR, on(2, 1), nil, nil, "")
	denied := []dsr.Status{dsr.StatusDenied}
	s.file(dsr.TypeDeletion, dsr.RegulationCCPA, on(2, 10), denied, []time.Duration{statsDay}, dsr.DeniedUnverifiable)
	s.file(dsr.TypeDeletion, dsr.RegulationCCPA, on(2, 15), denied, []time.Duration{3 * statsDay}, dsr.DeniedExempt)
	s.file(dsr.TypeOptOut, dsr.RegulationCCPA, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), nil, nil, "")
	return open
}

func TestSummaryReport(t *testing.T) {
	t.Parallel()
	s := setupStats(t)
	s.seedStats()
	s.at(on(4, 20))

	var got dsr.Summary
	resp := s.do("GET", "/v1/reports/summary?from=2026-01-01&to=2026-03-01", auditorKey, "", "", &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	f := func(x float64) *float64 { return &x }
	none := map[dsr.DenialBasis]int{dsr.DeniedUnverifiable: 0, dsr.DeniedNotConsumer: 0, dsr.DeniedExempt: 0, dsr.DeniedOther: 0}
	basis := map[dsr.DenialBasis]int{dsr.DeniedUnverifiable: 1, dsr.DeniedNotConsumer: 0, dsr.DeniedExempt: 1, dsr.DeniedOther: 0}
	want := dsr.Summary{
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Rows: []dsr.SummaryRow{
			// 2, 5, 60 days: median 5 (odd), mean 67/3 = 22.33, 2 of 3 on time.
			{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Received: 4, Completed: 3, Open: 1, Overdue: 1, DeniedByBasis: none,
				Responded: 3, OnTime: 2, MedianDays: f(5), MeanDays: f(22.33), OnTimeRate: f(0.6667)},
			// 1, 3 days: median (1+3)/2 (even), mean 2.
			{Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA, Received: 2, Denied: 2, DeniedByBasis: basis,
				Responded: 2, OnTime: 2, MedianDays: f(2), MeanDays: f(2), OnTimeRate: f(1)},
		},
		// 1, 2, 3, 5, 60: median 3, mean 71/5 = 14.2, 4 of 5 on time.
		Total: dsr.SummaryRow{Received: 6, Completed: 3, Denied: 2, Open: 1, Overdue: 1, DeniedByBasis: basis,
			Responded: 5, OnTime: 4, MedianDays: f(3), MeanDays: f(14.2), OnTimeRate: f(0.8)},
		GeneratedAt: on(4, 20),
	}
	if g, w := dumpSummary(got), dumpSummary(want); g != w {
		t.Errorf("summary:\n got %s\nwant %s", g, w)
	}
	// Every role may read it.
	for _, key := range []string{adminKey, agentKey} {
		if resp := s.do("GET", "/v1/reports/summary?from=2026-01-01&to=2026-03-01", key, "", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	// The opt-out of 1 March is in the next period, alone.
	var next dsr.Summary
	s.do("GET", "/v1/reports/summary?from=2026-03-01&to=2026-04-01", agentKey, "", "", &next)
	if len(next.Rows) != 1 || next.Rows[0].Type != dsr.TypeOptOut || next.Rows[0].Open != 1 || next.Total.MedianDays != nil || next.Total.OnTimeRate != nil {
		t.Errorf("March: %+v", next)
	}
	// The JSON names no person.
	_, body := s.send("GET", "/v1/reports/summary?from=2026-01-01&to=2027-01-01", auditorKey, "", "")
	if strings.Contains(string(body), "@") || !strings.Contains(string(body), `"median_days":3`) {
		t.Errorf("summary body: %s", body)
	}
}

// dumpSummary prints a summary, pointers by value, to compare two.
func dumpSummary(s dsr.Summary) string {
	row := func(r dsr.SummaryRow) string {
		p := func(x *float64) string {
			if x == nil {
				return "nil"
			}
			return fmt.Sprint(*x)
		}
		keys := make([]string, 0, len(r.DeniedByBasis))
		for k, n := range r.DeniedByBasis {
			keys = append(keys, fmt.Sprintf("%q:%d", k, n))
		}
		slices.Sort(keys)
		return fmt.Sprintf("{%s %s received %d completed %d denied %d %v open %d overdue %d cancelled %d expired %d responded %d on_time %d median %s mean %s rate %s}",
			r.Type, r.Regulation, r.Received, r.Completed, r.Denied, keys, r.Open, r.Overdue, r.Cancelled, r.Expired, r.Responded, r.OnTime,
			p(r.MedianDays), p(r.MeanDays), p(r.OnTimeRate))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s..%s at %s\n", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339), s.GeneratedAt.Format(time.RFC3339))
	for _, r := range s.Rows {
		b.WriteString(row(r) + "\n")
	}
	b.WriteString("total " + row(s.Total))
	return b.String()
}

func TestSummaryValidation(t *testing.T) {
	t.Parallel()
	s := setupStats(t)
	for _, c := range []struct {
		query  string
		fields []string
	}{
		{"", []string{"from", "to"}},
		{"?from=2026-01-01", []string{"to"}},
		{"?from=2026-13-01&to=2026-02-01", []string{"from"}},
		{"?from=2026-01-01&to=1%20March", []string{"to"}},
		{"?from=2026-02-01&to=2026-02-01", []string{"to"}},
		{"?from=2026-03-01&to=2026-02-01", []string{"to"}},
		{"?from=2026-01-01&to=2028-01-02", []string{"to"}},
		{"?from=2026-01-01&to=2026-02-01&type=access", []string{"type"}},
	} {
		var p httpkit.Problem
		resp := s.do("GET", "/v1/reports/summary"+c.query, agentKey, "", "", &p)
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
		}
		if resp.StatusCode != http.StatusBadRequest || p.Type != "urn:dsar:problem:validation" || !slices.Equal(fields, c.fields) {
			t.Errorf("%q: %d %s %v, want 400 naming %v", c.query, resp.StatusCode, p.Type, fields, c.fields)
		}
	}
	// Two years exactly is allowed; no key is 401.
	if resp := s.do("GET", "/v1/reports/summary?from=2026-01-01&to=2028-01-01", agentKey, "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("two years: %d", resp.StatusCode)
	}
	if resp := s.do("GET", "/v1/reports/summary?from=2026-01-01&to=2026-02-01", "", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: %d", resp.StatusCode)
	}
}

// scrape gets /metrics with an optional bearer token and parses it.
func scrape(t *testing.T, client *http.Client, url, token string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams, string(body)
}

// metric finds the metric of family name with labels (name=value pairs).
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := len(have) == len(labels)/2
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			return m
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := setupStats(t)
	open := s.seedStats()
	ctx := context.Background()
	// A job of the first request: exported by "shop" 90 seconds after it
	// was created.
	s.at(on(3, 1))
	first, _, err := s.store.ListRequests(ctx, dsr.ListFilter{Sort: dsr.SortDue, Limit: 1})
	if err != nil || len(first) != 1 {
		t.Fatal(len(first), err)
	}
	job := dsr.NewJob(first[0].ID, "shop", dsr.ActionExport, s.clock.Now())
	if err := s.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	s.at(on(3, 1).Add(90 * time.Second))
	claimed, err := s.store.ClaimJob(ctx, job.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 3}); err != nil {
		t.Fatal(err)
	}
	// Another waits on a system that finishes later.
	waiting := dsr.NewJob(first[0].ID, "sfmc", dsr.ActionErase, s.clock.Now())
	if err := s.store.CreateJobs(ctx, []dsr.Job{waiting}); err != nil {
		t.Fatal(err)
	}
	if claimed, err = s.store.ClaimJob(ctx, waiting.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobWaiting, Handle: "op-1",
		PollAt: s.clock.Now().Add(time.Hour), WaitUntil: s.clock.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	s.at(on(4, 20))
	s.cmds.Reset()
	fams, body := scrape(t, s.client, s.url, "")
	// One read of the store: three counts, the completions, the job outcomes.
	if s.store.Mongo != nil {
		if diff := strings.Join(s.cmds.Names(), " "); diff != "aggregate aggregate aggregate find find" {
			t.Errorf("store commands of a scrape: %s", diff)
		}
	}
	gauge := func(name string, labels ...string) float64 {
		t.Helper()
		return metric(t, fams, name, labels...).GetGauge().GetValue()
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"status", "completed", "type", "access", "regulation", "gdpr"}, 3},
		{[]string{"status", "verified", "type", "access", "regulation", "gdpr"}, 1},
		{[]string{"status", "denied", "type", "deletion", "regulation", "ccpa"}, 2},
		{[]string{"status", "verified", "type", "opt_out", "regulation", "ccpa"}, 1},
		{[]string{"status", "completed", "type", "opt_out", "regulation", "lgpd"}, 0},
	} {
		if got := gauge("dsar_requests", c.labels...); got != c.want {
			t.Errorf("dsar_requests%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := gauge("dsar_jobs_waiting", "connector", "sfmc", "action", "erase"); got != 1 {
		t.Errorf("dsar_jobs_waiting = %v, want 1", got)
	}
	if n := len(fams["dsar_requests"].GetMetric()); n != len(dsr.Statuses)*len(dsr.Types)*len(dsr.Regulations) {
		t.Errorf("%d dsar_requests series", n)
	}
	// On 20 April the open access request (due 1 March) and the opt-out
	// (15 business days from 1 March) are overdue.
	for _, c := range []struct {
		typ, reg string
		want     float64
	}{{"access", "gdpr", 1}, {"opt_out", "ccpa", 1}, {"deletion", "ccpa", 0}} {
		if got := gauge("dsar_requests_overdue", "type", c.typ, "regulation", c.reg); got != c.want {
			t.Errorf("overdue %s %s = %v, want %v", c.typ, c.reg, got, c.want)
		}
	}
	const daySeconds = 24 * 3600
	h := metric(t, fams, "dsar_request_time_to_complete_seconds", "type", "access", "regulation", "gdpr").GetHistogram()
	if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-67*daySeconds) > 1e-6 {
		t.Errorf("time to complete: count %d sum %v, want 3 and 67 days", h.GetSampleCount(), h.GetSampleSum())
	}
	cum := map[float64]uint64{} // by bound in days
	for _, b := range h.GetBucket() {
		cum[b.GetUpperBound()/daySeconds] = b.GetCumulativeCount()
	}
	if cum[1] != 0 || cum[2] != 1 || cum[5] != 2 || cum[45] != 2 || cum[60] != 3 || cum[90] != 3 {
		t.Errorf("days buckets %v", cum)
	}
	if got := metric(t, fams, "dsar_jobs_finished_total", "connector", "shop", "action", "export", "outcome", "succeeded").GetCounter().GetValue(); got != 1 {
		t.Errorf("jobs finished = %v", got)
	}
	jh := metric(t, fams, "dsar_job_duration_seconds", "connector", "shop", "action", "export").GetHistogram()
	if jh.GetSampleCount() != 1 || jh.GetSampleSum() != 90 {
		t.Errorf("job duration: count %d sum %v", jh.GetSampleCount(), jh.GetSampleSum())
	}
	if gauge("dsar_stats_up") != 1 || gauge("dsar_stats_read_timestamp_seconds") != float64(on(4, 20).Unix()) {
		t.Errorf("stats up %v read at %v", gauge("dsar_stats_up"), gauge("dsar_stats_read_timestamp_seconds"))
	}
	if strings.Contains(body, "@") || strings.Contains(body, open.ID) {
		t.Errorf("the metrics name a person or a request:\n%s", body)
	}

	// The open request completes. Within 30 seconds scrapes read nothing
	// and show the figures read; after, the gauges are counted afresh and
	// the completion is added.
	if _, err := s.store.Transition(ctx, open.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Transition(ctx, open.ID, dsr.StatusInProgress, dsr.StatusCompleted, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	s.clock.Add(29 * time.Second)
	s.cmds.Reset()
	fams, _ = scrape(t, s.client, s.url, "")
	if n := len(s.cmds.All()); n != 0 || gauge("dsar_requests", "status", "completed", "type", "access", "regulation", "gdpr") != 3 {
		t.Errorf("a scrape within 30s: %d store commands, completed %v", n, gauge("dsar_requests", "status", "completed", "type", "access", "regulation", "gdpr"))
	}
	s.clock.Add(time.Second)
	fams, _ = scrape(t, s.client, s.url, "")
	if got := gauge("dsar_requests", "status", "completed", "type", "access", "regulation", "gdpr"); got != 4 {
		t.Errorf("completed after 30s: %v", got)
	}
	h = metric(t, fams, "dsar_request_time_to_complete_seconds", "type", "access", "regulation", "gdpr").GetHistogram()
	if h.GetSampleCount() != 4 || math.Abs(h.GetSampleSum()-(67+78)*daySeconds) > 1e-6 { // 1 February 10:00 to 20 April 10:00
		t.Errorf("time to complete after a completion: count %d sum %v, want 4 and 145 days", h.GetSampleCount(), h.GetSampleSum())
	}
	// Read again later, nothing new: nothing counts twice.
	s.clock.Add(time.Minute)
	fams, _ = scrape(t, s.client, s.url, "")
	if got := metric(t, fams, "dsar_request_time_to_complete_seconds", "type", "access", "regulation", "gdpr").GetHistogram().GetSampleCount(); got != 4 {
		t.Errorf("count after a later read: %d", got)
	}
	if got := metric(t, fams, "dsar_jobs_finished_total", "connector", "shop", "action", "export", "outcome", "succeeded").GetCounter().GetValue(); got != 1 {
		t.Errorf("jobs finished after a later read: %v", got)
	}
}

func TestMetricsToken(t *testing.T) {
	t.Parallel()
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring(), MetricsToken: "metrics-token-0123456789"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := apitest.Client(t)
	for _, c := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Basic metrics-token-0123456789", http.StatusUnauthorized},
		{"Bearer metrics-token-0123456789", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
	// Without a token, /metrics is open.
	open := httptest.NewServer(handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring()}))
	defer open.Close()
	scrape(t, client, open.URL, "")
}
