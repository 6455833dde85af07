package mongostore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
)

// chainID returns a request id for chain n of a test.
func chainID(n int) string { return fmt.Sprintf("01a20d27-0000-7000-8000-%012d", n) }

// appendChain appends the events of a short request life to request id's
// chain, one second apart, and returns them.
func (f fixture) appendChain(t *testing.T, id string) []dsr.AuditEvent {
	t.Helper()
	steps := []struct {
		actor, kind string
		data        map[string]string
	}{
		{"ops", "filed", map[string]string{"type": "deletion", "regulation": "gdpr"}},
		{"worker", "status", map[string]string{"from": "verified", "to": "in_progress"}},
		{"worker", "job", map[string]string{"connector": "shop", "outcome": "succeeded", "records": "3"}},
		{"worker", "status", map[string]string{"from": "in_progress", "to": "completed"}},
	}
	var out []dsr.AuditEvent
	for _, s := range steps {
		f.clock.Add(time.Second)
		e, err := f.store.AppendAudit(context.Background(), id, s.actor, s.kind, s.data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *e)
	}
	return out
}

func (f fixture) trail(t *testing.T, id string) []dsr.AuditEvent {
	t.Helper()
	events, err := f.store.AuditTrail(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// chains reads every chain as `dsar audit verify` does.
func (f fixture) chains(t *testing.T) map[string][]dsr.AuditEvent {
	t.Helper()
	out := map[string][]dsr.AuditEvent{}
	err := f.store.EachAuditChain(context.Background(), func(id string, events []dsr.AuditEvent) error {
		if _, seen := out[id]; seen {
			t.Errorf("chain %s visited twice", id)
		}
		out[id] = events
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditTamperIsDetected(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	coll := f.store.DB().Collection(mongostore.AuditCollection)
	id := func(req string, seq int) bson.D { return bson.D{{Key: "_id", Value: fmt.Sprintf("%s:%08d", req, seq)}} }
	set := func(req string, seq int, field string, v any) error {
		_, err := coll.UpdateOne(ctx, id(req, seq), bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: v}}}})
		return err
	}
	del := func(req string, seq int) error { _, err := coll.DeleteOne(ctx, id(req, seq)); return err }
	insert := func(e dsr.AuditEvent) error { _, err := coll.InsertOne(ctx, e); return err }

	cases := []struct {
		name   string
		tamper func(req string, events []dsr.AuditEvent) error
		at     int    // 0: the chain still verifies; -1: broken, wherever
		says   string // in the problem
	}{
		{"data edited", func(req string, _ []dsr.AuditEvent) error { return set(req, 3, "data.outcome", "failed") }, 3, "hash mismatch"},
		{"data added", func(req string, _ []dsr.AuditEvent) error { return set(req, 2, "data.note", "x") }, 2, "edited"},
		{"actor edited", func(req string, _ []dsr.AuditEvent) error { return set(req, 2, "actor", "someone") }, 2, "edited"},
		{"kind edited", func(req string, _ []dsr.AuditEvent) error { return set(req, 4, "kind", "filed") }, 4, "edited"},
		{"time edited", func(req string, ev []dsr.AuditEvent) error { return set(req, 1, "at", ev[0].At.Add(-time.Hour)) }, 1, "edited"},
		{"edited with its hash recomputed", func(req string, ev []dsr.AuditEvent) error {
			e := ev[1]
			e.Actor = "someone"
			if err := set(req, 2, "actor", e.Actor); err != nil {
				return err
			}
			return set(req, 2, "hash", e.ComputeHash())
		}, 3, "prev_hash does not match"},
		{"middle event deleted", func(req string, _ []dsr.AuditEvent) error { return del(req, 2) }, 3, "seq gap: event 2 is missing"},
		{"first event deleted", func(req string, _ []dsr.AuditEvent) error { return del(req, 1) }, 2, "seq gap: event 1 is missing"},
		{"seq swapped", func(req string, _ []dsr.AuditEvent) error {
			// Through a spare value: the unique index refuses two events with one seq.
			for _, s := range []struct{ seq, to int }{{2, 99}, {3, 2}, {2, 3}} {
				if err := set(req, s.seq, "seq", s.to); err != nil {
					return err
				}
			}
			return nil
		}, 2, "_id does not match"},
		{"event replaced by an edited copy", func(req string, ev []dsr.AuditEvent) error {
			if err := del(req, 2); err != nil {
				return err
			}
			e := ev[1]
			e.Data = map[string]string{"from": "verified", "to": "denied"}
			return insert(e)
		}, 2, "hash mismatch"},
		{"two events reordered", func(req string, ev []dsr.AuditEvent) error {
			for _, seq := range []int{2, 3} {
				if err := del(req, seq); err != nil {
					return err
				}
			}
			second, third := ev[1], ev[2]
			second.Seq, second.ID, third.Seq, third.ID = 3, third.ID, 2, second.ID
			if err := insert(second); err != nil {
				return err
			}
			return insert(third)
		}, 2, "prev_hash does not match the hash of event 1"},
		{"an event inserted", func(req string, ev []dsr.AuditEvent) error {
			e := ev[3]
			e.Seq, e.ID = 6, fmt.Sprintf("%s:%08d", req, 6)
			return insert(e)
		}, 6, "seq gap: event 5 is missing"},
		{"moved to another request", func(req string, ev []dsr.AuditEvent) error {
			return set(req, 3, "request_id", chainID(999))
		}, -1, ""}, // AuditTrail sees a gap at 4, EachAuditChain a stranger at 3
		// The limit of a hash chain: the last event's deletion leaves a valid chain.
		{"last event deleted", func(req string, _ []dsr.AuditEvent) error { return del(req, 4) }, 0, ""},
	}
	for i, c := range cases {
		req := chainID(100 + i)
		events := f.appendChain(t, req)
		if v := dsr.VerifyChain(f.trail(t, req)); !v.OK {
			t.Fatalf("%s: chain broken before the tamper: %+v", c.name, v)
		}
		if err := c.tamper(req, events); err != nil {
			t.Fatalf("%s: tamper: %v", c.name, err)
		}
		check := func(how string, events []dsr.AuditEvent) {
			v := dsr.VerifyChain(events)
			switch {
			case c.at == 0 && !v.OK:
				t.Errorf("%s (%s): %+v, want the chain to verify", c.name, how, v)
			case c.at < 0 && (v.OK || v.BrokenAt == 0):
				t.Errorf("%s (%s): %+v, want it broken", c.name, how, v)
			case c.at > 0 && (v.OK || v.BrokenAt != c.at || !strings.Contains(v.Problem, c.says)):
				t.Errorf("%s (%s): %+v, want broken at %d with %q", c.name, how, v, c.at, c.says)
			}
			if c.at != 0 && strings.Contains(v.Problem, "someone") {
				t.Errorf("%s: the problem quotes a value: %s", c.name, v.Problem)
			}
		}
		check("AuditTrail", f.trail(t, req))
		check("EachAuditChain", f.chains(t)[req])
	}
	// Untouched chains still verify, and nothing else appeared.
	chains := f.chains(t)
	if len(chains) != len(cases) {
		t.Errorf("%d chains, want %d", len(chains), len(cases))
	}
}

// TestAuditConcurrentAppends races 8 appenders, half of them on a second
// client (a second process), for the next event of one chain, round after
// round: every append lands, once, in one linear chain.
func TestAuditConcurrentAppends(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	other := mongostore.New(testenv.Client(t).Database(f.store.DB().Name()), f.clock.Now)
	const appenders, rounds = 8, 5
	req := chainID(1)

	errs := make(chan error, appenders*rounds)
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range appenders {
			s := f.store
			if i%2 == 1 {
				s = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.AppendAudit(ctx, req, fmt.Sprint("w", i), "job", map[string]string{"round": fmt.Sprint(round)}); err != nil {
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	events := f.trail(t, req)
	if c := dsr.VerifyChain(events); !c.OK || c.Events != appenders*rounds {
		t.Fatalf("after concurrent appends: %+v", c)
	}
	seen := map[string]bool{}
	for _, e := range events {
		k := e.Actor + "/" + e.Data["round"]
		if seen[k] {
			t.Errorf("event %s appended twice", k)
		}
		seen[k] = true
	}
	if len(seen) != appenders*rounds {
		t.Errorf("%d distinct events, want %d", len(seen), appenders*rounds)
	}
}

func TestAuditRoundTrips(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	req := chainID(1)
	steps := []commandStep{
		{"first append", func() error { _, err := f.store.AppendAudit(ctx, req, "ops", "filed", nil); return err }, []string{"find", "insert"}},
		{"append after this process's own", func() error {
			_, err := f.store.AppendAudit(ctx, req, "worker", "status", map[string]string{"to": "in_progress"})
			return err
		}, []string{"insert"}},
		{"append after another process's", func() error {
			other := mongostore.New(f.store.DB(), nil) // a second process: its head is stale
			if _, err := other.AppendAudit(ctx, req, "worker", "status", map[string]string{"to": "completed"}); err != nil {
				return err
			}
			f.cmds.Reset()
			_, err := f.store.AppendAudit(ctx, req, "ops", "downloaded", nil)
			return err
		}, []string{"insert", "find", "insert"}},
		{"trail", func() error { _, err := f.store.AuditTrail(ctx, req); return err }, []string{"find"}},
		{"every chain", func() error { return f.store.EachAuditChain(ctx, func(string, []dsr.AuditEvent) error { return nil }) }, []string{"find"}},
	}
	f.checkCommands(t, steps)
}
