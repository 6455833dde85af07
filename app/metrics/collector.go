// Package metrics collects dsar's Prometheus metrics of the requests and
// jobs in the store, for whatever surface serves them.
package metrics

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsar-project/dsar/dsr"
)

// Store is what the collector reads: today's *mongostore.Store.
type Store interface {
	CountRequests(ctx context.Context) ([]dsr.RequestCount, error)
	CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error)
	CountWaitingJobs(ctx context.Context) ([]dsr.JobCount, error)
	EachCompletion(ctx context.Context, from time.Time, fn func(*dsr.Completion) error) error
	EachJobOutcome(ctx context.Context, from time.Time, fn func(*dsr.JobOutcome) error) error
}

// The metrics of requests and jobs are read from the store when Prometheus
// scrapes, not counted as events happen: the workers, which run the jobs,
// serve no HTTP, and every dsar process reads the same store, so each
// /metrics shows the same, global figures (aggregate several API processes
// with max, not sum). [StatsCollector] reads the store at most once per
// StatsOptions.Every, whatever the number of scrapes, and never on an API
// call.
//
//   - dsar_requests, dsar_requests_overdue and dsar_jobs_waiting are gauges
//     counted afresh at each read: three $group aggregates.
//   - dsar_request_time_to_complete_seconds (the days-to-complete
//     histogram, in seconds, Prometheus's base unit) and dsar_job_* are
//     cumulative: the first read takes every completed request and every
//     job outcome in the store, each later one only those that became
//     visible since (with an overlap, StatsOptions.Overlap, for writes that
//     land late or clocks a little apart, deduplicated). They start from
//     the store's whole history, so they do not drop to zero when a process
//     restarts; a job that failed, was retried by an agent and then
//     succeeded counts once for each outcome in a process that saw both,
//     and only for the last after a restart.
//
// They hold counts, durations, enums and connector names: never a person's
// data.

// Metric descriptions of [StatsCollector].
var (
	requestsDesc = prometheus.NewDesc("dsar_requests",
		"Requests in the store, by status, type and regulation.",
		[]string{"status", "type", "regulation"}, nil)
	overdueDesc = prometheus.NewDesc("dsar_requests_overdue",
		"Requests still to be answered (open or duplicate) and past their due date, by type and regulation.",
		[]string{"type", "regulation"}, nil)
	waitingDesc = prometheus.NewDesc("dsar_jobs_waiting",
		"Connector jobs waiting on a system that finishes later (an asynchronous API), by connector and action.",
		[]string{"connector", "action"}, nil)
	daysDesc = prometheus.NewDesc("dsar_request_time_to_complete_seconds",
		"Time from receipt to completion of the completed requests (buckets of 1 to 90 days), by type and regulation.",
		[]string{"type", "regulation"}, nil)
	jobsDesc = prometheus.NewDesc("dsar_jobs_finished_total",
		"Connector jobs that reached an outcome (succeeded, failed past their retries, skipped), by connector and action.",
		[]string{"connector", "action", "outcome"}, nil)
	jobSecondsDesc = prometheus.NewDesc("dsar_job_duration_seconds",
		"Seconds from a connector job's creation to its outcome, retries and queueing included, by connector and action.",
		[]string{"connector", "action"}, nil)
	statsUpDesc = prometheus.NewDesc("dsar_stats_up",
		"1 when the last read of the store for the dsar_request* and dsar_job* metrics succeeded, else 0 (they then show the last figures read).",
		nil, nil)
	statsReadDesc = prometheus.NewDesc("dsar_stats_read_timestamp_seconds",
		"When the dsar_request* and dsar_job* metrics were last read from the store successfully (Unix time).",
		nil, nil)
)

// CompletionBuckets are the bounds of dsar_request_time_to_complete_seconds,
// in seconds (Prometheus's base unit): 1, 2, 5, 10, 15, 20, 30, 45, 60 and 90
// days, around the legal deadlines (LGPD 15 days, PIPEDA 30, GDPR a month,
// CCPA 45, extended 90).
var CompletionBuckets = func() []float64 {
	var out []float64
	for _, d := range []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90} {
		out = append(out, d*24*3600)
	}
	return out
}()

// JobSecondsBuckets are the bounds of dsar_job_duration_seconds, from a
// second to a week.
var JobSecondsBuckets = []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600}

// StatsOptions tunes a [StatsCollector]. Zero values take the defaults.
type StatsOptions struct {
	// Every is how long figures read from the store are reused: scrapes
	// within it read nothing. Default 30s.
	Every time.Duration
	// Timeout bounds one read of the store. Default 10s.
	Timeout time.Duration
	// Overlap is how late a completion or a job outcome may become visible
	// (its write landing after the time it records, or clocks apart) and
	// still be counted. Default 10m.
	Overlap time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the errors of reads; nil discards them.
	Log *slog.Logger
}

// StatsCollector is a prometheus.Collector of the requests and jobs in the
// store (see the dsar_* metrics above).
type StatsCollector struct {
	store Store
	opts  StatsOptions

	mu       sync.Mutex
	read     time.Time // when the store was last read, successfully or not
	readOK   time.Time // when it was last read successfully
	up       bool
	requests []dsr.RequestCount
	overdue  []dsr.RequestCount
	waiting  []dsr.JobCount
	days     tally[reqKey]
	jobs     tally[jobKey]
	outcomes map[outcomeKey]uint64
	// Where the next reads of completions and of job outcomes start.
	doneRead, jobsRead cursor
}

// cursor is where the next read of a stream of outcomes (read oldest
// first, from a time) starts, and which outcomes of the overlap it has
// counted already, so that each counts once.
type cursor struct {
	from time.Time // zero: from the beginning
	last time.Time // the last outcome of the read under way
	seen map[string]time.Time
}

// fresh reports whether outcome id, of time at, is not counted yet, and
// records it.
func (c *cursor) fresh(id string, at time.Time) bool {
	c.last = at
	if _, seen := c.seen[id]; seen {
		return false
	}
	c.seen[id] = at
	return true
}

// end ends a read: one that failed (err) resumes next time from the last
// outcome it counted; one that succeeded at now resumes from overlap
// before now, and what is older is forgotten.
func (c *cursor) end(err error, now time.Time, overlap time.Duration) {
	if err != nil {
		if c.last.After(c.from) {
			c.from = c.last
		}
	} else {
		c.from = now.Add(-overlap)
		forget(c.seen, c.from)
	}
	c.last = time.Time{}
}

type reqKey struct {
	typ dsr.Type
	reg dsr.Regulation
}

type jobKey struct {
	connector string
	action    dsr.Action
}

type outcomeKey struct {
	jobKey
	status dsr.JobStatus
}

// NewStatsCollector returns a collector of store's statistics.
func NewStatsCollector(store Store, opts StatsOptions) *StatsCollector {
	if opts.Every <= 0 {
		opts.Every = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Overlap <= 0 {
		opts.Overlap = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &StatsCollector{
		store: store, opts: opts,
		days: tally[reqKey]{bounds: CompletionBuckets}, jobs: tally[jobKey]{bounds: JobSecondsBuckets},
		outcomes: map[outcomeKey]uint64{}, doneRead: cursor{seen: map[string]time.Time{}}, jobsRead: cursor{seen: map[string]time.Time{}},
	}
}

// Describe sends the descriptions of every metric of the collector.
func (c *StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, overdueDesc, waitingDesc, daysDesc, jobsDesc, jobSecondsDesc, statsUpDesc, statsReadDesc} {
		ch <- d
	}
}

// Collect reads the store when the last read is older than Every, then
// sends the figures. Concurrent scrapes wait for one read.
func (c *StatsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now().UTC()
	if c.read.IsZero() || now.Sub(c.read) >= c.opts.Every {
		c.refresh(now)
	}

	counts := map[[3]string]int64{}
	for _, s := range dsr.Statuses { // every known series, zero when empty
		for _, t := range dsr.Types {
			for _, r := range dsr.Regulations {
				counts[[3]string{string(s), string(t), string(r)}] = 0
			}
		}
	}
	for _, rc := range c.requests {
		counts[[3]string{string(rc.Status), string(rc.Type), string(rc.Regulation)}] += rc.N
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(n), k[0], k[1], k[2])
	}
	overdue := map[reqKey]int64{}
	for _, t := range dsr.Types {
		for _, r := range dsr.Regulations {
			overdue[reqKey{t, r}] = 0
		}
	}
	for _, rc := range c.overdue {
		overdue[reqKey{rc.Type, rc.Regulation}] += rc.N
	}
	for k, n := range overdue {
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(n), string(k.typ), string(k.reg))
	}
	for _, jc := range c.waiting {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(jc.N), jc.Connector, string(jc.Action))
	}
	for k, h := range c.days.series {
		ch <- prometheus.MustNewConstHistogram(daysDesc, h.count, h.sum, c.days.buckets(h), string(k.typ), string(k.reg))
	}
	for k, h := range c.jobs.series {
		ch <- prometheus.MustNewConstHistogram(jobSecondsDesc, h.count, h.sum, c.jobs.buckets(h), k.connector, string(k.action))
	}
	for k, n := range c.outcomes {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.CounterValue, float64(n), k.connector, string(k.action), string(k.status))
	}
	up := 0.0
	if c.up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(statsUpDesc, prometheus.GaugeValue, up)
	if !c.readOK.IsZero() {
		ch <- prometheus.MustNewConstMetric(statsReadDesc, prometheus.GaugeValue, float64(c.readOK.UnixMilli())/1000)
	}
}

// refresh reads the store. What fails keeps its last figures; the
// cumulative ones resume where they stopped.
func (c *StatsCollector) refresh(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	c.read = now
	var errs []string
	fail := func(what string, err error) {
		c.opts.Log.Warn("metrics: reading the store failed; the last figures stay", "what", what, "error", err)
		errs = append(errs, what)
	}
	if rc, err := c.store.CountRequests(ctx); err != nil {
		fail("requests", err)
	} else {
		c.requests = rc
	}
	if rc, err := c.store.CountOverdue(ctx, now); err != nil {
		fail("overdue", err)
	} else {
		c.overdue = rc
	}
	if jc, err := c.store.CountWaitingJobs(ctx); err != nil {
		fail("waiting jobs", err)
	} else {
		c.waiting = jc
	}

	// The first read takes the store's whole history, which may outlast
	// Timeout: a read cut short resumes, next time, from the last outcome
	// it counted (they come oldest first).
	err := c.store.EachCompletion(ctx, c.doneRead.from, func(d *dsr.Completion) error {
		if c.doneRead.fresh(d.ID, d.ClosedAt) {
			c.days.observe(reqKey{d.Type, d.Regulation}, d.ClosedAt.Sub(d.ReceivedAt).Seconds())
		}
		return nil
	})
	if err != nil {
		fail("completions", err)
	}
	c.doneRead.end(err, now, c.opts.Overlap)

	err = c.store.EachJobOutcome(ctx, c.jobsRead.from, func(j *dsr.JobOutcome) error {
		// A job finishes again after a retry: each outcome counts once.
		if c.jobsRead.fresh(j.ID+"@"+j.FinishedAt.Format(time.RFC3339Nano), j.FinishedAt) {
			k := jobKey{j.Connector, j.Action}
			c.outcomes[outcomeKey{k, j.Status}]++
			c.jobs.observe(k, j.FinishedAt.Sub(j.CreatedAt).Seconds())
		}
		return nil
	})
	if err != nil {
		fail("jobs", err)
	}
	c.jobsRead.end(err, now, c.opts.Overlap)
	c.up = len(errs) == 0
	if c.up {
		c.readOK = now
	} else {
		c.opts.Log.Warn("metrics: the store could not be read", "failed", strings.Join(errs, ","))
	}
}

// forget drops the seen entries older than from: the next read starts at
// from, so it cannot return them again.
func forget(seen map[string]time.Time, from time.Time) {
	for id, at := range seen {
		if at.Before(from) {
			delete(seen, id)
		}
	}
}

// tally is a set of cumulative histograms, one per key.
type tally[K comparable] struct {
	bounds []float64
	series map[K]*histogram
}

type histogram struct {
	count  uint64
	sum    float64
	counts []uint64 // per bound: observations at most that bound
}

func (t *tally[K]) observe(k K, v float64) {
	if t.series == nil {
		t.series = map[K]*histogram{}
	}
	h := t.series[k]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(t.bounds))}
		t.series[k] = h
	}
	h.count++
	h.sum += v
	for i, b := range t.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
}

func (t *tally[K]) buckets(h *histogram) map[float64]uint64 {
	out := make(map[float64]uint64, len(t.bounds))
	for i, b := range t.bounds {
		out[b] = h.counts[i]
	}
	return out
}
