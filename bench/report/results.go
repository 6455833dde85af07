package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Run is what one group's go test gave.
type Run struct {
	Key, Bench string
	// Command reproduces the run.
	Command string
	// Env is the settings it ran with (sizes, store).
	Env map[string]string
	// Ran is false when the benchmark did not run at all; NotRun says why.
	Ran    bool
	NotRun string
	// Failed is set when go test failed (exited non-zero); Reason says why.
	Failed bool
	Reason string
	// Results are the results of the benchmark and its sub-benchmarks, in
	// order; Skipped maps a skipped sub-benchmark ("store=mongo") to why.
	Results []Result
	Skipped map[string]string
	// Took is how long go test ran, rounded.
	Took string
}

// notRun is a run of a benchmark that did not run, for why.
func notRun(g group, why string) *Run {
	return &Run{Key: g.Key, Bench: g.Bench, NotRun: why, Skipped: map[string]string{}}
}

// sub returns the result of the sub-benchmark sub ("clients=8"; "" for the
// benchmark itself).
func (r *Run) sub(sub string) (Result, bool) {
	if r == nil {
		return Result{}, false
	}
	name := r.Bench
	if sub != "" {
		name += "/" + sub
	}
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// Metric returns the value of unit in the result of sub.
func (r *Run) Metric(sub, unit string) (float64, bool) {
	res, ok := r.sub(sub)
	if !ok {
		return 0, false
	}
	v, ok := res.Metrics[unit]
	return v, ok
}

// Why says why the run has no figures: "" when it has some.
func (r *Run) Why() string {
	switch {
	case r == nil:
		return "not run"
	case r.Failed:
		return "not run: failed: " + r.Reason
	case !r.Ran:
		return "not run: " + r.NotRun
	case len(r.Results) == 0:
		if why, ok := r.Skipped[""]; ok {
			return "not run: skipped: " + why
		}
		return "not run: no result"
	}
	return ""
}

// Subs are the values of param in the names of the results: "1", "8",
// "64" for param "clients". A name without param has none.
func (r *Run) Subs(param string) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, res := range r.Results {
		if v, ok := paramOf(res.Name, param); ok {
			out = append(out, v)
		}
	}
	return out
}

// paramOf is the value of param=value in the last element of name.
func paramOf(name, param string) (string, bool) {
	last := name[strings.LastIndex(name, "/")+1:]
	return strings.CutPrefix(last, param+"=")
}

// Cell is the value of unit in sub, formatted, or "not run" (and why, when
// the whole run has no figures).
func (r *Run) Cell(sub, unit string) string {
	if v, ok := r.Metric(sub, unit); ok {
		return num(v)
	}
	if why, ok := r.Skipped[sub]; ok && r != nil {
		return "not run (skipped: " + why + ")"
	}
	return "not run"
}

// Table renders the run as a Markdown table: one row per value of param
// among its results (one row for the benchmark itself when param is ""),
// the first column that value, then one column per unit. Columns are
// "unit" or "unit|header". A run without figures renders as a line saying
// why.
func (r *Run) Table(param string, cols ...string) string {
	if why := r.Why(); why != "" {
		return "*" + strings.ToUpper(why[:1]) + why[1:] + ".*\n"
	}
	var b strings.Builder
	subs := []string{""}
	if param != "" {
		subs = nil
		for _, v := range r.Subs(param) {
			subs = append(subs, v)
		}
		for sub := range r.Skipped {
			if v, ok := paramOf(r.Bench+"/"+sub, param); ok && !contains(subs, v) {
				subs = append(subs, v)
			}
		}
		b.WriteString("| " + param + " ")
	}
	for _, c := range cols {
		unit, header, _ := strings.Cut(c, "|")
		if header == "" {
			header = unit
		}
		b.WriteString("| " + header + " ")
	}
	b.WriteString("|\n")
	if param != "" {
		b.WriteString("|---:")
	}
	b.WriteString(strings.Repeat("|---:", len(cols)) + "|\n")
	for _, v := range subs {
		sub := ""
		if param != "" {
			sub = param + "=" + v
			b.WriteString("| " + numString(v) + " ")
		}
		for _, c := range cols {
			unit, _, _ := strings.Cut(c, "|")
			b.WriteString("| " + r.Cell(sub, unit) + " ")
		}
		b.WriteString("|\n")
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// num formats a figure for a reader: thousands separated, three
// significant digits or more below 1,000.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case a >= 100 || v == math.Trunc(v):
		return thousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1 || a == 0:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

// numString formats s as num does when it is a number.
func numString(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return thousands(s)
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return num(v)
	}
	return s
}

// thousands puts commas between the thousands of an integer's digits.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ints parses the comma-separated counts of a size setting, sorted.
func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}
