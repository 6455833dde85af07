// Command report runs dsar's benchmarks (./bench) and writes
// docs/benchmarks.md from them: `make bench` runs it.
//
// It runs one `go test -bench -v` per benchmark, each in a process of its
// own with the sizes of a profile (-size: quick, default or full; a size
// set in the environment wins), streams their output to stderr, parses
// their result lines, and renders benchmarks.md.tmpl (the prose, embedded)
// with the figures, a summary of issue 18's goals computed from them, the
// machine, the commit and the command of each figure.
//
// A benchmark that is not in ./bench, is skipped, or reports no figure
// renders as "not run" with the reason, never as a figure. When any go
// test fails (exits non-zero), the output file is left as it was: the
// report is written to a temporary file instead, its path printed, and the
// command exits 1, so that a failed run never replaces the figures. With
// -strict, a selected benchmark without figures counts as a failure too
// (for the runs whose figures are published).
//
//	go run ./bench/report [-size quick|default|full] [-only intake,history] [-strict] [-raw FILE] [-out docs/benchmarks.md]
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"text/template"
	"time"
)

//go:embed benchmarks.md.tmpl
var tmplText string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/report:", err)
		os.Exit(1)
	}
}

// Data is what the template renders.
type Data struct {
	// Size is the profile: quick, default or full.
	Size    string
	Machine Machine
	// Commit is the short commit, with " + changes" when the tree was dirty.
	Commit string
	// Store is the store the benchmarks ran on.
	Store Store
	// Took is the whole run's time.
	Took  string
	Goals []Goal
	// Runs are the groups' runs by key; Order their keys in the order run.
	Runs  map[string]*Run
	Order []string
	// Failed is set when a go test failed: the report is not the one of
	// docs/benchmarks.md.
	Failed bool
}

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	size := fs.String("size", envOr("BENCH", "default"), "sizes: quick (checks the generator, figures meaningless), default (about 15 min on 2 cores) or full (issue 18's sizes, hours); $BENCH")
	only := fs.String("only", "", "comma-separated groups to run (intake, fanout, export, history, pages, optouts, burst, suppression); the others render as not run")
	out := fs.String("out", "docs/benchmarks.md", "the report to write")
	goCmd := fs.String("go", envOr("GO", "go"), "the go command; $GO")
	raw := fs.String("raw", "", "also write every go test's output to this file (benchstat reads it)")
	strict := fs.Bool("strict", false, "treat a selected benchmark without figures (not in ./bench, skipped) as a failure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	groups, ok := profiles[*size]
	if !ok {
		return fmt.Errorf("-size %q: want quick, default or full", *size)
	}
	selected := map[string]bool{}
	for _, k := range strings.Split(*only, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if !slices.ContainsFunc(groups, func(g group) bool { return g.Key == k }) {
				return fmt.Errorf("-only %q: no such group", k)
			}
			selected[k] = true
		}
	}
	tmpl, err := template.New("benchmarks.md.tmpl").Parse(tmplText)
	if err != nil {
		return fmt.Errorf("parse the template: %w", err)
	}

	start := time.Now()
	d := Data{Size: *size, Machine: machine(ctx, *goCmd), Commit: commit(ctx), Runs: map[string]*Run{},
		Store: Store{Driver: envOr("DSAR_BENCH_STORE", "sqlite"), RealMongo: os.Getenv("DSAR_TEST_MONGO_URI") != ""}}
	fmt.Fprintln(log, "bench/report: building ./bench's tests to list its benchmarks")
	have, err := listBenchmarks(ctx, *goCmd)
	if err != nil {
		return err
	}
	timeout := timeouts[*size]
	var rawOut io.Writer = io.Discard
	if *raw != "" {
		f, err := os.Create(*raw)
		if err != nil {
			return err
		}
		defer f.Close()
		rawOut = f
	}
	for _, g := range groups {
		d.Order = append(d.Order, g.Key)
		env := g.env(os.Getenv)
		var r *Run
		switch {
		case ctx.Err() != nil:
			r = notRun(g, "interrupted")
		case len(selected) > 0 && !selected[g.Key]:
			r = notRun(g, "not selected (-only)")
		case !have[g.Bench]:
			r = notRun(g, g.Bench+" is not in ./bench")
		default:
			fmt.Fprintf(log, "bench/report: %s\n", g.command(env, d.Store.Driver, timeout))
			r = runGroup(ctx, *goCmd, g, env, d.Store.Driver, timeout, io.MultiWriter(log, rawOut))
		}
		r.Env, r.Command = env, g.command(env, d.Store.Driver, timeout)
		d.Runs[g.Key] = r
		d.Failed = d.Failed || r.Failed || (*strict && r.NotRun != "not selected (-only)" && r.Why() != "")
	}
	d.Took = time.Since(start).Round(time.Second).String()
	d.Goals = goals(d.Runs, d.Store)

	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	for _, k := range d.Order {
		if why := d.Runs[k].Why(); why != "" {
			fmt.Fprintf(log, "bench/report: %s: %s\n", k, why)
		}
	}
	if d.Failed || ctx.Err() != nil {
		f, err := os.CreateTemp("", "dsar-benchmarks-*.md")
		if err != nil {
			return err
		}
		_, werr := f.Write(buf.Bytes())
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
		return fmt.Errorf("a benchmark failed (or, with -strict, gave no figures) or the run was interrupted: %s is left as it was; this run's report is %s", *out, f.Name())
	}
	if err := writeFile(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(log, "bench/report: wrote %s (%s)\n", *out, d.Took)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// writeFile replaces path with data, through a temporary file beside it.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // a document of the repository
		return err
	}
	return os.Rename(tmp, path)
}

// listBenchmarks returns the benchmarks of ./bench.
func listBenchmarks(ctx context.Context, goCmd string) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, goCmd, "test", "-vet=off", "./bench", "-list", "^Benchmark").CombinedOutput() //nolint:gosec // the go command
	if err != nil {
		return nil, fmt.Errorf("list the benchmarks of ./bench: %w\n%s", err, out)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			have[strings.TrimSpace(l)] = true
		}
	}
	return have, nil
}

// runGroup runs the group's go test, its output streamed to log and
// parsed.
func runGroup(ctx context.Context, goCmd string, g group, env map[string]string, driver, timeout string, log io.Writer) *Run {
	r := &Run{Key: g.Key, Bench: g.Bench, Ran: true, Skipped: map[string]string{}}
	var buf bytes.Buffer
	// Not cancelled with ctx: an interrupt reaches go test and its test
	// binary from the terminal, and they stop on their own (the go
	// command leaves the signal to its child).
	cmd := exec.CommandContext(context.WithoutCancel(ctx), goCmd, g.args(driver, timeout)...) //nolint:gosec // the go command
	cmd.Env = environ(env)
	cmd.Stdout = io.MultiWriter(log, &buf)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	runErr := cmd.Run()
	r.Took = time.Since(start).Round(time.Second).String()
	text := buf.String()
	parsed, err := parseOutput(strings.NewReader(text))
	if err != nil {
		runErr = errors.Join(runErr, err)
	}
	for _, res := range parsed.Results {
		if res.Name == g.Bench || strings.HasPrefix(res.Name, g.Bench+"/") {
			r.Results = append(r.Results, res)
		}
	}
	for name, why := range parsed.Skipped {
		if sub, ok := subName(g.Bench, name); ok {
			r.Skipped[sub] = why
		}
	}
	if runErr != nil {
		r.Failed = true
		r.Reason = runErr.Error()
		if why, ok := parsed.Failed[g.Bench]; ok && why != "" {
			r.Reason = why
		} else if p := panicLine(text); p != "" {
			r.Reason += ": " + p
		} else if last := lastLine(text); last != "" {
			r.Reason += ": " + last
		}
	}
	return r
}

// subName is name relative to bench: "" for bench itself, "clients=8" for
// bench/clients=8.
func subName(bench, name string) (string, bool) {
	if name == bench {
		return "", true
	}
	return strings.CutPrefix(name, bench+"/")
}

// panicLine is the first "panic: " line of s (a test binary's timeout
// among them), "" if none.
func panicLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "panic: ") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// lastLine is the last line of s that says something (not FAIL or exit
// status).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && l != "FAIL" && !strings.HasPrefix(l, "FAIL\t") && !strings.HasPrefix(l, "exit status") {
			return l
		}
	}
	return ""
}
