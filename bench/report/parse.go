package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is one benchmark result line of `go test -bench`.
type Result struct {
	// Name is the benchmark's full name without the GOMAXPROCS suffix:
	// "BenchmarkIntake/clients=8".
	Name string
	// Procs is the GOMAXPROCS suffix of the name, 0 when there was none.
	Procs int
	// N is the number of iterations.
	N int64
	// Metrics holds the value of each unit ("ns/op", "filed/s", "ratio").
	Metrics map[string]float64
}

// procsSuffix is the "-2" go test appends to a benchmark's name when
// GOMAXPROCS is not 1.
var procsSuffix = regexp.MustCompile(`-([0-9]+)$`)

// parseLine parses one result line: the benchmark's name, its iterations,
// then value and unit pairs, separated by blanks. It reports false for any
// other line (a name alone, a log line, PASS, a line with a value that is
// not a number).
func parseLine(line string) (Result, bool) {
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields)%2 != 0 || !strings.HasPrefix(fields[0], "Benchmark") {
		return Result{}, false
	}
	n, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil || n < 0 {
		return Result{}, false
	}
	r := Result{Name: fields[0], N: n, Metrics: make(map[string]float64, (len(fields)-2)/2)}
	if m := procsSuffix.FindStringSubmatchIndex(r.Name); m != nil {
		r.Procs, _ = strconv.Atoi(r.Name[m[2]:m[3]])
		r.Name = r.Name[:m[0]]
	}
	for i := 2; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return Result{}, false
		}
		r.Metrics[fields[i+1]] = v
	}
	return r, true
}

// Output is what one `go test -bench -v` run printed, parsed.
type Output struct {
	// Results are the result lines, in order.
	Results []Result
	// Skipped and Failed map a benchmark's name to the last line it logged
	// before its "--- SKIP" or "--- FAIL" (its reason, as a rule).
	Skipped map[string]string
	Failed  map[string]string
}

// parseOutput reads the verbose output of `go test -bench`: result lines,
// and the lines a benchmark logged (indented, after its name) before a
// "--- SKIP: name" or "--- FAIL: name".
func parseOutput(r io.Reader) (Output, error) {
	out := Output{Skipped: map[string]string{}, Failed: map[string]string{}}
	lastLog := map[string]string{}
	current, lastFailed := "", ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case strings.HasPrefix(line, "Benchmark"):
			if res, ok := parseLine(line); ok {
				out.Results = append(out.Results, res)
			} else if f := strings.Fields(line); len(f) == 1 {
				current = f[0] // a benchmark starts; its logs follow
			}
		case strings.HasPrefix(trimmed, "--- SKIP: "), strings.HasPrefix(trimmed, "--- FAIL: "):
			name := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(trimmed, "--- SKIP: "), "--- FAIL: "))[0]
			reason := lastLog[name]
			if strings.HasPrefix(trimmed, "--- SKIP: ") {
				out.Skipped[name] = reason
				break
			}
			if reason == "" && strings.HasPrefix(lastFailed, name+"/") {
				reason = out.Failed[lastFailed] // a parent fails with its child: the child's reason
			}
			out.Failed[name] = reason
			lastFailed = name
		case current != "" && (strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")):
			lastLog[current] = logText(trimmed)
		}
	}
	return out, sc.Err()
}

// logText is a log line without its "file_test.go:12: " prefix.
func logText(s string) string {
	if i := strings.Index(s, ": "); i > 0 && strings.Contains(s[:i], ".go:") {
		return s[i+2:]
	}
	return s
}
