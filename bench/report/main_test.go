package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeGo writes a go command that prints output and exits with code,
// whatever its arguments.
func fakeGo(t *testing.T, output string, code int) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake go command is a shell script")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte(output), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "go")
	body := "#!/bin/sh\ncat '" + filepath.Join(dir, "out.txt") + "'\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil { //nolint:gosec // a test's script
		t.Fatal(err)
	}
	return script
}

// TestRunGroup runs its cases one at a time: writing a script while
// another test forks makes exec fail with "text file busy".
func TestRunGroup(t *testing.T) {
	const timedOut = "BenchmarkT\nBenchmarkA/n=1-2 1 1 ns/op\npanic: test timed out after 1m0s\n\trunning tests:\n\t\tBenchmarkT (1m0s)\n\ngoroutine 1 [running]:\nmain.main()\nFAIL\tbt\t60.1s\n"
	tests := []struct {
		name, out, bench string
		code             int
		failed           bool
		why              string
		results          int
	}{
		{"results", verbose, "BenchmarkA", 0, false, "", 2},
		{"skipped", verbose, "BenchmarkS", 0, false, "not run: skipped: set DSAR_BENCH_BURST to the number of requests", 0},
		{"failed", verbose, "BenchmarkF", 1, true, "not run: failed: boom 1", 0},
		{"failed without a line of its own", verbose, "BenchmarkA", 1, true, "not run: failed: exit status 1: --- FAIL: BenchmarkF", 2},
		{"timed out", timedOut, "BenchmarkT", 2, true, "not run: failed: exit status 2: panic: test timed out after 1m0s", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			r := runGroup(t.Context(), fakeGo(t, tt.out, tt.code), group{Key: "k", Bench: tt.bench, Benchtime: "1x"}, nil, "sqlite", "1m", &log)
			if r.Failed != tt.failed || r.Why() != tt.why || len(r.Results) != tt.results {
				t.Errorf("failed %v, why %q, %d results; want %v, %q, %d", r.Failed, r.Why(), len(r.Results), tt.failed, tt.why, tt.results)
			}
			if !strings.Contains(log.String(), "BenchmarkA/n=1-2") {
				t.Errorf("go test's output was not streamed to the log:\n%s", log.String())
			}
		})
	}
}
