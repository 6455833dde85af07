package bench_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

// fanoutConnectors is how many no-op connectors BenchmarkFanout's requests
// fan out to.
const fanoutConnectors = 5

// noop is a connector that does nothing and succeeds for every action,
// reporting no record. It counts its calls by job, so that the benchmark
// can check every job ran exactly once.
type noop struct {
	name  string
	calls *jobCalls
}

func (c *noop) Name() string { return c.name }

func (c *noop) done(ctx context.Context) (connectors.Result, error) {
	j, ok := connectors.JobOf(ctx)
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("connector %s called outside a job", c.name))
	}
	c.calls.add(j)
	return connectors.Result{}, nil
}

func (c *noop) Export(ctx context.Context, _ connectors.Subject, _ connectors.RecordWriter) (connectors.Result, error) {
	return c.done(ctx)
}
func (c *noop) Erase(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.done(ctx)
}
func (c *noop) OptOut(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.done(ctx)
}
func (c *noop) OptIn(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.done(ctx)
}
func (c *noop) CorrectFields() []string { return []string{string(dsr.KindEmail), "name"} }
func (c *noop) Correct(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.done(ctx)
}

// The actions a no-op connector takes.
var (
	_ connectors.Exporter  = (*noop)(nil)
	_ connectors.Eraser    = (*noop)(nil)
	_ connectors.OptOuter  = (*noop)(nil)
	_ connectors.OptInner  = (*noop)(nil)
	_ connectors.Corrector = (*noop)(nil)
)

// jobCalls counts the connector calls of each job, by job id, with the
// request and connector each job is for.
type jobCalls struct {
	mu    sync.Mutex
	calls map[string]int
	refs  map[string]connectors.JobRef
}

func (c *jobCalls) add(j connectors.JobRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[j.ID]++
	c.refs[j.ID] = j
}

// check fails b unless every request of ids had one job on each connector
// of names, each called exactly once, and nothing else was called.
func (c *jobCalls) check(b testing.TB, ids []string, names []string) {
	b.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		for _, n := range names {
			want[id+"/"+n] = true
		}
	}
	got := map[string]int{}
	bad, total := 0, 0
	for job, n := range c.calls {
		total += n
		ref := c.refs[job]
		got[ref.RequestID+"/"+ref.Connector]++
		if n != 1 || !want[ref.RequestID+"/"+ref.Connector] {
			if bad < 5 {
				b.Errorf("job %s (request %s, connector %s) ran %d times", job, ref.RequestID, ref.Connector, n)
			}
			bad++
		}
	}
	for k := range want {
		if got[k] != 1 {
			if bad < 5 {
				b.Errorf("request/connector %s: %d jobs ran, want 1", k, got[k])
			}
			bad++
		}
	}
	if bad > 0 {
		b.Fatalf("%d jobs did not run exactly once, of %d wanted (%d connector calls on %d jobs)", bad, len(want), total, len(c.calls))
	}
}

// fanoutWrites counts, besides what counting does, the suppressions and
// consent events a deletion's fan-out writes before its jobs exist (not
// counted by counting, which BenchmarkOptOuts keeps as it is).
type fanoutWrites struct {
	*counting
}

func (c fanoutWrites) Suppress(ctx context.Context, entries []dsr.Suppression) (int, error) {
	c.add("Suppress", 1)
	return c.counting.Store.Suppress(ctx, entries)
}

func (c fanoutWrites) AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error {
	c.add("AddConsentEvents", 1)
	return c.counting.Store.AddConsentEvents(ctx, events)
}

func (c fanoutWrites) AddRemovals(ctx context.Context, removals []dsr.Removal) error {
	c.add("AddRemovals", 1)
	return c.counting.Store.AddRemovals(ctx, removals)
}

func (c fanoutWrites) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	c.add("HoldForHook", 1)
	return c.counting.Store.HoldForHook(ctx, id, until, ids, hashes)
}

// startFanout serves the API and runs the workers on a new store of
// driver(), its writes counted, with fanoutConnectors no-op connectors
// registered as dsar registers those of its connectors file (a registry
// the workers are given), and returns the connectors' names and calls.
func startFanout(b *testing.B) (*pipeline, []string, *jobCalls) {
	b.Helper()
	if !testenv.RedisServer(b).Real {
		b.Fatal("BenchmarkFanout measures real Redis: none answers at DSAR_TEST_REDIS_ADDR (default 127.0.0.1:6379)")
	}
	calls := &jobCalls{calls: map[string]int{}, refs: map[string]connectors.JobRef{}}
	reg := connectors.NewRegistry()
	var names []string
	for i := range fanoutConnectors {
		c := &noop{name: fmt.Sprintf("noop%d", i+1), calls: calls}
		if err := reg.Add(c); err != nil {
			b.Fatal(err)
		}
		names = append(names, c.name)
	}
	st := openStore(b)
	writes := &counting{Store: st.Store}
	p := startWorkers(b, &benchStore{Store: fanoutWrites{writes}, path: st.path, db: st.db}, writes, reg)
	return p, names, calls
}

// BenchmarkFanout files DSAR_BENCH_FANOUT deletions (2,000 by default)
// through the agent API from 8 clients, each verified by the filing agent
// and so fanned out at once to 5 no-op connectors, the workers
// (concurrency 10, in-process, on real Redis) running each job, and
// measures jobs completed per second: 5 x the requests over the time from
// the first filing to the last request completed. It checks every request
// completed and every job ran exactly once. In the same run it measures
// the two bounds of BenchmarkOptOuts: bare asynq (as many no-op tasks as
// jobs, enqueued from 8 clients, run by a server of the same concurrency on
// the same Redis, per second), and the store (Transition from 10
// goroutines, per second) divided by the store writes per job, counted over
// the whole run (filing, fan-out, jobs, notices). It reports each, the
// lower bound, and the ratio of jobs/s to it (the goal is at least 0.50):
//
//	go test ./bench -run '^$' -bench Fanout -benchtime 1x -timeout 30m -v
func BenchmarkFanout(b *testing.B) {
	n := envInt(b, "DSAR_BENCH_FANOUT", 2000)
	p, names, calls := startFanout(b)
	var elapsed time.Duration
	var ids []string
	rounds := 0
	for b.Loop() {
		round := make([]string, n)
		start := time.Now()
		parallel(8, n, func(i int) {
			id, err := p.post(dsr.TypeDeletion, dsr.RegulationGDPR, fmt.Sprintf("fanout%d-%d@example.com", rounds, i))
			if err != nil {
				b.Error(err)
			}
			round[i] = id
		})
		if b.Failed() {
			b.FailNow()
		}
		p.waitCompleted(int64((rounds+1)*n), 30*time.Minute)
		elapsed += time.Since(start)
		ids = append(ids, round...)
		rounds++
	}
	counts, err := p.store.CountRequests(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range counts {
		if c.Status != dsr.StatusCompleted {
			b.Errorf("%d requests %s, want every one completed", c.N, c.Status)
		}
	}
	calls.check(b, ids, names)
	jobs := len(ids) * len(names)
	b.Logf("store writes of %d requests, %d jobs: %s", len(ids), jobs, p.writes)
	rate := float64(jobs) / elapsed.Seconds()
	perJob := float64(p.writes.total()) / float64(jobs)
	tasks := asynqNoOps(b, p.service, jobs)
	writes := directWrites(b, p.service, 2*n)
	bound := min(tasks, writes/perJob)
	b.ReportMetric(rate, "jobs/s")
	b.ReportMetric(tasks, "asynq-noop/s")
	b.ReportMetric(writes, "store-writes/s")
	b.ReportMetric(perJob, "writes/job")
	b.ReportMetric(bound, "bound-jobs/s")
	b.ReportMetric(rate/bound, "ratio")
}

// failures is a testing.TB that records failures instead of failing.
type failures struct {
	testing.TB
	n int
}

func (f *failures) Helper()               { f.TB.Helper() }
func (f *failures) Errorf(string, ...any) { f.n++ }
func (f *failures) Fatalf(string, ...any) { f.n++ }

// TestJobCalls checks the check of BenchmarkFanout: it passes only when
// each request's job on each connector ran exactly once.
func TestJobCalls(t *testing.T) {
	run := func(jobs ...connectors.JobRef) int {
		c := &jobCalls{calls: map[string]int{}, refs: map[string]connectors.JobRef{}}
		for _, j := range jobs {
			c.add(j)
		}
		f := &failures{TB: t}
		c.check(f, []string{"r1", "r2"}, []string{"a", "b"})
		return f.n
	}
	j := func(id, req, conn string) connectors.JobRef {
		return connectors.JobRef{ID: id, RequestID: req, Connector: conn}
	}
	all := []connectors.JobRef{j("1", "r1", "a"), j("2", "r1", "b"), j("3", "r2", "a"), j("4", "r2", "b")}
	if n := run(all...); n != 0 {
		t.Errorf("every job once: %d failures, want none", n)
	}
	if run(all[:3]...) == 0 {
		t.Error("a job that never ran passed")
	}
	if run(append(all, all[1])...) == 0 {
		t.Error("a job that ran twice passed")
	}
	if run(append(all, j("5", "r1", "a"))...) == 0 {
		t.Error("two jobs for one request and connector passed")
	}
	if run(append(all, j("6", "r3", "a"))...) == 0 {
		t.Error("a job of a request not filed passed")
	}
}
