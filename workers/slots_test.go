package workers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers"
)

// downConnector returns a mongodb connector whose server does not exist: a
// closed loopback port, with a short server selection timeout.
func downConnector(t *testing.T, selection time.Duration) connectors.Connector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
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
// attempt waits out server selection), the jobs of a healthy connector for
// 10 requests still finish promptly: the down connector holds at most its
// own slots, and its jobs that find them taken give their worker back.
func TestUnreachableConnectorDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	const selection = 8 * time.Second
	var extra []connectors.Connector
	if os.Getenv("BASELINE") == "" {
		extra = append(extra, downConnector(t, selection))
	}
	e := setup(t, 3, extra...)
	// As dsar runs it: half the 4 workers per connector at most.
	e.proc = workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now,
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
	deadline := start.Add(60 * time.Second)
	for {
		done := 0
		for _, id := range ids {
			j, err := e.store.Job(ctx, dsr.JobID(id, "shop", dsr.ActionErase))
			if err == nil && j.Status == dsr.JobSucceeded {
				done++
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v only %d of %d healthy jobs succeeded", time.Since(start), done, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("10 requests: every healthy job done %v after the workers started (down connector: %v server selection per attempt)", took, selection)
	// Before the down connector's first attempt could even give up: the
	// healthy jobs never waited for it.
	if took > selection {
		t.Errorf("the healthy connector's 10 jobs took %v with another connector down; want under %v", took, selection)
	}
}
