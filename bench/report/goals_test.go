package main

import (
	"bytes"
	"strings"
	"testing"
	"text/template"
)

// ran is a run of bench with a result per sub-benchmark.
func ran(bench string, env map[string]string, subs map[string]map[string]float64) *Run {
	r := &Run{Bench: bench, Ran: true, Env: env, Skipped: map[string]string{}}
	for sub, m := range subs {
		name := bench
		if sub != "" {
			name += "/" + sub
		}
		r.Results = append(r.Results, Result{Name: name, N: 1, Metrics: m})
	}
	return r
}

func TestGoals(t *testing.T) {
	t.Parallel()
	intake := func(r1, r8, r64 float64) *Run {
		subs := map[string]map[string]float64{}
		for c, r := range map[string]float64{"1": r1, "8": r8, "64": r64} {
			if r >= 0 {
				subs["clients="+c] = map[string]float64{"ratio": r, "p50-ms": 2, "p99-ms": 9}
			}
		}
		return ran("BenchmarkIntake", map[string]string{"DSAR_BENCH_SECONDS": "15"}, subs)
	}
	export := func(over float64) *Run {
		subs := map[string]map[string]float64{}
		for _, n := range []string{"10000", "100000", "1000000"} {
			subs["records="+n] = map[string]float64{"rss-over-idle-MiB": over, "ratio": 0.8}
		}
		return ran("BenchmarkExport", nil, subs)
	}
	latency := ran("BenchmarkLatency", map[string]string{"DSAR_BENCH_STORED": "10000,100000"}, map[string]map[string]float64{
		"stored=10000":  {"intake-p50-ms": 2, "get-p50-ms": 1, "list-p50-ms": 4},
		"stored=100000": {"intake-p50-ms": 3, "get-p50-ms": 1, "list-p50-ms": 12},
	})
	tests := []struct {
		name string
		goal Goal
		met  string
		ok   bool
		has  string // in Measured
	}{
		{"intake not run", intakeGoal(notRun(group{Bench: "BenchmarkIntake"}, "BenchmarkIntake is not in ./bench")), "not run", true, "is not in ./bench"},
		{"intake met", intakeGoal(intake(0.7, 0.8, 0.9)), "yes", true, "ratio 0.70 / 0.80 / 0.90 at 1 / 8 / 64 clients (15 s each)"},
		{"intake missed", intakeGoal(intake(0.32, 0.56, 0.84)), "**no** (clients: 1, 8)", false, "p50 ms 2 / 2 / 2; p99 ms 9 / 9 / 9"},
		{"intake short", intakeGoal(ran("BenchmarkIntake", map[string]string{"DSAR_BENCH_SECONDS": "5"}, map[string]map[string]float64{"clients=1": {"ratio": 0.9}})), "yes where run; not run (clients: 8, 64) (at 5 s each, not 15)", true, "p50 ms not run; p99 ms not run"},
		{"intake partial", intakeGoal(intake(0.9, 0.9, -1)), "yes where run; not run (clients: 64)", true, "0.90 / 0.90 / not run"},
		{"intake failed", intakeGoal(&Run{Bench: "BenchmarkIntake", Ran: true, Failed: true, Reason: "boom"}), "not run", true, "failed: boom"},
		{"fanout", fanoutGoal(ran("BenchmarkFanout", map[string]string{"DSAR_BENCH_FANOUT": "2000"}, map[string]map[string]float64{"": {"ratio": 0.4, "jobs/s": 40}})), "**no**", false, "jobs/s 40; bound not run"},
		{"fanout small", fanoutGoal(ran("BenchmarkFanout", map[string]string{"DSAR_BENCH_FANOUT": "500"}, map[string]map[string]float64{"": {"ratio": 0.6}})), "yes (at 500 requests, not 2,000)", true, "500 requests"},
		{"fanout skipped", fanoutGoal(&Run{Bench: "BenchmarkFanout", Ran: true, Skipped: map[string]string{"": "no Redis"}}), "not run", true, "skipped: no Redis"},
		{"export met", exportGoal(export(9)), "yes", true, "RSS over idle, MiB: 9 / 9 / 9; ratio 0.80 / 0.80 / 0.80; at 10,000 / 100,000 / 1,000,000 records"},
		{"export over", exportGoal(export(70)), "**no** (records: 10,000, 100,000, 1,000,000)", false, ""},
		{"history sqlite", historyGoal(latency, Store{Driver: "sqlite"}), "embedded store: growth stated; MongoDB: not measured here (needs DSAR_BENCH_STORE=mongo with a real DSAR_TEST_MONGO_URI)", true, "intake 1.50x, get 1x, list 3x (10,000 to 100,000 stored)"},
		{"history FerretDB", historyGoal(latency, Store{Driver: "mongo"}), "embedded store: growth stated; MongoDB: not measured here (needs DSAR_BENCH_STORE=mongo with a real DSAR_TEST_MONGO_URI)", true, "not MongoDB"},
		{"history MongoDB", historyGoal(latency, Store{Driver: "mongo", RealMongo: true}), "**no** on MongoDB (more than 2x)", false, ""},
		{"suppression", suppressionGoal(ran("BenchmarkSuppressionCheck", nil, map[string]map[string]float64{"store=sqlite": {"checks/s": 300_000}, "store=mongo": {"checks/s": 150_000}}), Store{}), "**no** (stores: mongo)", false, "sqlite 300,000, mongo 150,000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.goal.Met != tt.met || tt.goal.MeetsOrNotRun != tt.ok {
				t.Errorf("met %q (%v), want %q (%v)", tt.goal.Met, tt.goal.MeetsOrNotRun, tt.met, tt.ok)
			}
			if !strings.Contains(tt.goal.Measured, tt.has) {
				t.Errorf("measured %q, want it to hold %q", tt.goal.Measured, tt.has)
			}
		})
	}
}

func TestGrowth(t *testing.T) {
	t.Parallel()
	r := ran("BenchmarkLatency", nil, map[string]map[string]float64{
		"stored=100000": {"get-p50-ms": 0.9}, "stored=1000": {"get-p50-ms": 0.6}, "stored=10000": {"get-p50-ms": 5},
	})
	if got, want := r.Growth("get-p50-ms"), "1.50x from 1,000 to 100,000 stored"; got != want {
		t.Errorf("growth %q, want %q", got, want)
	}
	if got := r.Growth("list-p50-ms"); got != "not run" {
		t.Errorf("growth of a missing metric %q, want not run", got)
	}
	one := ran("BenchmarkLatency", nil, map[string]map[string]float64{"stored=1000": {"get-p50-ms": 0.6}})
	if got := one.Growth("get-p50-ms"); got != "not run" {
		t.Errorf("growth at one size %q, want not run", got)
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	r := ran("BenchmarkLatency", nil, map[string]map[string]float64{"stored=1000": {"intake-p50-ms": 2.71, "x": 1234567}})
	want := "| stored | intake p50 | x | missing |\n|---:|---:|---:|---:|\n| 1,000 | 2.71 | 1,234,567 | not run |\n"
	if got := r.Table("stored", "intake-p50-ms|intake p50", "x", "missing"); got != want {
		t.Errorf("table\n%s\nwant\n%s", got, want)
	}
	failed := &Run{Bench: "BenchmarkX", Ran: true, Failed: true, Reason: "exit status 1"}
	if got, want := failed.Table("stored", "x"), "*Not run: failed: exit status 1.*\n"; got != want {
		t.Errorf("failed table %q, want %q", got, want)
	}
}

// TestTemplateNothingRun renders the report with no benchmark run: every
// section says not run, and nothing renders as "<no value>".
func TestTemplateNothingRun(t *testing.T) {
	t.Parallel()
	tmpl := template.Must(template.New("t").Parse(tmplText))
	d := Data{Size: "default", Runs: map[string]*Run{}}
	for _, g := range profiles["default"] {
		r := notRun(g, g.Bench+" is not in ./bench")
		r.Env, r.Command = g.env(func(string) string { return "" }), g.command(g.env(func(string) string { return "" }), "sqlite", "60m")
		d.Runs[g.Key], d.Order = r, append(d.Order, g.Key)
	}
	d.Goals = goals(d.Runs, d.Store)
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "<no value>") {
		t.Errorf("the report shows <no value>:\n%s", out)
	}
	for _, g := range profiles["default"] {
		if g.Key != "burst" && g.Key != "pages" && g.Key != "optouts" && !strings.Contains(out, g.Bench+" is not in ./bench") {
			t.Errorf("the report does not say %s did not run", g.Bench)
		}
	}
	if n := strings.Count(out, "| not run |"); n != 5 {
		t.Errorf("%d goals not run in the summary, want 5", n)
	}
	if strings.Contains(out, "A benchmark failed") {
		t.Error("a report without failures says one failed")
	}
	d.Failed = true
	buf.Reset()
	if err := tmpl.Execute(&buf, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "A benchmark failed in this run") {
		t.Error("a failed run's report does not say so")
	}
}
