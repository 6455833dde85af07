package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// chainID returns a request id for chain n of a test.
func chainID(n int) string { return fmt.Sprintf("01a20d27-0000-7000-8000-%012d", n) }

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

func testAuditChain(t *testing.T, f fixture) {
	ctx := context.Background()
	a, b := chainID(1), chainID(2)
	start := f.clock.Now()

	// Two chains, appended in turn.
	var want []dsr.AuditEvent
	for i := range 3 {
		f.clock.Add(time.Second)
		e, err := f.store.AppendAudit(ctx, a, "ops", "status", map[string]string{"step": fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, *e)
		if _, err := f.store.AppendAudit(ctx, b, "worker", "job", nil); err != nil {
			t.Fatal(err)
		}
	}
	got := f.trail(t, a)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trail read back (-appended +read):\n%s", diff)
	}
	for i, e := range got {
		if e.Seq != i+1 || e.ID != fmt.Sprintf("%s:%08d", a, i+1) || e.RequestID != a {
			t.Errorf("event %d: seq %d id %s request %s", i, e.Seq, e.ID, e.RequestID)
		}
		if !e.At.Equal(start.Add(time.Duration(i+1) * time.Second)) {
			t.Errorf("event %d at %s", i, e.At)
		}
		if i > 0 && e.PrevHash != got[i-1].Hash || i == 0 && e.PrevHash != "" {
			t.Errorf("event %d: prev_hash %q", i, e.PrevHash)
		}
		if len(e.Hash) != 64 || e.Hash != e.ComputeHash() {
			t.Errorf("event %d: hash %q", i, e.Hash)
		}
	}
	if c := dsr.VerifyChain(got); !c.OK || c.Events != 3 || c.BrokenAt != 0 || c.Problem != "" {
		t.Errorf("verify = %+v", c)
	}
	other := f.trail(t, b)
	if len(other) != 3 || other[2].Data != nil {
		t.Errorf("chain b = %+v", other)
	}
	if c := dsr.VerifyChain(other); !c.OK {
		t.Errorf("chain b: %+v", c)
	}
	if c := dsr.VerifyChain(nil); !c.OK || c.Events != 0 {
		t.Errorf("empty chain: %+v", c)
	}
	if got := f.trail(t, chainID(3)); len(got) != 0 {
		t.Errorf("trail of a request without events = %+v", got)
	}
}

func testEachAuditChain(t *testing.T, f fixture) {
	ctx := context.Background()
	lengths := map[string]int{chainID(3): 1, chainID(1): 130, chainID(2): 4} // 130: more than one batch
	for req, n := range lengths {
		for range n {
			if _, err := f.store.AppendAudit(ctx, req, "worker", "job", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	var order []string
	err := f.store.EachAuditChain(ctx, func(req string, events []dsr.AuditEvent) error {
		order = append(order, req)
		if len(events) != lengths[req] {
			t.Errorf("chain %s: %d events, want %d", req, len(events), lengths[req])
		}
		if c := dsr.VerifyChain(events); !c.OK {
			t.Errorf("chain %s: %+v", req, c)
		}
		if diff := cmp.Diff(f.trail(t, req), events); diff != "" {
			t.Errorf("chain %s differs from its trail:\n%s", req, diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{chainID(1), chainID(2), chainID(3)}, order); diff != "" {
		t.Errorf("chains visited (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err = f.store.EachAuditChain(ctx, func(string, []dsr.AuditEvent) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("an error from fn: err %v after %d calls, want it returned after 1", err, calls)
	}
}

func testAppendAuditRefuses(t *testing.T, f fixture) {
	ctx := context.Background()
	for _, c := range []struct {
		name, req, actor, kind string
		data                   map[string]string
	}{
		{"no request", "", "ops", "filed", nil},
		{"colon in the request id", "a:b", "ops", "filed", nil},
		{"no actor", chainID(1), "", "filed", nil},
		{"no kind", chainID(1), "ops", "", nil},
		{"invalid UTF-8", chainID(1), "ops\xff", "filed", nil},
		{"dotted key", chainID(1), "ops", "filed", map[string]string{"a.b": "x"}},
		{"operator key", chainID(1), "ops", "filed", map[string]string{"$set": "x"}},
		{"invalid UTF-8 value", chainID(1), "ops", "filed", map[string]string{"k": "secret\xff"}},
	} {
		_, err := f.store.AppendAudit(ctx, c.req, c.actor, c.kind, c.data)
		if err == nil {
			t.Errorf("%s: appended", c.name)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error quotes the value: %v", c.name, err)
		}
	}
	// Every stored event belongs to a chain: none may be visited.
	n := 0
	for _, events := range f.chains(t) {
		n += len(events)
	}
	if n != 0 {
		t.Errorf("%d events stored", n)
	}
}
