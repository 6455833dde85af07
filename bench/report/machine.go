package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the benchmarks ran.
type Machine struct {
	// Date is the start of the run, UTC.
	Date string
	// CPU is the processor's model name and CPUs their number (Linux's
	// /proc/cpuinfo; "unknown" elsewhere).
	CPU  string
	CPUs int
	// Memory is the total memory (/proc/meminfo), "unknown" elsewhere.
	Memory string
	// Go is the go command's version, OSArch the platform.
	Go, OSArch string
	// Load is the load average at the start (/proc/loadavg: 1, 5 and 15
	// minutes).
	Load string
}

func machine(ctx context.Context, goCmd string) Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), CPU: "unknown", CPUs: runtime.NumCPU(),
		Memory: "unknown", Load: "unknown", OSArch: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU, m.CPUs = cpuInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.Memory = memTotal(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], ", ")
		}
	}
	if out, err := exec.CommandContext(ctx, goCmd, "env", "GOVERSION", "GOOS", "GOARCH").Output(); err == nil { //nolint:gosec // the go command
		if f := strings.Fields(string(out)); len(f) == 3 {
			m.Go, m.OSArch = f[0], f[1]+"/"+f[2]
		}
	}
	return m
}

// cpuInfo is the first model name of /proc/cpuinfo and the number of
// processors it lists.
func cpuInfo(s string) (string, int) {
	model, n := "unknown", 0
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(l, ":")
		switch k = strings.TrimSpace(k); {
		case !ok:
		case k == "processor":
			n++
		case k == "model name" && model == "unknown":
			model = strings.TrimSpace(v)
		}
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	return model, n
}

// memTotal is MemTotal of /proc/meminfo in GiB.
func memTotal(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					return fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	return "unknown"
}

// commit is the short commit of HEAD, with " + changes" when the tree
// differs from it (untracked files included; docs/benchmarks.md aside), or
// "unknown".
func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	// The report itself, left changed by an earlier run, changes no figure.
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", ".", ":!docs/benchmarks.md").Output(); err != nil || len(strings.TrimSpace(string(st))) > 0 {
		c += " + changes"
	}
	return c
}
