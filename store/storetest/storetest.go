// Package storetest is the conformance suite of package store: the cases
// every driver of [store.Store] passes, in river's manner (one driver
// suite, several drivers). A driver's tests call [Run] with a [Harness]
// that opens a fresh store of that driver:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{Open: func(t *testing.T, now func() time.Time) store.Store {
//			...
//		}})
//	}
//
// The cases use the store only through [store.Store], so what they check
// holds of every driver: the same results, the same order, the same errors
// (dsr.ErrNotFound, dsr.ErrConflict...). What only one driver can check
// (the commands MongoDB is sent, the indexes SQLite uses) stays in that
// driver's own tests.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// Harness opens the stores of one driver for the suite.
type Harness struct {
	// Open returns a fresh, empty store for one test, prepared (Prepare
	// called) and reading the time from now, the clock the test controls.
	// It registers with t.Cleanup whatever closes and removes the store.
	Open func(t *testing.T, now func() time.Time) store.Store
	// AuditsInTransaction says that the driver writes the audit events of
	// a change in the change's own transaction (SQLite), so no request is
	// ever left with its audit chain behind; without it (MongoDB) a
	// request whose chain could not be caught up at once is left
	// audit_due for the sweep.
	AuditsInTransaction bool
	// Sealed says that the store seals personal fields under data keys
	// that a purge destroys (store/sealedstore): the identities a driver
	// keeps after a purge (an unfinished job's) then read as none.
	Sealed bool
}

// start is where every case's clock starts.
var start = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// cases are the suite's cases, each run on a store of its own.
var cases = []struct {
	name string
	run  func(t *testing.T, f fixture)
}{
	// Requests.
	{"CreateAndRead", testCreateAndRead},
	{"RequestNotFound", testRequestNotFound},
	{"RoundTripEveryField", testRoundTripEveryField},
	{"TransitionIsConditional", testTransitionIsConditional},
	{"ConcurrentTransitions", testConcurrentTransitions},
	{"ListRequests", testListRequests},
	{"ListRequestsPaging", testListRequestsPaging},
	{"OverdueWithDueBefore", testOverdueWithDueBefore},
	{"StaleWork", testStaleWork},
	{"CreateRequests", testCreateRequests},
	{"CreateRequestsConflictInBatch", testCreateRequestsConflictInBatch},
	{"CreateRequestsLeavesLongerHistoriesDue", testCreateRequestsLeavesLongerHistoriesDue},

	// Jobs and exports.
	{"JobLifecycle", testJobLifecycle},
	{"ConcurrentClaims", testConcurrentClaims},
	{"JobCounts", testJobCounts},
	{"JobCountsLost", testJobCountsLost},
	{"PurgeIdentitiesCoversJobs", testPurgeIdentitiesCoversJobs},
	{"Corrections", testCorrections},
	{"SettleCorrectsDriftedCounts", testSettleCorrectsDriftedCounts},
	{"AnswerJob", testAnswerJob},
	{"AnswerJobRetried", testAnswerJobRetried},
	{"ConcurrentAnswers", testConcurrentAnswers},
	{"FailuresSinceWait", testFailuresSinceWait},
	{"PurgeIdentitiesCoversAnswers", testPurgeIdentitiesCoversAnswers},
	{"ExportRecords", testExportRecords},
	{"ExportRecordsAreJSON", testExportRecordsAreJSON},
	{"WrappedKeys", testWrappedKeys},
	{"SwapHashes", testSwapHashes},
	{"DRPStatusOwed", testDRPStatusOwed},

	// The pre- and post-processing hooks.
	{"HookHold", testHookHold},
	{"OutcomeHook", testOutcomeHook},

	// Deadlines, pauses, appeals, retention.
	{"CheckQueries", testCheckQueries},
	{"RemindAndEscalateOnce", testRemindAndEscalateOnce},
	{"RetentionPurges", testRetentionPurges},
	{"PauseAndResume", testPauseAndResume},
	{"Appeal", testAppeal},
	{"UndecidedAppealReleasesItsClaim", testUndecidedAppealReleasesItsClaim},
	{"ExtendPastDueIsRefused", testExtendPastDueIsRefused},
	{"PausedRequestsDoNotExpire", testPausedRequestsDoNotExpire},

	// Statistics.
	{"Summary", testSummary},
	{"Counts", testCounts},
	{"JobOutcomes", testJobOutcomes},

	// The audit chain.
	{"AuditChain", testAuditChain},
	{"EachAuditChain", testEachAuditChain},
	{"AppendAuditRefuses", testAppendAuditRefuses},
	{"ConcurrentAppends", testConcurrentAppends},

	// The suppression list, the consent history, the removals.
	{"Suppress", testSuppress},
	{"SuppressMany", testSuppressMany},
	{"ConcurrentSuppress", testConcurrentSuppress},
	{"LiftSuppressions", testLiftSuppressions},
	{"SuppressionsOfHashes", testSuppressionsOfHashes},
	{"SuppressionChanges", testSuppressionChanges},
	{"ConsentHistory", testConsentHistory},
	{"Removals", testRemovals},
}

// Run runs every case of the suite as a parallel subtest of t, each on a
// fresh store h opens.
func Run(t *testing.T, h Harness) {
	t.Helper()
	index, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{t: start}
			s := h.Open(t, clk.Now)
			c.run(t, fixture{store: s, clock: clk, index: index, auditsInTx: h.AuditsInTransaction, sealed: h.Sealed})
		})
	}
}

// fixture is what a case works with: its store, the store's clock, and the
// blind index its requests are filed under.
type fixture struct {
	store      store.Store
	clock      *clock
	index      *dsr.BlindIndex
	auditsInTx bool // Harness.AuditsInTransaction
	sealed     bool // Harness.Sealed
}

// clock is a settable clock, so cases drive time (leases, grace periods,
// deadlines) without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now reads the clock.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newRequest stores a verified GDPR request of typ for email.
func (f fixture) newRequest(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r := f.requestValue(t, typ, email)
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// requestValue builds, without storing it, a verified GDPR request.
func (f fixture) requestValue(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}},
		ReceivedAt: f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// inProgress stores a verified GDPR request of typ for email and moves it
// to in_progress, as a fan-out does before it creates the jobs.
func (f fixture) inProgress(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r := f.newRequest(t, typ, email)
	if _, err := f.store.Transition(context.Background(), r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// runJob claims job id, finishes it with status st, and returns the job as
// claimed.
func (f fixture) runJob(t *testing.T, id string, st dsr.JobStatus) *dsr.Job {
	t.Helper()
	ctx := context.Background()
	j, err := f.store.ClaimJob(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishJob(ctx, j, dsr.Outcome{Status: st}); err != nil {
		t.Fatal(err)
	}
	return j
}
