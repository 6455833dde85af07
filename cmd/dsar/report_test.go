package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
)

// seedReport files, through a store whose clock it sets, in January and
// February 2026: two access (gdpr) requests completed after 2 and 5 days, a
// deletion (ccpa) denied after a day, and an open opt-out (ccpa); and one
// access request in March.
func seedReport(t *testing.T, s *mongostore.Store, clock *testenv.Clock) {
	t.Helper()
	ctx := context.Background()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	at := func(t time.Time) { clock.Add(t.Sub(clock.Now())) }
	file := func(typ dsr.Type, reg dsr.Regulation, received time.Time, email string, path []dsr.Status, after []time.Duration, reason string) {
		at(received)
		r, err := dsr.NewRequest(dsr.Intake{
			Type: typ, Regulation: reg, Source: "test", FiledBy: "desk", Status: dsr.StatusVerified,
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}, ReceivedAt: received,
		}, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		from := dsr.StatusVerified
		for i, to := range path {
			at(received.Add(after[i]))
			why := ""
			if i == len(path)-1 {
				why = reason
			}
			if _, err := s.Transition(ctx, r.ID, from, to, dsr.Change{Actor: "desk", Reason: why, DenialBasis: dsr.DeniedUnverifiable}); err != nil {
				t.Fatal(err)
			}
			from = to
		}
	}
	day := 24 * time.Hour
	on := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 9, 0, 0, 0, time.UTC) }
	done := []dsr.Status{dsr.StatusInProgress, dsr.StatusCompleted}
	file(dsr.TypeAccess, dsr.RegulationGDPR, on(1, 5), "ada@example.com", done, []time.Duration{day, 2 * day}, "")
	file(dsr.TypeAccess, dsr.RegulationGDPR, on(1, 10), "grace@example.com", done, []time.Duration{day, 5 * day}, "")
	file(dsr.TypeDeletion, dsr.RegulationCCPA, on(2, 10), "alan@example.com", []dsr.Status{dsr.StatusDenied}, []time.Duration{day}, "could not verify the requester")
	file(dsr.TypeOptOut, dsr.RegulationCCPA, on(2, 20), "ada@example.com", nil, nil, "")
	file(dsr.TypeAccess, dsr.RegulationGDPR, on(3, 1), "grace@example.com", nil, nil, "")
}

// squeeze collapses the runs of spaces in each line of s.
func squeeze(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

func TestReport(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := mongostore.New(db, clock.Now)
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	seedReport(t, s, clock)
	env := []string{"DSAR_MONGO_URI=" + testenv.MongoURI(t), "DSAR_MONGO_DB=" + db.Name()}

	out, errOut, code := runOnce(t, env, "report", "--from", "2026-01-01", "--to", "2026-03-01")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	lines := squeeze(out)
	if !regexp.MustCompile(`^Requests received 2026-01-01 to 2026-02-28 \(UTC\), as they stand on \d{4}-\d\d-\d\d \d\d:\d\d UTC$`).MatchString(lines[0]) {
		t.Errorf("title %q", lines[0])
	}
	// 2 and 5 days: median and mean 3.5 (an even count); in all, 1, 2 and
	// 5 days: median 2, mean 8/3.
	want := []string{
		"type regulation received completed denied open overdue cancelled expired median days mean days on time",
		"access gdpr 2 2 0 0 0 0 0 3.50 3.50 100.0% (2/2)",
		"deletion ccpa 1 0 1 0 0 0 0 1.00 1.00 100.0% (1/1)",
		"opt_out ccpa 1 0 0 1 1 0 0 - - -", // open, due in January: overdue now
		"total 4 2 1 1 1 0 0 2.00 2.67 100.0% (3/3)",
		"",
		"Denied, by basis:",
		"deletion ccpa: 1 unverifiable",
		"",
	}
	if got := lines[2:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(out+errOut, "@") {
		t.Errorf("the report names a person:\n%s%s", out, errOut)
	}

	// --json prints what the API answers.
	out, errOut, code = runOnce(t, env, "report", "--from", "2026-01-01", "--to", "2026-03-01", "--json")
	var sum dsr.Summary
	if err := json.Unmarshal([]byte(out), &sum); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
	}
	if len(sum.Rows) != 3 || sum.Total.Received != 4 || *sum.Total.MedianDays != 2 || *sum.Total.MeanDays != 2.67 ||
		*sum.Total.OnTimeRate != 1 || sum.Rows[1].DeniedByBasis[dsr.DeniedUnverifiable] != 1 || sum.Rows[2].MedianDays != nil {
		t.Errorf("--json: %s", out)
	}
	if !sum.From.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !sum.To.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("--json window %s %s", sum.From, sum.To)
	}

	// A period with no request.
	out, _, code = runOnce(t, env, "report", "--from", "2025-01-01", "--to", "2026-01-01")
	if code != 0 || !strings.Contains(strings.Join(squeeze(out), "\n"), "total 0 0 0 0 0 0 0 - - -") || strings.Contains(out, "Denied") {
		t.Errorf("empty period: exit %d\n%s", code, out)
	}

	// The wrong database is a usage error, not an empty report.
	_, errOut, code = runOnce(t, []string{env[0], "DSAR_MONGO_DB=" + testenv.Name("none")}, "report", "--from", "2026-01-01", "--to", "2026-03-01")
	if code != 2 || !strings.Contains(errOut, "no requests collection") {
		t.Errorf("unknown database: exit %d, stderr: %s", code, errOut)
	}
}

func TestReportUsage(t *testing.T) {
	t.Parallel()
	store := []string{"DSAR_MONGO_URI=mongodb://127.0.0.1:1"}
	checkRuns(t, []cliRun{
		{[]string{"--help"}, nil, 0, "report     print the compliance summary", ""},
		{[]string{"report", "--help"}, nil, 0, "CCPA 11 CCR 7102", ""},
		{[]string{"report"}, store, 2, "", "--from: required: a date, YYYY-MM-DD (UTC); --to: required"},
		{[]string{"report", "--from", "2026-01-01"}, store, 2, "", "--to: required"},
		{[]string{"report", "--from", "1 Jan 2026", "--to", "2026-02-01"}, store, 2, "", "--from: must be a date"},
		{[]string{"report", "--from", "2026-02-01", "--to", "2026-02-01"}, store, 2, "", "--to: must be after from"},
		{[]string{"report", "--from", "2026-01-01", "--to", "2028-01-02"}, store, 2, "", "--to: must be at most 2 years after from"},
		{[]string{"report", "--from", "2026-01-01", "--to", "2026-02-01", "extra"}, store, 2, "", "unexpected argument"},
		{[]string{"report", "--nope"}, store, 2, "", "flag provided but not defined"},
		{[]string{"report", "--from", "2026-01-01", "--to", "2026-02-01"}, nil, 2, "", "no store: set DSAR_MONGO_URI"},
		{[]string{"report", "--from", "2026-01-01", "--to", "2026-02-01", "--data-dir", "x"}, store, 2, "", "give one"},
		{[]string{"report", "--from", "2026-01-01", "--to", "2026-02-01", "--data-dir", t.TempDir()}, nil, 2, "", "no embedded store"},
	})
}

// TestMetricsAndReportEndToEnd scrapes /metrics of `dsar dev` (with a
// metrics token) after a request completed, and runs `dsar report` on its
// store while it runs.
func TestMetricsAndReportEndToEnd(t *testing.T) {
	r := testenv.RedisServer(t)
	queue := testenv.Queue(t, r)
	dataDir := t.TempDir()
	mongoDB := testenv.Name("e2e")
	const token = "metrics-token-0123456789"
	p := startDSAR(t, append(baseEnv(t, dataDir, r.Addr, queue, mongoDB), "DSAR_METRICS_TOKEN="+token), "dev", "--demo")
	p.file("access", "gdpr", "ada@example.com")

	scrape := func(auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", p.base+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d", code)
	}
	code, body := scrape("Bearer " + token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`dsar_requests{regulation="gdpr",status="completed",type="access"} 1`,
		`dsar_request_time_to_complete_seconds_count{regulation="gdpr",type="access"} 1`,
		`dsar_jobs_finished_total{action="export",connector="shop",outcome="succeeded"} 1`,
		`dsar_job_duration_seconds_count{action="export",connector="shop"} 1`,
		`dsar_stats_up 1`,
		`asynq_queue_size{queue="` + queue + `"}`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "@example.com") {
		t.Errorf("/metrics names a person")
	}

	// The report, on the store dev runs on.
	env, args := []string{"DSAR_MONGO_DB=dsar"}, []string{"report", "--from", "2020-01-01", "--to", "2021-12-31", "--json"}
	if testenv.RealMongo() {
		env = []string{"DSAR_MONGO_URI=" + testenv.MongoURI(t), "DSAR_MONGO_DB=" + mongoDB}
	} else {
		args = append(args, "--data-dir", dataDir)
	}
	now := time.Now().UTC()
	args[2], args[4] = now.AddDate(0, 0, -1).Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly)
	out, errOut, code := runOnce(t, env, args...)
	var sum dsr.Summary
	if err := json.Unmarshal([]byte(out), &sum); code != 0 || err != nil {
		t.Fatalf("report: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
	}
	if len(sum.Rows) != 1 || sum.Rows[0].Type != dsr.TypeAccess || sum.Rows[0].Completed != 1 || *sum.Total.OnTimeRate != 1 {
		t.Errorf("report: %s", out)
	}
}
