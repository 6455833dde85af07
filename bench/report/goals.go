package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Goal is one row of the summary: a goal of issue 18, what the run
// measured for it, and whether that meets it, computed from the metrics.
type Goal struct {
	Name, Target  string
	Measured, Met string
	Command       string
	// MeetsOrNotRun is false only when a figure misses the goal.
	MeetsOrNotRun bool
}

// Store describes the store the benchmarks ran on.
type Store struct {
	// Driver is DSAR_BENCH_STORE: "sqlite" or "mongo".
	Driver string
	// RealMongo is set when the mongo driver ran on DSAR_TEST_MONGO_URI,
	// not on the embedded FerretDB.
	RealMongo bool
}

// Name is how the report names the store.
func (s Store) Name() string {
	switch {
	case s.Driver == "mongo" && s.RealMongo:
		return "MongoDB (DSAR_TEST_MONGO_URI)"
	case s.Driver == "mongo":
		return "the embedded FerretDB through the MongoDB driver (not MongoDB)"
	default:
		return "the embedded SQLite store"
	}
}

// MongoName names the MongoDB the tests reach: a real one at
// DSAR_TEST_MONGO_URI, or the embedded FerretDB.
func (s Store) MongoName() string {
	if s.RealMongo {
		return "MongoDB at DSAR_TEST_MONGO_URI"
	}
	return "the embedded FerretDB, not MongoDB"
}

// goals computes the summary from the runs, by key.
func goals(runs map[string]*Run, st Store) []Goal {
	return []Goal{
		intakeGoal(runs["intake"]),
		fanoutGoal(runs["fanout"]),
		exportGoal(runs["export"]),
		historyGoal(runs["history"], st),
		suppressionGoal(runs["suppression"], st),
	}
}

// command is the run's command, "" when there is no run.
func command(r *Run) string {
	if r == nil {
		return ""
	}
	return r.Command
}

// perSize checks, for each value of param the goal names, that ok holds
// on the run's metrics; it returns the values that miss it, those that did
// not run, and whether any figure was found.
func perSize(r *Run, param string, want []string, ok func(sub string) (met, found bool)) (missed, absent []string) {
	for _, v := range want {
		met, found := ok(param + "=" + v)
		switch {
		case !found:
			absent = append(absent, numString(v))
		case !met:
			missed = append(missed, numString(v))
		}
	}
	return missed, absent
}

// verdict phrases a goal's met column from the values that missed it and
// those that did not run, for what (e.g. "clients").
func verdict(missed, absent []string, all int, what string) (string, bool) {
	switch {
	case len(absent) == all:
		return "not run", true
	case len(missed) > 0 && len(absent) > 0:
		return fmt.Sprintf("**no** (%s: %s); not run (%s)", what, strings.Join(missed, ", "), strings.Join(absent, ", ")), false
	case len(missed) > 0:
		return fmt.Sprintf("**no** (%s: %s)", what, strings.Join(missed, ", ")), false
	case len(absent) > 0:
		return fmt.Sprintf("yes where run; not run (%s: %s)", what, strings.Join(absent, ", ")), true
	}
	return "yes", true
}

// series lists unit of each sub ("1.2 / 3.4 / not run"), or says "not
// run" once when none has it.
func series(r *Run, param string, subs []string, unit string) string {
	out := make([]string, len(subs))
	for i, v := range subs {
		out[i] = r.Cell(param+"="+v, unit)
	}
	if !slices.ContainsFunc(out, func(c string) bool { return !strings.HasPrefix(c, "not run") }) {
		return "not run"
	}
	return strings.Join(out, " / ")
}

func labels(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = numString(v)
	}
	return strings.Join(out, " / ")
}

func intakeGoal(r *Run) Goal {
	g := Goal{Name: "intake", Target: "POST /v1/requests at 1, 8 and 64 clients, 15 s each: >= 0.70 of the same driver operations issued directly on the same store; p50/p99",
		Command: command(r)}
	clients := []string{"1", "8", "64"}
	if why := r.Why(); why != "" {
		g.Measured, g.Met, g.MeetsOrNotRun = why, "not run", true
		return g
	}
	g.Measured = fmt.Sprintf("ratio %s at %s clients (%s s each); p50 ms %s; p99 ms %s",
		series(r, "clients", clients, "ratio"), labels(clients), r.Env["DSAR_BENCH_SECONDS"],
		series(r, "clients", clients, "p50-ms"), series(r, "clients", clients, "p99-ms"))
	missed, absent := perSize(r, "clients", clients, func(sub string) (bool, bool) {
		v, ok := r.Metric(sub, "ratio")
		return v >= 0.70, ok
	})
	g.Met, g.MeetsOrNotRun = verdict(missed, absent, len(clients), "clients")
	if secs := ints(r.Env["DSAR_BENCH_SECONDS"]); len(absent) < len(clients) && len(secs) == 1 && secs[0] < 15 {
		g.Met += fmt.Sprintf(" (at %d s each, not 15)", secs[0])
	}
	return g
}

func fanoutGoal(r *Run) Goal {
	g := Goal{Name: "fan-out", Target: "2,000 requests x 5 no-op connectors, real Redis: completed jobs/s >= 0.50 of min(bare asynq no-op tasks/s, direct store rate / store writes per job)",
		Command: command(r)}
	if why := r.Why(); why != "" {
		g.Measured, g.Met, g.MeetsOrNotRun = why, "not run", true
		return g
	}
	ratio, ok := r.Metric("", "ratio")
	g.Measured = fmt.Sprintf("%s requests: jobs/s %s; bound %s (asynq-noop/s %s; store-writes/s %s over writes/job %s); ratio %s",
		numString(r.Env["DSAR_BENCH_FANOUT"]), r.Cell("", "jobs/s"), r.Cell("", "bound-jobs/s"), r.Cell("", "asynq-noop/s"),
		r.Cell("", "store-writes/s"), r.Cell("", "writes/job"), r.Cell("", "ratio"))
	switch {
	case !ok:
		g.Met, g.MeetsOrNotRun = "not run (no ratio)", true
	case ratio >= 0.50:
		g.Met, g.MeetsOrNotRun = "yes", true
	default:
		g.Met = "**no**"
	}
	if ok && ints(r.Env["DSAR_BENCH_FANOUT"]) != nil && ints(r.Env["DSAR_BENCH_FANOUT"])[0] < 2000 {
		g.Met += " (at " + numString(r.Env["DSAR_BENCH_FANOUT"]) + " requests, not 2,000)"
	}
	return g
}

func exportGoal(r *Run) Goal {
	g := Goal{Name: "export", Target: "one subject with 10,000, 100,000 and 1,000,000 records: peak RSS within 64 MiB of idle at every size; >= 0.50 of a raw cursor read",
		Command: command(r)}
	sizes := []string{"10000", "100000", "1000000"}
	if why := r.Why(); why != "" {
		g.Measured, g.Met, g.MeetsOrNotRun = why, "not run", true
		return g
	}
	g.Measured = fmt.Sprintf("RSS over idle, MiB: %s; ratio %s; at %s records",
		series(r, "records", sizes, "rss-over-idle-MiB"), series(r, "records", sizes, "ratio"), labels(sizes))
	missed, absent := perSize(r, "records", sizes, func(sub string) (bool, bool) {
		over, ok1 := r.Metric(sub, "rss-over-idle-MiB")
		ratio, ok2 := r.Metric(sub, "ratio")
		return over <= 64 && ratio >= 0.50, ok1 && ok2
	})
	g.Met, g.MeetsOrNotRun = verdict(missed, absent, len(sizes), "records")
	return g
}

// growth is the p50 of unit at the largest stored size run over its p50
// at the smallest, with those sizes.
func growth(r *Run, unit string) (ratio float64, from, to string, ok bool) {
	subs := r.Subs("stored")
	slices.SortFunc(subs, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	if len(subs) < 2 {
		return 0, "", "", false
	}
	lo, ok1 := r.Metric("stored="+subs[0], unit)
	hi, ok2 := r.Metric("stored="+subs[len(subs)-1], unit)
	if !ok1 || !ok2 || lo <= 0 {
		return 0, "", "", false
	}
	return hi / lo, subs[0], subs[len(subs)-1], true
}

// Growth states the growth of unit's p50 with the store: "1.07x from
// 1,000 to 10,000 stored", or "not run".
func (r *Run) Growth(unit string) string {
	ratio, from, to, ok := growth(r, unit)
	if !ok {
		return "not run"
	}
	return fmt.Sprintf("%sx from %s to %s stored", num(ratio), numString(from), numString(to))
}

// historyFlat is how much a p50 may grow from the smallest store to the
// largest and still be flat.
const historyFlat = 2.0

func historyGoal(r *Run, st Store) Goal {
	g := Goal{Name: "history", Target: "intake, list and get latency with 10k and 100k stored requests: flat on MongoDB; on the embedded store, the growth measured and stated",
		Command: command(r)}
	if why := r.Why(); why != "" {
		g.Measured, g.Met, g.MeetsOrNotRun = why, "not run", true
		return g
	}
	var parts []string
	flat, measured := true, true
	var from, to string
	for _, op := range []string{"intake", "get", "list"} {
		ratio, f, t, ok := growth(r, op+"-p50-ms")
		if !ok {
			parts = append(parts, op+" not run")
			measured = false
			continue
		}
		from, to = f, t
		parts = append(parts, fmt.Sprintf("%s %sx", op, num(ratio)))
		flat = flat && ratio <= historyFlat
	}
	g.Measured = fmt.Sprintf("p50 growth on %s: %s", st.Name(), strings.Join(parts, ", "))
	if from != "" {
		g.Measured += fmt.Sprintf(" (%s to %s stored)", numString(from), numString(to))
	}
	sizes := ints(r.Env["DSAR_BENCH_STORED"])
	short := len(sizes) == 0 || sizes[len(sizes)-1] < 100_000
	switch {
	case !measured:
		g.Met, g.MeetsOrNotRun = "not run (needs two stored sizes)", true
	case st.Driver == "mongo" && st.RealMongo && flat:
		g.Met, g.MeetsOrNotRun = fmt.Sprintf("yes on MongoDB (within %sx)", num(historyFlat)), true
	case st.Driver == "mongo" && st.RealMongo:
		g.Met = fmt.Sprintf("**no** on MongoDB (more than %sx)", num(historyFlat))
	default:
		g.Met, g.MeetsOrNotRun = "embedded store: growth stated; MongoDB: not measured here (needs DSAR_BENCH_STORE=mongo with a real DSAR_TEST_MONGO_URI)", true
	}
	if measured && short {
		g.Met += "; 100,000 stored not run"
	}
	return g
}

// suppressionRate is the goal's bulk checks per second.
const suppressionRate = 200_000

func suppressionGoal(r *Run, st Store) Goal {
	g := Goal{Name: "suppression", Target: "bulk check of 10,000 identities: >= 200,000 identities/s",
		Command: command(r)}
	if why := r.Why(); why != "" {
		g.Measured, g.Met, g.MeetsOrNotRun = why, "not run", true
		return g
	}
	stores := []string{"sqlite", "mongo"}
	var parts []string
	for _, s := range stores {
		parts = append(parts, s+" "+r.Cell("store="+s, "checks/s"))
	}
	g.Measured = "identities checked per second: " + strings.Join(parts, ", ") + " (mongo: " + st.MongoName() + ")"
	missed, absent := perSize(r, "store", stores, func(sub string) (bool, bool) {
		v, ok := r.Metric(sub, "checks/s")
		return v >= suppressionRate, ok
	})
	g.Met, g.MeetsOrNotRun = verdict(missed, absent, len(stores), "stores")
	return g
}
