package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/workers"
)

// TestDemoDeletionByPhone: a deletion filed with Ada's phone alone, on the
// demo shop with the demo connectors file, reaches every collection that
// holds her: the customer row gives her email and customer id, so orders,
// tickets and segments are found; no collection is left unsearched.
func TestDemoDeletionByPhone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := testenv.Client(t)
	shop := testenv.Database(t, client)
	if err := seedDemoInto(ctx, shop); err != nil {
		t.Fatal(err)
	}
	file := strings.Replace(demoConnectors, "database: "+demoDatabase, "database: "+shop.Name(), 1)
	reg, err := connectors.Parse(ctx, []byte(file), catalog.Types(connectors.Deps{Mongo: client}), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if err := workers.CheckConnectors(reg); err != nil {
		t.Errorf("the demo file leaves a request type without a connector: %v", err)
	}
	store := mongostore.New(testenv.Database(t, client), nil)
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	r := testenv.RedisServer(t)
	queue := workers.NewQueue(asynq.RedisClientOpt{Addr: r.Addr}, workers.QueueOptions{Name: testenv.Queue(t, r), MaxRetry: 3, JobTimeout: time.Minute})
	t.Cleanup(func() { _ = queue.Close() })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	p := workers.NewProcessor(workers.Deps{Store: store, Connectors: reg, Queue: queue, Index: idx, Log: slog.New(slog.DiscardHandler)},
		workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: time.Minute, SweepGrace: time.Minute})

	req, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: time.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindPhone, Value: "+442079460001", Source: dsr.SourceSubject}}}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := p.Fanout(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	jobs, err := store.Jobs(ctx, req.ID)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %+v, %v; want the shop's", jobs, err)
	}
	if err := p.RunJob(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	done, err := store.Request(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != dsr.StatusCompleted {
		t.Errorf("status %s; want completed", done.Status)
	}
	job, err := store.Job(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range job.Collections {
		got[c.Name] = c.Outcome + " " + strings.Join(c.KindsKnown, ",")
	}
	want := map[string]string{
		"customers": "masked email,phone",
		"orders":    "masked customer_id",
		"tickets":   "deleted email",
		"segments":  "pulled email",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collections: outcome and kinds known (-want +got):\n%s", diff)
	}
	for coll, filter := range map[string]bson.D{
		"tickets":  {{Key: "email", Value: "ada@example.com"}},
		"segments": {{Key: "members", Value: "ada@example.com"}},
		"orders":   {{Key: "customer_id", Value: "cus_ada"}, {Key: "shipping_address", Value: bson.D{{Key: "$ne", Value: nil}}}},
	} {
		n, err := shop.Collection(coll).CountDocuments(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d of Ada's records left after a deletion by phone", coll, n)
		}
	}
}
