package main

import (
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DSAR_BENCH_STORED": "5", "DSAR_BENCH_STORE": "mongo", "DSAR_TEST_MONGO_URI": "mongodb://user:secret@db"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name, key, size, driver string
		getenv                  func(string) string
		want                    string
	}{
		{"profile sizes", "history", "default", "sqlite", func(string) string { return "" },
			"DSAR_BENCH_STORED=1000,10000 DSAR_TEST_REQUIRE_REDIS=1 go test ./bench -run '^$' -bench '^BenchmarkLatency$' -benchtime 300x -timeout 60m -v"},
		{"the environment wins, the URI never shows", "history", "full", "mongo", getenv,
			"DSAR_BENCH_STORE=mongo DSAR_BENCH_STORED=5 DSAR_TEST_REQUIRE_REDIS=1 go test ./bench -run '^$' -bench '^BenchmarkLatency$' -benchtime 300x -timeout 4h -v"},
		{"suppression on the run's store", "suppression", "default", "mongo", func(string) string { return "" },
			"DSAR_TEST_REQUIRE_REDIS=1 go test ./bench -run '^$' -bench '^BenchmarkSuppressionCheck$/^store=mongo$' -benchtime 20x -timeout 60m -v"},
		{"suppression on both stores", "suppression", "full", "sqlite", func(string) string { return "" },
			"DSAR_TEST_REQUIRE_REDIS=1 go test ./bench -run '^$' -bench '^BenchmarkSuppressionCheck$' -benchtime 20x -timeout 4h -v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var g group
			for _, x := range profiles[tt.size] {
				if x.Key == tt.key {
					g = x
				}
			}
			if got := g.command(g.env(tt.getenv), tt.driver, timeouts[tt.size]); got != tt.want {
				t.Errorf("command\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestProfilesAlike(t *testing.T) {
	t.Parallel()
	// Every profile runs the same groups in the same order: the report
	// has the same sections whatever the sizes.
	var want []string
	for _, g := range profiles["default"] {
		want = append(want, g.Key+" "+g.Bench)
	}
	for size, groups := range profiles {
		var got []string
		for _, g := range groups {
			got = append(got, g.Key+" "+g.Bench)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("-size %s runs %v, want %v", size, got, want)
		}
		if timeouts[size] == "" {
			t.Errorf("-size %s has no timeout", size)
		}
	}
}
