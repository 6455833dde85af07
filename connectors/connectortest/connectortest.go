// Package connectortest is the conformance suite every connector must pass:
// it seeds a subject's data next to another person's, then exports, erases,
// opts out and resolves, checking what each action reports, what it changes,
// and that the other person's data is never disclosed or touched. It also
// holds every type to what the worker relies on: the same action run twice
// at once ends in one state (Concurrent); work the system finishes later is
// answered with Pending and polled to its end (every action goes through the
// worker's calls, connectors.Run and connectors.Poll; Async); and failures
// say what they are: transient, connectors.Permanent, or
// connectors.RetryAfter (Faults, with Harness.Fault).
//
// A connector package runs it from a test with a [Harness] that knows how to
// seed and inspect the system behind the connector:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, connectortest.Harness{New: newFixture})
//	}
//
// Two more helpers serve the SaaS types' own tests: [Redirect], a server in
// front of a fake vendor that answers its writes 302, and [Worker], the
// workers' processor on the test store and Redis, to run a request's jobs
// end to end. The package is for tests only: it imports the workers.
package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// Harness lets the suite seed and inspect the system behind a connector.
type Harness struct {
	// New builds a fresh connector against an empty, isolated target and
	// returns it with the Fixture that seeds and inspects that target. The
	// suite calls it once per subtest, possibly in parallel; anything New
	// opens must be released through t.Cleanup.
	New func(t *testing.T) (connectors.Connector, *Fixture)
	// Fault, when set, builds a connector whose system answers every call
	// with fault f, or returns nil when the type cannot show that fault
	// (a database has no rate limit); that case is then skipped. Anything
	// it opens must be released through t.Cleanup.
	Fault func(t *testing.T, f Fault) connectors.Connector
}

// Fault is a way a system fails, which a connector must report so that the
// worker does the right thing.
type Fault int

// The faults.
const (
	// Unreachable: the system does not answer. The action returns a
	// transient error (neither permanent nor RetryAfter) by the caller's
	// deadline: the worker retries it with back-off.
	Unreachable Fault = iota + 1
	// Rejected: the system refuses the connector's credentials. The action
	// returns a connectors.Permanent error: retrying cannot help.
	Rejected
	// RateLimited: the system says "not now, come back later". The action
	// returns a connectors.RetryAfter error.
	RateLimited
)

func (f Fault) String() string {
	switch f {
	case Unreachable:
		return "Unreachable"
	case Rejected:
		return "Rejected"
	case RateLimited:
		return "RateLimited"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Fixture seeds and inspects the target of one connector built by
// [Harness.New]. Its functions run on the goroutine of the test given to New
// and may fail that test instead of returning an error.
//
// The fixture knows two people: the subject, whom the suite acts for, and
// another person whose data no action may touch or disclose. They must share
// at least one array or segment when the target has such a thing.
type Fixture struct {
	// Subject is the subject as a request names them at intake.
	Subject connectors.Subject
	// Resolved lists the identities Resolve must find from Subject, and
	// nothing else (Source is not compared). The suite adds them to Subject
	// for every other action, as the service does after resolution.
	Resolved []connectors.Identity
	// OtherValues are identifiers and personal values of the other person;
	// none may appear in anything exported for the subject.
	OtherValues []string

	// Seed writes the subject's and the other person's data.
	Seed func(ctx context.Context)
	// SubjectRecords counts the records that still hold the subject's
	// personal data (records masked or pulled no longer count).
	SubjectRecords func(ctx context.Context) int
	// OtherRecords counts the other person's records that are still exactly
	// as seeded, their memberships of shared segments included.
	OtherRecords func(ctx context.Context) int
	// InSegment reports whether the subject is still in any segment or list.
	// Nil when the target has none.
	InSegment func(ctx context.Context) bool
	// OptedOut reports whether the subject's opt-out flag is set. Nil when
	// the target has none.
	OptedOut func(ctx context.Context) bool

	// Export, Erase and OptOut give, per collection, the records each action
	// must report on freshly seeded data. Collections reported with 0
	// records are ignored.
	Export, Erase, OptOut map[string]int64

	// Advance, for a system that finishes work later (the connector is a
	// connectors.Poller), lets the work it accepted progress before the
	// next poll (a fake's clock). Nil: polls alone make progress.
	Advance func(ctx context.Context)
}

// Run runs the conformance suite against the connectors h builds. Actions a
// connector does not support (see [connectors.Supports]) are skipped.
func Run(t *testing.T, h Harness) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"Export", testExport},
		{"Erase", testErase},
		{"OptOut", testOptOut},
		{"Resolve", testResolve},
		{"Stranger", testStranger},
		{"Concurrent", testConcurrent},
		{"Async", testAsync},
		{"Faults", testFaults},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, h)
		})
	}
}

// maxPolls bounds the polls the suite makes for one action.
const maxPolls = 20

// do performs action a as the worker does (see run) and checks every
// Pending answer: the connector is a Poller, the handle is 1 to 512 bytes
// and holds none of the subject's identities.
func do(t *testing.T, c connectors.Connector, f *Fixture, a connectors.Action, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	t.Helper()
	return run(t.Context(), c, f, a, s, out, func(p *connectors.Pending) {
		t.Helper()
		h := p.Handle
		if _, ok := c.(connectors.Poller); !ok {
			t.Fatalf("%s answered Pending but the connector is no connectors.Poller", a)
		}
		if h == "" || len(h) > 512 {
			t.Fatalf("%s answered Pending with a handle of %d bytes; want 1 to 512", a, len(h))
		}
		if containsAny(h, values(s)) {
			t.Fatalf("%s answered Pending with a handle that holds the subject's identity: %q", a, h)
		}
		if p.PollAfter < 0 {
			t.Errorf("%s answered Pending with PollAfter %v", a, p.PollAfter)
		}
	})
}

// run performs action a as the worker does: connectors.Run, then, while the
// system answers Pending, connectors.Poll with its handle, letting the
// fixture's system advance (Fixture.Advance) before each poll. It calls
// check, when not nil, with each Pending answer, and fails once maxPolls
// polls are still answered Pending. It reports problems as errors, so
// another goroutine may call it with a nil check.
func run(ctx context.Context, c connectors.Connector, f *Fixture, a connectors.Action, s connectors.Subject, out connectors.RecordWriter, check func(*connectors.Pending)) (connectors.Result, error) {
	res, err := connectors.Run(ctx, c, a, s, out)
	for polls := 0; err == nil && res.Pending != nil; polls++ {
		if check != nil {
			check(res.Pending)
		}
		if polls == maxPolls {
			return res, fmt.Errorf("%s still Pending after %d polls", a, maxPolls)
		}
		if f != nil && f.Advance != nil {
			f.Advance(ctx)
		}
		res, err = connectors.Poll(ctx, c, a, res.Pending.Handle, out)
	}
	return res, err
}

// mustDo does a for s (see do), ends the test if it fails, and checks its
// result against want (see checkResult); what names the call in messages.
func mustDo(t *testing.T, c connectors.Connector, f *Fixture, a connectors.Action, s connectors.Subject, out connectors.RecordWriter, what string, want map[string]int64) connectors.Result {
	t.Helper()
	res, err := do(t, c, f, a, s, out)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	checkResult(t, what, res, want)
	return res
}

// setup builds a connector, seeds its target and checks the seeded state the
// other tests start from.
func setup(t *testing.T, h Harness) (connectors.Connector, *Fixture, connectors.Subject, int) {
	t.Helper()
	c, f := h.New(t)
	if c == nil || f == nil {
		t.Fatal("Harness.New returned a nil connector or fixture")
	}
	ctx := t.Context()
	f.Seed(ctx)
	if n := f.SubjectRecords(ctx); n == 0 {
		t.Fatal("after Seed, SubjectRecords = 0; want the subject's records")
	}
	other := f.OtherRecords(ctx)
	if other == 0 {
		t.Fatal("after Seed, OtherRecords = 0; want the other person's records")
	}
	if f.InSegment != nil && !f.InSegment(ctx) {
		t.Fatal("after Seed, InSegment = false; want the subject in a segment")
	}
	if f.OptedOut != nil && f.OptedOut(ctx) {
		t.Fatal("after Seed, OptedOut = true; want the subject not opted out")
	}
	full := connectors.Subject{Identities: append(append([]connectors.Identity(nil), f.Subject.Identities...), f.Resolved...)}
	return c, f, full, other
}

// skipUnless skips the test when c cannot perform a.
func skipUnless(t *testing.T, c connectors.Connector, a connectors.Action) {
	t.Helper()
	if !connectors.Supports(c, a) {
		t.Skipf("connector %s does not support %s", c.Name(), a)
	}
}

func testExport(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionExport)
	ctx := t.Context()
	before := f.SubjectRecords(ctx)

	w := &recorder{}
	res := mustDo(t, c, f, connectors.ActionExport, s, w, "Export", f.Export)
	if diff := cmp.Diff(counts(res), w.perCollection()); diff != "" {
		t.Errorf("Export: records reported differ from records written (-reported +written):\n%s", diff)
	}

	subjectValues := values(s)
	for i, r := range w.records {
		for _, v := range f.OtherValues {
			if strings.Contains(r.json, v) {
				t.Errorf("exported record %d (%s) discloses the other person's %q:\n%s", i, r.collection, v, r.json)
			}
		}
		if !containsAny(r.json, subjectValues) {
			t.Errorf("exported record %d (%s) names none of the subject's identities:\n%s", i, r.collection, r.json)
		}
	}

	if got := f.SubjectRecords(ctx); got != before {
		t.Errorf("after Export, SubjectRecords = %d; want %d (export must change nothing)", got, before)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Export, OtherRecords = %d; want %d (export must change nothing)", got, other)
	}
}

func testErase(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionErase)
	ctx := t.Context()

	res := mustDo(t, c, f, connectors.ActionErase, s, nil, "Erase", f.Erase)
	if res.Records == 0 {
		t.Error("Erase reported 0 records on seeded data")
	}
	if got := f.SubjectRecords(ctx); got != 0 {
		t.Errorf("after Erase, SubjectRecords = %d; want 0", got)
	}
	if f.InSegment != nil && f.InSegment(ctx) {
		t.Error("after Erase, the subject is still in a segment")
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Erase, OtherRecords = %d; want %d (the other person's data must be intact)", got, other)
	}

	mustDo(t, c, f, connectors.ActionErase, s, nil, "second Erase", nil)
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after second Erase, OtherRecords = %d; want %d", got, other)
	}

	if connectors.Supports(c, connectors.ActionExport) {
		w := &recorder{}
		if _, err := do(t, c, f, connectors.ActionExport, s, w); err != nil {
			t.Fatalf("Export after Erase: %v", err)
		}
		for i, r := range w.records {
			for _, v := range values(s) {
				if strings.Contains(r.json, v) && !isResolved(f, v) {
					t.Errorf("after Erase, exported record %d (%s) still holds the subject's %q:\n%s", i, r.collection, v, r.json)
				}
			}
		}
	}
}

func testOptOut(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionOptOut)
	ctx := t.Context()

	res := mustDo(t, c, f, connectors.ActionOptOut, s, nil, "OptOut", f.OptOut)
	if res.Records == 0 {
		t.Error("OptOut reported 0 records on seeded data")
	}
	if f.InSegment != nil && f.InSegment(ctx) {
		t.Error("after OptOut, the subject is still in a segment")
	}
	if f.OptedOut != nil && !f.OptedOut(ctx) {
		t.Error("after OptOut, the subject's opt-out flag is not set")
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after OptOut, OtherRecords = %d; want %d (the other person's data must be intact)", got, other)
	}

	mustDo(t, c, f, connectors.ActionOptOut, s, nil, "second OptOut", nil)
	if f.OptedOut != nil && !f.OptedOut(ctx) {
		t.Error("after second OptOut, the subject's opt-out flag is not set")
	}
}

func testResolve(t *testing.T, h Harness) {
	c, f, _, other := setup(t, h)
	r, ok := c.(connectors.Resolver)
	if !ok {
		t.Skipf("connector %s does not resolve identities", c.Name())
	}
	ctx := t.Context()
	got, err := r.Resolve(ctx, f.Subject)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	for _, id := range got {
		if !strings.HasPrefix(id.Source, c.Name()+"/") {
			t.Errorf("Resolve: identity %s has Source %q; want %q", id.Kind, id.Source, c.Name()+"/COLLECTION")
		}
	}
	if diff := cmp.Diff(identitySet(f.Resolved), identitySet(got)); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Resolve, OtherRecords = %d; want %d", got, other)
	}
}

// testStranger acts for someone the target has never heard of, known by
// every identity kind (a connector that cannot match on one reports its
// collections not_searched, or ignores it): every action reports 0 records
// and changes nothing.
func testStranger(t *testing.T, h Harness) {
	c, f, _, other := setup(t, h)
	ctx := t.Context()
	stranger := connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: "nobody@example.com"},
		{Kind: "customer_id", Value: "0"},
		{Kind: "advertising_id", Value: "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
		{Kind: "device_id", Value: "e5f60718293041a2"},
	}}
	subject := f.SubjectRecords(ctx)

	if r, ok := c.(connectors.Resolver); ok {
		ids, err := r.Resolve(ctx, stranger)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if len(ids) != 0 {
			t.Errorf("Resolve for a stranger = %v; want none", ids)
		}
	}
	for _, a := range connectors.Actions() {
		if !connectors.Supports(c, a) {
			continue
		}
		w := recorderFor(a)
		mustDo(t, c, f, a, stranger, w.writer(), fmt.Sprintf("%s for a stranger", a), nil)
		if w != nil && len(w.records) != 0 {
			t.Errorf("%s for a stranger wrote %d records; want 0", a, len(w.records))
		}
	}
	// Known by device ids alone, the stranger is searched for only where
	// a collection matches on them: every other collection the result
	// names, by kinds it cannot know, is not_searched.
	devices := connectors.Subject{Identities: stranger.Identities[2:]}
	for _, a := range connectors.Actions() {
		if !connectors.Supports(c, a) {
			continue
		}
		w := recorderFor(a)
		res := mustDo(t, c, f, a, devices, w.writer(), fmt.Sprintf("%s for a stranger known by device ids", a), nil)
		for _, col := range res.Collections {
			if col.MatchKinds != nil && !slices.Contains(col.MatchKinds, "advertising_id") && !slices.Contains(col.MatchKinds, "device_id") &&
				col.Outcome != connectors.OutcomeNotSearched {
				t.Errorf("%s for a stranger known by device ids: %s matched by %v is %q; want %s", a, col.Name, col.MatchKinds, col.Outcome, connectors.OutcomeNotSearched)
			}
		}
	}
	if got := f.SubjectRecords(ctx); got != subject {
		t.Errorf("SubjectRecords = %d; want %d (acting for a stranger must change nothing)", got, subject)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("OtherRecords = %d; want %d (acting for a stranger must change nothing)", got, other)
	}
}

// testConcurrent runs each action twice at once, as a retry overlapping a
// slow first attempt does: both runs succeed and end in the state of one
// run, the other person's data intact; a third run then finds nothing left
// to do. Two exports at once write the same records.
func testConcurrent(t *testing.T, h Harness) {
	for _, a := range connectors.Actions() {
		t.Run(string(a), func(t *testing.T) {
			t.Parallel()
			c, f, s, other := setup(t, h)
			skipUnless(t, c, a)
			ctx := t.Context()
			var (
				wg   sync.WaitGroup
				res  [2]connectors.Result
				errs [2]error
				recs [2]*recorder
			)
			for i := range 2 {
				recs[i] = recorderFor(a)
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i], errs[i] = run(ctx, c, f, a, s, recs[i].writer(), nil)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s run %d of 2 at once: %v", a, i+1, err)
				}
			}
			if got := f.OtherRecords(ctx); got != other {
				t.Errorf("after two %s runs at once, OtherRecords = %d; want %d", a, got, other)
			}
			switch a {
			case connectors.ActionExport:
				for i := range res {
					checkResult(t, fmt.Sprintf("Export run %d of 2 at once", i+1), res[i], f.Export)
				}
				if diff := cmp.Diff(recs[0].records, recs[1].records, cmp.AllowUnexported(record{})); diff != "" {
					t.Errorf("two exports at once wrote different records (-first +second):\n%s", diff)
				}
				return
			case connectors.ActionErase:
				if got := f.SubjectRecords(ctx); got != 0 {
					t.Errorf("after two erasures at once, SubjectRecords = %d; want 0", got)
				}
			case connectors.ActionOptOut:
				if f.OptedOut != nil && !f.OptedOut(ctx) {
					t.Error("after two opt-outs at once, the subject's opt-out flag is not set")
				}
			}
			if f.InSegment != nil && f.InSegment(ctx) {
				t.Errorf("after two %s runs at once, the subject is still in a segment", a)
			}
			for i := range res {
				checkResult(t, fmt.Sprintf("%s run %d of 2 at once", a, i+1), res[i], nil, atMost(f, a))
			}
			mustDo(t, c, f, a, s, nil, "third "+string(a), nil)
		})
	}
}

// atMost returns what one run of a reports on fresh data.
func atMost(f *Fixture, a connectors.Action) map[string]int64 {
	switch a {
	case connectors.ActionErase:
		return f.Erase
	case connectors.ActionOptOut:
		return f.OptOut
	}
	return f.Export
}

// testAsync holds a connector whose system finishes work later (a
// connectors.Poller) to its side of the waiting: the other tests poll every
// Pending answer to its end (see do); here, a poll for work the system does
// not know (a handle lost or expired) is an error, never a finished action
// that did nothing.
func testAsync(t *testing.T, h Harness) {
	c, _, _, _ := setup(t, h)
	p, ok := c.(connectors.Poller)
	if !ok {
		t.Skipf("connector %s answers at once (no connectors.Poller)", c.Name())
	}
	for _, a := range connectors.Actions() {
		if !connectors.Supports(c, a) {
			continue
		}
		res, err := p.Poll(t.Context(), a, "connectortest-unknown-handle", recorderFor(a).writer())
		if err == nil && res.Pending == nil {
			t.Errorf("Poll(%s) of a handle the system never gave: %d records and no error; want an error", a, res.Records)
		}
	}
}

// faultSubject is whom the fault tests act for: no error may quote them.
var faultSubject = connectors.Subject{Identities: []connectors.Identity{
	{Kind: "email", Value: "fault.subject@example.com"},
	{Kind: "customer_id", Value: "cus_fault_4711"},
	{Kind: "phone", Value: "+1 555 0147"},
}}

// faultDeadline is the deadline the fault tests give each call.
const faultDeadline = 3 * time.Second

// testFaults builds the connector against a failing system (Harness.Fault)
// and checks that every action reports the fault as the worker needs it:
// unreachable is transient, rejected credentials permanent, a rate limit a
// RetryAfter; by the caller's deadline, and without quoting the subject.
func testFaults(t *testing.T, h Harness) {
	if h.Fault == nil {
		t.Skip("Harness.Fault is nil: the type's faults are not tested")
	}
	for _, fault := range []Fault{Unreachable, Rejected, RateLimited} {
		t.Run(fault.String(), func(t *testing.T) {
			t.Parallel()
			c := h.Fault(t, fault)
			if c == nil {
				t.Skipf("the type cannot show %s", fault)
			}
			calls := map[string]func(ctx context.Context) error{}
			for _, a := range connectors.Actions() {
				if !connectors.Supports(c, a) {
					continue
				}
				calls[string(a)] = func(ctx context.Context) error {
					_, err := connectors.Run(ctx, c, a, faultSubject, recorderFor(a).writer())
					return err
				}
			}
			if r, ok := c.(connectors.Resolver); ok {
				calls["resolve"] = func(ctx context.Context) error {
					_, err := r.Resolve(ctx, faultSubject)
					return err
				}
			}
			for name, call := range calls {
				ctx, cancel := context.WithTimeout(t.Context(), faultDeadline)
				start := time.Now()
				err := call(ctx)
				took := time.Since(start)
				cancel()
				if err == nil {
					t.Errorf("%s against a system that is %s: no error", name, fault)
					continue
				}
				if took > faultDeadline+time.Second {
					t.Errorf("%s took %v against a %s system; want it to end by the caller's deadline (%v)", name, took.Round(time.Millisecond), fault, faultDeadline)
				}
				if containsAny(err.Error(), values(faultSubject)) {
					t.Errorf("%s: the error quotes the subject: %v", name, err)
				}
				permanent := errors.Is(err, connectors.ErrPermanent)
				_, retryAfter := connectors.RetryDelay(err)
				switch fault {
				case Unreachable:
					if permanent || retryAfter {
						t.Errorf("%s against an unreachable system: %v; want a transient error (neither permanent nor RetryAfter)", name, err)
					}
				case Rejected:
					if !permanent {
						t.Errorf("%s with rejected credentials: %v; want a connectors.Permanent error", name, err)
					}
				case RateLimited:
					if permanent || !retryAfter {
						t.Errorf("%s against a rate-limited system: %v; want a connectors.RetryAfter error", name, err)
					}
				}
			}
		})
	}
}

// checkResult checks that res is consistent (Records is the total over
// Collections) and reports want per collection; nil want means 0 records.
//
// With bound given, want is ignored: each collection reports at most what
// bound says (a run that overlapped another may find part of the work done).
func checkResult(t *testing.T, what string, res connectors.Result, want map[string]int64, bound ...map[string]int64) {
	t.Helper()
	var sum int64
	for _, c := range res.Collections {
		sum += c.Records
		if c.Records < 0 {
			t.Errorf("%s: collection %s reports %d records", what, c.Name, c.Records)
		}
	}
	if sum != res.Records {
		t.Errorf("%s: Records = %d, but its collections add up to %d", what, res.Records, sum)
	}
	if len(bound) > 0 {
		for name, n := range counts(res) {
			if n > bound[0][name] {
				t.Errorf("%s: collection %s reports %d records; one run on fresh data reports %d", what, name, n, bound[0][name])
			}
		}
		return
	}
	if want == nil {
		want = map[string]int64{}
	}
	if diff := cmp.Diff(nonZero(want), counts(res)); diff != "" {
		t.Errorf("%s: records per collection (-want +got):\n%s", what, diff)
	}
}

// counts returns the records per collection of res, without zeros.
func counts(res connectors.Result) map[string]int64 {
	out := map[string]int64{}
	for _, c := range res.Collections {
		if c.Records != 0 {
			out[c.Name] += c.Records
		}
	}
	return out
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// values returns every identity value of s.
func values(s connectors.Subject) []string {
	out := make([]string, 0, len(s.Identities))
	for _, id := range s.Identities {
		out = append(out, id.Value)
	}
	return out
}

func isResolved(f *Fixture, v string) bool {
	for _, id := range f.Resolved {
		if id.Value == v {
			return true
		}
	}
	return false
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// identitySet returns ids as sorted "kind=value" strings without duplicates.
func identitySet(ids []connectors.Identity) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, id := range ids {
		k := id.Kind + "=" + id.Value
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// recorder is a RecordWriter that keeps each record as JSON, encoded at once
// as the export does, since the connector may reuse doc.
type recorder struct {
	records []record
}

// recorderFor returns a recorder for an action that writes records (see
// connectors.WritesRecords), else nil.
func recorderFor(a connectors.Action) *recorder {
	if connectors.WritesRecords(a) {
		return &recorder{}
	}
	return nil
}

// writer returns r as the RecordWriter to pass an action: nil when r is.
func (r *recorder) writer() connectors.RecordWriter {
	if r == nil {
		return nil
	}
	return r
}

type record struct {
	collection string
	json       string
}

func (r *recorder) WriteRecord(_ context.Context, collection string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("record is not JSON-encodable: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("record is not a JSON object: %.40s", b)
	}
	r.records = append(r.records, record{collection: collection, json: string(b)})
	return nil
}

func (r *recorder) perCollection() map[string]int64 {
	out := map[string]int64{}
	for _, rec := range r.records {
		out[rec.collection]++
	}
	return out
}
