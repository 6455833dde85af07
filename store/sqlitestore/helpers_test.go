package sqlitestore

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

// openTest opens a store in a fresh file, reading the system clock.
func openTest(t *testing.T) *Store {
	t.Helper()
	return openWith(t, Options{})
}

// openWith opens a store with opts in a fresh file, closed when t ends.
func openWith(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fixture is a store in a fresh file with a clock the test moves, as
// mongostore's tests have it.
type fixture struct {
	store *Store
	clock *testenv.Clock
	index *dsr.BlindIndex
}

// newFixture opens a store through driver ("" for the plain one).
func newFixture(t *testing.T, driver string) fixture {
	t.Helper()
	clk := testenv.NewClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	s := openWith(t, Options{Now: clk.Now, driver: driver})
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{store: s, clock: clk, index: idx}
}

// value builds, without storing it, a request of typ under reg in status
// for email, received now.
func (f fixture) value(t *testing.T, reg dsr.Regulation, typ dsr.Type, status dsr.Status, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: reg, Source: "test", FiledBy: "tester", Status: status,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}},
		ReceivedAt: f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// file stores a request of typ under reg in status for email.
func (f fixture) file(t *testing.T, reg dsr.Regulation, typ dsr.Type, status dsr.Status, email string) *dsr.Request {
	t.Helper()
	r := f.value(t, reg, typ, status, email)
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// verified stores a verified GDPR request of typ for email.
func (f fixture) verified(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	return f.file(t, dsr.RegulationGDPR, typ, dsr.StatusVerified, email)
}

// verifying stores a GDPR access request for email waiting for its
// subject to confirm their identity: the state in which a clock may stop.
func (f fixture) verifying(t *testing.T, email string) *dsr.Request {
	t.Helper()
	return f.file(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerifying, email)
}

// move moves request id from -> to, failing the test when it cannot.
func (f fixture) move(t *testing.T, id string, from, to dsr.Status) *dsr.Request {
	t.Helper()
	r, err := f.store.Transition(context.Background(), id, from, to, dsr.Change{Actor: "t", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// inProgress stores a verified GDPR request of typ for email and moves it
// to in_progress, as a fan-out does before it creates the jobs.
func (f fixture) inProgress(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r := f.verified(t, typ, email)
	f.move(t, r.ID, dsr.StatusVerified, dsr.StatusInProgress)
	return r
}

// jobsFor creates a job of action for r at each connector.
func (f fixture) jobsFor(t *testing.T, r *dsr.Request, a dsr.Action, connectors ...string) []dsr.Job {
	t.Helper()
	var jobs []dsr.Job
	for _, c := range connectors {
		j := dsr.NewJob(r.ID, c, a, f.clock.Now())
		j.Identities = r.Identities
		jobs = append(jobs, j)
	}
	if err := f.store.CreateJobs(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
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

// counts reads the job counts stored with request id.
func (f fixture) counts(t *testing.T, id string) dsr.JobCounts {
	t.Helper()
	d, err := loadRequest(context.Background(), f.store.r, id)
	if err != nil {
		t.Fatal(err)
	}
	return dsr.JobCounts{Open: d.JobsOpen, Failed: d.JobsFailed}
}

// dueIDs collects, sorted, the ids a check's query hands to fn.
func dueIDs(t *testing.T, query func(fn func(*dsr.Due) error) error) []string {
	t.Helper()
	var out []string
	if err := query(func(d *dsr.Due) error {
		out = append(out, d.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
