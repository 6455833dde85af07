package bench_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// BenchmarkIntake files requests through POST /v1/requests (agent API,
// in-process HTTP, real Redis queue, no workers) from exactly 1, 8 and 64
// client goroutines and, in the same run, inserts as many copies of a filed
// request's row straight into the same store from as many goroutines. Each
// iteration is one round of 256 of each. It reports the requests per second
// of each, their ratio (intake/insert; the goal is at least 0.70), and the
// store writes (transactions) one intake made:
//
//	go test ./bench -run '^$' -bench Intake -benchtime 10x
func BenchmarkIntake(b *testing.B) {
	const round = 256
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx := context.Background()
			st := openStore(b)
			writes := &counting{Store: st.Store}
			s := serve(b, &benchStore{Store: writes, path: st.path, db: st.db})
			fill(b, st, s.index, "history", 1000)
			direct := newInserter(b, st, s.file(dsr.TypeAccess, dsr.RegulationGDPR, "template@example.com"))
			var filing, inserting time.Duration
			rounds := 0
			before := writes.total()
			for b.Loop() {
				filing += parallel(clients, round, func(i int) {
					if _, err := s.post(dsr.TypeAccess, dsr.RegulationGDPR, fmt.Sprintf("r%d-%d@example.com", rounds, i)); err != nil {
						b.Error(err)
					}
				})
				inserting += parallel(clients, round, func(int) {
					if err := direct.insert(ctx); err != nil {
						b.Errorf("direct insert: %v", err)
					}
				})
				rounds++
			}
			n := float64(rounds * round)
			b.ReportMetric(n/filing.Seconds(), "filed/s")
			b.ReportMetric(n/inserting.Seconds(), "inserted/s")
			b.ReportMetric(inserting.Seconds()/filing.Seconds(), "ratio")
			b.ReportMetric(float64(writes.total()-before)/n, "writes/intake")
		})
	}
}

// parallel calls fn(0) to fn(total-1) from n goroutines, each taking the
// next i when done with its last, and returns the time it took.
func parallel(n, total int, fn func(i int)) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
