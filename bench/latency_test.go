package bench_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// latencySizes are the numbers of stored requests latency is measured at:
// DSAR_BENCH_STORED (comma-separated), 1,000 and 10,000 by default; the
// figures in docs/benchmarks.md add 100,000.
func latencySizes(b *testing.B) []int {
	v := os.Getenv("DSAR_BENCH_STORED")
	if v == "" {
		return []int{1000, 10_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("DSAR_BENCH_STORED: %q is not a count", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkLatency measures, one client at a time, the latency of intake
// (POST /v1/requests), of reading one request (GET /v1/requests/{id}, a
// random stored one) and of the first page of the list (GET
// /v1/requests?limit=50), with 1k, 10k (and 100k) requests stored. Each
// iteration is one of each. It reports their p50 and p99 in milliseconds;
// the goal is a flat curve, within 2x from the smallest store to the
// largest:
//
//	DSAR_BENCH_STORED=1000,10000,100000 go test ./bench -run '^$' -bench Latency -benchtime 300x
func BenchmarkLatency(b *testing.B) {
	for _, n := range latencySizes(b) {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			st := openStore(b)
			s := serve(b, st)
			start := time.Now()
			ids := fill(b, st, s.index, "stored", n)
			b.Logf("filled %d requests in %s", n, time.Since(start).Round(time.Millisecond))
			var intake, get, list []time.Duration
			i := 0
			for b.Loop() {
				t := time.Now()
				s.file(dsr.TypeAccess, dsr.RegulationGDPR, fmt.Sprintf("latency-%d@example.com", i))
				intake = append(intake, time.Since(t))

				id := ids[rand.IntN(len(ids))] //nolint:gosec // a benchmark's sample
				t = time.Now()
				if code, data, err := s.call("GET", "/v1/requests/"+id, ""); err != nil || code != http.StatusOK {
					b.Fatalf("get: %d %s %v", code, data, err)
				}
				get = append(get, time.Since(t))

				t = time.Now()
				code, data, err := s.call("GET", "/v1/requests?limit=50", "")
				list = append(list, time.Since(t))
				var page struct{ Items []json.RawMessage }
				if err != nil || code != http.StatusOK || json.Unmarshal(data, &page) != nil || len(page.Items) != 50 {
					b.Fatalf("list: %d %.200s %v", code, data, err)
				}
				i++
			}
			for _, m := range []struct {
				name string
				ds   []time.Duration
			}{{"intake", intake}, {"get", get}, {"list", list}} {
				b.ReportMetric(ms(percentile(m.ds, 50)), m.name+"-p50-ms")
				b.ReportMetric(ms(percentile(m.ds, 99)), m.name+"-p99-ms")
			}
		})
	}
}
