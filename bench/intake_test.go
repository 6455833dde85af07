package bench_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/store"
)

// BenchmarkIntake measures POST /v1/requests against the store-driver
// calls one intake makes, issued directly on the same store in the same
// run: what the service adds to the store's own cost.
//
// For 1, 8 and 64 client goroutines, each on a new store holding 1,000
// requests, it runs three kinds of rounds, alternating (the order turns
// each round) so that the machine's noise falls on each alike, until each
// kind has run DSAR_BENCH_SECONDS seconds (default 15; fractions allowed),
// in rounds of a fifth of that:
//
//   - intake: POST /v1/requests with the agent key and an email subject (a
//     verified request: stored, its fan-out and its receipt enqueued on
//     the real Redis queue, no workers), in-process HTTP, a new email each;
//   - direct: each goroutine does straight on the store what one intake
//     asks of it: it builds the request as the agent API does
//     (app.BaseIntake, the agent API's fields, dsr.NewRequest), looks up
//     open duplicates of its proven identity (OpenDuplicates) and stores
//     it (CreateRequest). The run checks that these are exactly the store
//     calls an intake makes (every method counted, reads too: see
//     counting) and that both store the same request;
//   - raw: one SQL INSERT of a copy of a filed request's row per
//     transaction (InsertOne on MongoDB; see newInserter): what the
//     database alone does with one row, informative only.
//
// It reports, under these units (stable: the benchmark report parses
// them):
//
//	filed/s        intakes per second
//	direct/s       direct sequences (OpenDuplicates + CreateRequest) per second
//	ratio          filed/s over direct/s (the goal: at least 0.70)
//	p50-ms         median intake latency, at the client, in milliseconds
//	p99-ms         99th percentile intake latency, in milliseconds
//	writes/intake  store writes per intake (counting.total)
//	raw-inserts/s  raw inserts per second
//
// The measurement is time-based and made once, in the first iteration,
// whatever -benchtime says (ns/op is meaningless here); run it with
// -benchtime 1x:
//
//	go test ./bench -run '^$' -bench Intake -benchtime 1x
func BenchmarkIntake(b *testing.B) {
	total := benchSeconds(b)
	const rounds = 5
	per := total / rounds
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx := context.Background()
			st := openStore(b)
			calls := &counting{Store: st.Store}
			s := serve(b, &benchStore{Store: calls, path: st.path, db: st.db})
			fill(b, st, s.index, "history", 1000)
			d := &directIntake{store: st.Store, index: s.index, by: "desk"}
			queued := s.queued()
			checkDirect(b, s, calls, d)
			s.settle()
			tasks := s.queued() - queued // what one intake enqueues
			if tasks < 2 {
				b.Fatalf("one intake enqueued %d tasks; want its fan-out and its receipt", tasks)
			}
			raw := newInserter(b, st, s.file(dsr.TypeAccess, dsr.RegulationGDPR, "template@example.com"))
			s.settle()
			queued = s.queued()

			var seq atomic.Int64 // numbers the emails of both kinds
			email := func(kind string) string {
				return fmt.Sprintf("%s-%d-%d@example.com", kind, clients, seq.Add(1))
			}
			var filed, direct, inserted timed
			before := calls.calls()
			measured := false
			for b.Loop() {
				if measured {
					continue // time-based: measured once, whatever -benchtime says
				}
				measured = true
				kinds := []func(){
					func() {
						filed.run(b, clients, per, true, s.settle, func() error {
							_, err := s.post(dsr.TypeAccess, dsr.RegulationGDPR, email("intake"))
							return err
						})
					},
					func() {
						direct.run(b, clients, per, false, nil, func() error {
							_, err := d.file(ctx, dsr.TypeAccess, dsr.RegulationGDPR, email("direct"))
							return err
						})
					},
					func() {
						inserted.run(b, clients, per, false, nil, func() error { return raw.insert(ctx) })
					},
				}
				for r := range rounds {
					for k := range kinds {
						kinds[(k+r)%len(kinds)]()
					}
				}
			}
			if got, want := s.queued()-queued, tasks*filed.n; got != want {
				b.Errorf("%d intakes enqueued %d tasks; want %d (%d each)", filed.n, got, want, tasks)
			}
			made := callsSince(before, calls.calls())
			if want := scaled(directCalls, filed.n); !maps.Equal(made, want) {
				b.Errorf("%d intakes made the store calls %s; the direct sequence makes %s", filed.n, callList(made), callList(want))
			}
			b.ReportMetric(filed.rate(), "filed/s")
			b.ReportMetric(direct.rate(), "direct/s")
			b.ReportMetric(filed.rate()/direct.rate(), "ratio")
			b.ReportMetric(ms(percentile(filed.lats, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(filed.lats, 99)), "p99-ms")
			writes := 0
			for m, n := range made {
				if writeMethods[m] {
					writes += n
				}
			}
			b.ReportMetric(float64(writes)/float64(filed.n), "writes/intake")
			b.ReportMetric(inserted.rate(), "raw-inserts/s")
		})
	}
}

// benchSeconds is DSAR_BENCH_SECONDS (default 15) as a duration.
func benchSeconds(b *testing.B) time.Duration {
	v := os.Getenv("DSAR_BENCH_SECONDS")
	if v == "" {
		return 15 * time.Second
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || s <= 0 {
		b.Fatalf("DSAR_BENCH_SECONDS=%q: want a number of seconds above 0", v)
	}
	return time.Duration(s * float64(time.Second))
}

// directCalls are the store calls one direct sequence makes, by method.
var directCalls = map[string]int{"OpenDuplicates": 1, "CreateRequest": 1}

// scaled is calls, each made n times.
func scaled(calls map[string]int, n int) map[string]int {
	out := map[string]int{}
	for m, c := range calls {
		out[m] = c * n
	}
	return out
}

// directIntake makes, straight on a store, the store calls of one intake
// through the agent API (app.Service.Create without an idempotency key):
// the duplicate lookup, then the request stored.
type directIntake struct {
	store store.Store
	index *dsr.BlindIndex
	by    string
}

// file files a request of typ for email as an agent filing it with no
// channel, note, date or identity proof does (verified, attested by the
// filing agent, its receipt pending), and returns it as stored.
func (d *directIntake) file(ctx context.Context, typ dsr.Type, regulation dsr.Regulation, email string) (*dsr.Request, error) {
	in, err := app.BaseIntake(string(typ), string(regulation), app.Subject{Email: &email})
	if err != nil {
		return nil, err
	}
	// What the agent API sets on top of BaseIntake for such a body.
	in.Source, in.FiledBy, in.Channel, in.ReceivedAt = links.SourceAgentAPI, d.by, "api", time.Now()
	in.Status, in.VerificationMethod = dsr.StatusVerified, "attested by the filing agent"
	in.Notify, in.Notices = true, []string{dsr.NoticeReceipt}
	hashes := d.index.LookupAll(dsr.Given(in.Identities))
	since := in.ReceivedAt.Add(-duplicateWindow)
	cands, err := d.store.OpenDuplicates(ctx, hashes, []dsr.Type{in.Type}, since)
	if err != nil {
		return nil, fmt.Errorf("open duplicates: %w", err)
	}
	if dup := dsr.PickDuplicate(cands, hashes, in.Type, since); dup != nil {
		in.DuplicateOf = dup.ID
	}
	r, err := dsr.NewRequest(in, d.index)
	if err != nil {
		return nil, err
	}
	if err := d.store.CreateRequest(ctx, r); err != nil {
		return nil, fmt.Errorf("create request: %w", err)
	}
	return r, nil
}

// checkDirect fails b unless one intake through s makes exactly the store
// calls of one direct sequence (directCalls), and the two store the same
// request but for what is its own (id, times, email, hashes).
func checkDirect(b *testing.B, s *service, calls *counting, d *directIntake) {
	b.Helper()
	ctx := context.Background()
	before := calls.calls()
	id := s.file(dsr.TypeAccess, dsr.RegulationGDPR, "check-intake@example.com")
	if made := callsSince(before, calls.calls()); !maps.Equal(made, directCalls) {
		b.Fatalf("one intake made the store calls %s; the direct sequence makes %s", callList(made), callList(directCalls))
	}
	r, err := d.file(ctx, dsr.TypeAccess, dsr.RegulationGDPR, "check-direct@example.com")
	if err != nil {
		b.Fatal(err)
	}
	filed, err := d.store.Request(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	direct, err := d.store.Request(ctx, r.ID)
	if err != nil {
		b.Fatal(err)
	}
	if f, g := ownless(filed), ownless(direct); !reflect.DeepEqual(f, g) {
		b.Fatalf("the direct sequence stores another request than the intake:\nintake %+v\ndirect %+v", f, g)
	}
}

// ownless is r without what is its own: its id, its times, its identities'
// values and hashes (their number is kept).
func ownless(r *dsr.Request) dsr.Request {
	c := *r
	c.ID, c.ReceivedAt, c.DueAt, c.UpdatedAt, c.ReceiptDueAt = "", time.Time{}, time.Time{}, time.Time{}, nil
	c.Identities = nil
	for _, id := range r.Identities {
		id.Value = ""
		c.Identities = append(c.Identities, id)
	}
	c.History = nil
	for _, t := range r.History {
		t.At = time.Time{}
		c.History = append(c.History, t)
	}
	c.IdentityHashes, c.ProvenHashes = make([]string, len(r.IdentityHashes)), make([]string, len(r.ProvenHashes))
	return c
}

// timed is what rounds of one kind did: the calls made, the time they
// took, each call's latency where kept.
type timed struct {
	n    int
	took time.Duration
	lats []time.Duration
}

// rate is calls per second.
func (t *timed) rate() float64 { return float64(t.n) / t.took.Seconds() }

// run calls op from n goroutines, each again as soon as its last call
// returned, until d has passed, then settle (when not nil: what the calls
// left running), and adds to t the calls made and the time from the start
// until settle returned, with each call's latency when lat is set. The
// first error stops it and fails b.
func (t *timed) run(b *testing.B, n int, d time.Duration, lat bool, settle func(), op func() error) {
	var (
		mu    sync.Mutex
		out   timed
		first error
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			var lats []time.Duration
			calls := 0
			for !stop.Load() && time.Since(start) < d {
				t0 := time.Now()
				if err := op(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					stop.Store(true)
					break
				}
				calls++
				if lat {
					lats = append(lats, time.Since(t0))
				}
			}
			mu.Lock()
			out.n += calls
			out.lats = append(out.lats, lats...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if settle != nil {
		settle()
	}
	if first != nil {
		b.Fatal(first)
	}
	t.n += out.n
	t.took += time.Since(start)
	t.lats = append(t.lats, out.lats...)
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
