package workers_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// downConnector returns a mongodb connector whose server does not exist: a
// closed loopback port, with a short server selection timeout.
func downConnector(t *testing.T, selection time.Duration) connectors.Connector {
	t.Helper()
	addr := testenv.ClosedAddr(t)
	c, err := mongodb.New(context.Background(), "down", mongodb.Spec{
		URI:      fmt.Sprintf("mongodb://%s/?serverSelectionTimeoutMS=%d&connectTimeoutMS=300", addr, selection.Milliseconds()),
		Database: "shop",
		Collections: []mongodb.CollectionSpec{{Name: "customers", Match: map[string]string{"email": "email"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestUnreachableConnectorDoesNotStallOthers: with one connector down (each
// attempt waits out a long server selection), the jobs of a healthy
// connector for 10 requests all finish before any attempt on the down one
// has ended: the down connector holds at most its own slots, and its jobs
// that find them taken give their worker back. Without the limit its
// attempts fill every worker slot and the healthy jobs wait a whole server
// selection. The test orders events instead of timing them, so a slow
// machine cannot fail it.
func TestUnreachableConnectorDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	const selection = 60 * time.Second
	e := setup(t, 3, downConnector(t, selection))
	// As dsar runs it: half the 4 workers per connector at most.
	e.proc = workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 3, Lease: 3 * time.Minute, JobTimeout: 2 * selection, SweepGrace: time.Minute, Now: e.clock.Now,
		ConnectorConcurrency: 2,
	})
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		r := e.file(dsr.TypeDeletion, fmt.Sprintf("person%d@example.com", i))
		ids = append(ids, r.ID)
		if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	e.startWorkers()
	job := func(id, conn string) *dsr.Job {
		j, err := e.store.Job(ctx, dsr.JobID(id, conn, dsr.ActionErase))
		if err != nil {
			return nil
		}
		return j
	}
	deadline := start.Add(selection)
	for {
		done := 0
		for _, id := range ids {
			if j := job(id, "shop"); j != nil && j.Status == dsr.JobSucceeded {
				done++
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v only %d of %d healthy jobs succeeded: they waited behind the down connector", time.Since(start), done, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("10 requests: every healthy job done %v after the workers started (down connector: %v server selection per attempt)", time.Since(start), selection)
	for _, id := range ids {
		if j := job(id, "down"); j != nil && j.Recorded > 0 {
			t.Errorf("job %s recorded an attempt before the healthy jobs were done: they waited for the down connector", j.ID)
		}
	}
}
