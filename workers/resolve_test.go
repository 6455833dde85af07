package workers_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// chain is a resolver that finds one new customer id every time it is
// asked, as a chain of linked accounts would.
type chain struct{ n atomic.Int64 }

func (*chain) Name() string { return "chain" }

func (c *chain) Resolve(context.Context, connectors.Subject) ([]connectors.Identity, error) {
	return []connectors.Identity{{Kind: "customer_id", Value: fmt.Sprintf("cus_%d", c.n.Add(1)), Source: "chain/accounts"}}, nil
}

// TestResolveBoundReached: resolution that still finds identities when it
// reaches its bound (DSAR_RESOLVE_MAX_ROUNDS) says so on the request, in its
// history and in its audit trail; resolution that runs dry says nothing.
func TestResolveBoundReached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		chain  bool
		rounds int // Options.ResolveMaxRounds; 0: the default
		want   int
	}{
		{"default bound", true, 0, 3},
		{"bound of 5", true, 5, 5},
		{"resolution runs dry", false, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var extra []connectors.Connector
			if tt.chain {
				extra = append(extra, &chain{})
			}
			e := setup(t, 3, extra...)
			p := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
				Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second,
				Now: e.clock.Now, ResolveMaxRounds: tt.rounds})
			r := e.file(dsr.TypeAccess, "ada@example.com")
			testenv.Must(t, p.Fanout(ctx, r.ID))
			got, err := e.store.Request(ctx, r.ID)
			testenv.Must(t, err)
			if got.ResolveBoundReached != tt.want {
				t.Errorf("ResolveBoundReached = %d; want %d", got.ResolveBoundReached, tt.want)
			}
			reasons := ""
			for _, h := range got.History {
				reasons += h.Reason + "\n"
			}
			if said := strings.Contains(reasons, "identity resolution stopped at its bound"); said != (tt.want > 0) {
				t.Errorf("history says the bound was reached: %v; want %v\n%s", said, tt.want > 0, reasons)
			}
			trail, err := e.store.AuditTrail(ctx, r.ID)
			testenv.Must(t, err)
			var events []string
			for _, ev := range trail {
				if ev.Kind == "resolution_bound_reached" {
					events = append(events, ev.Data["rounds"])
				}
			}
			if want := fmt.Sprint(tt.want); (tt.want > 0) != (len(events) == 1 && events[0] == want) {
				t.Errorf("resolution_bound_reached events %v; want one with rounds %s: %v", events, want, tt.want > 0)
			}
		})
	}
}
