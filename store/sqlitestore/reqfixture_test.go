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

// reqFixture is a store in a fresh file with a clock the test moves, as
// mongostore's tests have it.
type reqFixture struct {
	store *Store
	clock *testenv.Clock
	index *dsr.BlindIndex
}

// newReqFixture opens a store through driver ("" for the plain one).
func newReqFixture(t *testing.T, driver string) reqFixture {
	t.Helper()
	clk := testenv.NewClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), Options{Now: clk.Now, driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return reqFixture{store: s, clock: clk, index: idx}
}

// value builds, without storing it, a request of typ under reg in status
// for email, received now.
func (f reqFixture) value(t *testing.T, reg dsr.Regulation, typ dsr.Type, status dsr.Status, email string) *dsr.Request {
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
func (f reqFixture) file(t *testing.T, reg dsr.Regulation, typ dsr.Type, status dsr.Status, email string) *dsr.Request {
	t.Helper()
	r := f.value(t, reg, typ, status, email)
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// verified stores a verified GDPR request of typ for email.
func (f reqFixture) verified(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	return f.file(t, dsr.RegulationGDPR, typ, dsr.StatusVerified, email)
}

// verifying stores a GDPR access request for email waiting for its
// subject to confirm their identity: the state in which a clock may stop.
func (f reqFixture) verifying(t *testing.T, email string) *dsr.Request {
	t.Helper()
	return f.file(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerifying, email)
}

// move moves request id from -> to, failing the test when it cannot.
func (f reqFixture) move(t *testing.T, id string, from, to dsr.Status) *dsr.Request {
	t.Helper()
	r, err := f.store.Transition(context.Background(), id, from, to, dsr.Change{Actor: "t", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
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
