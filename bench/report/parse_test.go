package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       Result
		ok         bool
	}{
		{
			name: "sub-benchmark with custom metrics",
			line: "BenchmarkIntake/clients=1-2   \t      10\t 123 ns/op\t   391 filed/s\t  0.32 ratio",
			want: Result{Name: "BenchmarkIntake/clients=1", Procs: 2, N: 10, Metrics: map[string]float64{"ns/op": 123, "filed/s": 391, "ratio": 0.32}},
			ok:   true,
		},
		{
			name: "GOMAXPROCS 1: no suffix",
			line: "BenchmarkBurst \t 1\t 5.5e+10 ns/op\t 89.5 completed/s",
			want: Result{Name: "BenchmarkBurst", N: 1, Metrics: map[string]float64{"ns/op": 5.5e10, "completed/s": 89.5}},
			ok:   true,
		},
		{
			name: "benchmem and a unit with a dash",
			line: "BenchmarkExport/records=10000-16  1  9 ns/op  7 rss-over-idle-MiB  100 B/op  2 allocs/op",
			want: Result{Name: "BenchmarkExport/records=10000", Procs: 16, N: 1, Metrics: map[string]float64{"ns/op": 9, "rss-over-idle-MiB": 7, "B/op": 100, "allocs/op": 2}},
			ok:   true,
		},
		{
			name: "a name and iterations only",
			line: "BenchmarkX-4 5",
			want: Result{Name: "BenchmarkX", Procs: 4, N: 5, Metrics: map[string]float64{}},
			ok:   true,
		},
		{name: "the name alone, as -v prints it first", line: "BenchmarkIntake/clients=1"},
		{name: "a log line", line: "    latency_test.go:52: filled 1000 requests in 1s"},
		{name: "not a benchmark", line: "ok  \tgithub.com/dsar-project/dsar/bench\t12.3s"},
		{name: "iterations not a number", line: "BenchmarkX-2 many 1 ns/op"},
		{name: "a value not a number", line: "BenchmarkX-2 1 fast ns/op"},
		{name: "a value without its unit", line: "BenchmarkX-2 1 12 ns/op 5"},
		{name: "blank", line: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseLine(tt.line)
			if ok != tt.ok {
				t.Fatalf("parseLine(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			}
			if ok && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseLine(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
			}
		})
	}
}

// verbose is the output of `go test -bench -v` with results, logs, a skip
// and a failure, as go 1.26 prints it.
const verbose = `goos: linux
goarch: amd64
pkg: github.com/dsar-project/dsar/bench
cpu: AMD EPYC
BenchmarkA
BenchmarkA/n=1
    x_test.go:3: hello n=1
BenchmarkA/n=1-2         	       2	       115.5 ns/op	       391.5 filed/s	         0.3200 ratio
BenchmarkA/n=2
BenchmarkA/n=2-2         	       2	       105.5 ns/op	       391.5 filed/s	         0.3200 ratio
BenchmarkS
    pipeline_test.go:252: set DSAR_BENCH_BURST to the number of requests
--- SKIP: BenchmarkS
BenchmarkF
BenchmarkF/k=1
    x_test.go:5: first
    x_test.go:5: boom 1
--- FAIL: BenchmarkF/k=1
--- FAIL: BenchmarkF
FAIL
exit status 1
FAIL	bt	0.032s
`

func TestParseOutput(t *testing.T) {
	t.Parallel()
	out, err := parseOutput(strings.NewReader(verbose))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range out.Results {
		names = append(names, r.Name)
	}
	if want := []string{"BenchmarkA/n=1", "BenchmarkA/n=2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("results %v, want %v", names, want)
	}
	if want := map[string]string{"BenchmarkS": "set DSAR_BENCH_BURST to the number of requests"}; !reflect.DeepEqual(out.Skipped, want) {
		t.Errorf("skipped %v, want %v", out.Skipped, want)
	}
	if want := map[string]string{"BenchmarkF/k=1": "boom 1", "BenchmarkF": "boom 1"}; !reflect.DeepEqual(out.Failed, want) {
		t.Errorf("failed %v, want %v", out.Failed, want)
	}
}
