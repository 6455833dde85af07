package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// A group is one `go test -bench` run of one benchmark of ./bench, with
// the sizes of a profile.
type group struct {
	// Key names the group in the template and for -only: "intake".
	Key string
	// Bench is the benchmark's function name: "BenchmarkIntake".
	Bench string
	// Sub, when set, selects sub-benchmarks: the second element of the
	// -bench pattern, with {store} replaced by the store driver
	// (DSAR_BENCH_STORE, sqlite by default).
	Sub string
	// Benchtime is go test's -benchtime.
	Benchtime string
	// Env holds the sizes, set unless the environment sets them already.
	Env map[string]string
}

// profiles are the sizes of -size: quick (a check of the generator, a
// few minutes: its figures say nothing), default (make bench: about 15
// minutes on 2 cores) and full (make bench-full: the sizes of issue 18,
// hours). Only full checks suppressions on both stores: filling the
// embedded FerretDB with the list of 100,000 takes long, and the check
// reads a set held in memory whatever the store.
var profiles = map[string][]group{
	"quick": {
		{Key: "intake", Bench: "BenchmarkIntake", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_SECONDS": "1"}},
		{Key: "fanout", Bench: "BenchmarkFanout", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_FANOUT": "50"}},
		{Key: "export", Bench: "BenchmarkExport", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_EXPORT": "1000,5000"}},
		{Key: "history", Bench: "BenchmarkLatency", Benchtime: "20x", Env: map[string]string{"DSAR_BENCH_STORED": "200,1000"}},
		{Key: "pages", Bench: "BenchmarkPages", Benchtime: "5x", Env: map[string]string{"DSAR_BENCH_STORED": "200,1000"}},
		{Key: "optouts", Bench: "BenchmarkOptOuts", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_OPTOUTS": "50"}},
		{Key: "burst", Bench: "BenchmarkBurst", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_BURST": "100"}},
		{Key: "suppression", Bench: "BenchmarkSuppressionCheck", Sub: "^store={store}$", Benchtime: "2x"},
	},
	"default": {
		{Key: "intake", Bench: "BenchmarkIntake", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_SECONDS": "5"}},
		{Key: "fanout", Bench: "BenchmarkFanout", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_FANOUT": "2000"}},
		{Key: "export", Bench: "BenchmarkExport", Benchtime: "3x", Env: map[string]string{"DSAR_BENCH_EXPORT": "10000,100000"}},
		{Key: "history", Bench: "BenchmarkLatency", Benchtime: "300x", Env: map[string]string{"DSAR_BENCH_STORED": "1000,10000"}},
		{Key: "pages", Bench: "BenchmarkPages", Benchtime: "10x", Env: map[string]string{"DSAR_BENCH_STORED": "1000,10000"}},
		{Key: "optouts", Bench: "BenchmarkOptOuts", Benchtime: "2x", Env: map[string]string{"DSAR_BENCH_OPTOUTS": "500"}},
		{Key: "burst", Bench: "BenchmarkBurst", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_BURST": "1000"}},
		{Key: "suppression", Bench: "BenchmarkSuppressionCheck", Sub: "^store={store}$", Benchtime: "20x"},
	},
	"full": {
		{Key: "intake", Bench: "BenchmarkIntake", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_SECONDS": "15"}},
		{Key: "fanout", Bench: "BenchmarkFanout", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_FANOUT": "2000"}},
		{Key: "export", Bench: "BenchmarkExport", Benchtime: "3x", Env: map[string]string{"DSAR_BENCH_EXPORT": "10000,100000,1000000"}},
		{Key: "history", Bench: "BenchmarkLatency", Benchtime: "300x", Env: map[string]string{"DSAR_BENCH_STORED": "1000,10000,100000"}},
		{Key: "pages", Bench: "BenchmarkPages", Benchtime: "10x", Env: map[string]string{"DSAR_BENCH_STORED": "1000,10000,100000"}},
		{Key: "optouts", Bench: "BenchmarkOptOuts", Benchtime: "10x", Env: map[string]string{"DSAR_BENCH_OPTOUTS": "500"}},
		{Key: "burst", Bench: "BenchmarkBurst", Benchtime: "1x", Env: map[string]string{"DSAR_BENCH_BURST": "10000"}},
		{Key: "suppression", Bench: "BenchmarkSuppressionCheck", Benchtime: "20x"},
	},
}

// timeouts are go test's -timeout of one group, by profile.
var timeouts = map[string]string{"quick": "20m", "default": "60m", "full": "4h"}

// passedOn are the settings of the environment a group's command shows
// when set: they choose the store and the servers.
var passedOn = []string{"DSAR_BENCH_STORE", "DSAR_TEST_REDIS_ADDR"}

// env returns the group's settings as the run sees them: the profile's
// sizes unless the environment sets them, DSAR_TEST_REQUIRE_REDIS=1 (a
// benchmark on an in-process Redis fails instead of measuring it), and
// the store's settings of the environment.
func (g group) env(getenv func(string) string) map[string]string {
	out := map[string]string{}
	for k, v := range g.Env {
		if e := getenv(k); e != "" {
			v = e
		}
		out[k] = v
	}
	out["DSAR_TEST_REQUIRE_REDIS"] = "1"
	for _, k := range passedOn {
		if v := getenv(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// args are the arguments of the group's go test, on the store driver.
func (g group) args(driver, timeout string) []string {
	pattern := "^" + g.Bench + "$"
	if g.Sub != "" {
		pattern += "/" + strings.ReplaceAll(g.Sub, "{store}", driver)
	}
	return []string{"test", "./bench", "-run", "^$", "-bench", pattern, "-benchtime", g.Benchtime, "-timeout", timeout, "-v"}
}

// command is the shell command that runs the group as the generator did,
// to reproduce its figures; DSAR_TEST_MONGO_URI, which may hold a
// password, is never shown.
func (g group) command(env map[string]string, driver, timeout string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "%s=%s ", k, shellQuote(env[k]))
	}
	b.WriteString("go")
	for _, a := range g.args(driver, timeout) {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// environ is os.Environ with env set over it.
func environ(env map[string]string) []string {
	out := os.Environ()
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
