package workers_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers"
)

// TestReapplyAdvertisingID: a person opts out of the sale and sharing of
// their data by their phone's advertising id alone. The fan-out
// suppresses its hash (and the list exported to partners carries it) and
// takes the id out of the ad audience; tomorrow's audience, rebuilt from
// the ad platform, holds it again, written in upper case as iOS writes
// it; the re-application takes it out again. Another phone's id, and the
// all-zero id of every phone that limits ad tracking, stay.
func TestReapplyAdvertisingID(t *testing.T) {
	t.Parallel()
	const (
		idfa  = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
		other = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
		zero  = "00000000-0000-0000-0000-000000000000"
	)
	e := setup(t, 3)
	ctx := t.Context()
	ads, err := mongodb.New(ctx, "ads", mongodb.Spec{Database: e.shop.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "audiences", Match: map[string]string{"idfas": "advertising_id"},
			Erase:  &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "idfas"},
			OptOut: &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "idfas"}},
	}}, e.shop.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Add(ads); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetDataMap("ads", connectors.DataMap{Scopes: []connectors.Scope{connectors.ScopeSaleShare}}); err != nil {
		t.Fatal(err)
	}
	insertDocs(t, e, "audiences", bson.D{{Key: "_id", Value: "in-market-cars"}, {Key: "idfas", Value: bson.A{idfa, other, zero}}})
	set := suppression.NewSet(e.store, e.index.SuppressionKey())
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	proc := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index, Suppressions: set, Log: log},
		workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now})
	e.proc = proc
	e.startWorkers()

	r := e.fileWith(dsr.TypeOptOut, func(in *dsr.Intake) {
		in.Scopes = []dsr.Scope{dsr.ScopeSaleShare}
		in.Identities = []dsr.Identity{{Kind: dsr.KindAdvertisingID, Value: idfa, Source: dsr.SourceSubject}}
	})
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.ID, dsr.StatusCompleted)
	if n := e.count("audiences", bson.D{{Key: "idfas", Value: idfa}}); n != 0 {
		t.Fatalf("the advertising id is still in %d audiences after its opt-out", n)
	}
	hash := e.index.SuppressionKey().Hash(dsr.KindAdvertisingID, idfa)
	var exported strings.Builder
	if _, err := app.ExportSuppressions(ctx, e.store, &exported, dsr.ScopeSaleShare, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exported.String(), `"`+hash+`"`) || !strings.HasPrefix(hash, "advertising_id:") {
		t.Errorf("the exported list lacks the advertising id's hash %s:\n%s", hash, exported.String())
	}

	// Tomorrow's audience, rebuilt.
	if _, err := e.shop.Collection("audiences").UpdateByID(ctx, "in-market-cars", bson.D{{Key: "$push", Value: bson.D{{Key: "idfas", Value: strings.ToUpper(idfa)}}}}); err != nil {
		t.Fatal(err)
	}
	n, err := proc.Reapply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Removed != 1 || n.Members != 3 {
		t.Errorf("re-application: %+v; want 1 removed of 3 members", n)
	}
	if got := e.count("audiences", bson.D{{Key: "idfas", Value: strings.ToUpper(idfa)}}); got != 0 {
		t.Error("the advertising id is back in the audience after the re-application")
	}
	for _, id := range []string{other, zero} {
		if got := e.count("audiences", bson.D{{Key: "idfas", Value: id}}); got != 1 {
			t.Errorf("%s taken out of the audience", id)
		}
	}
	if strings.Contains(strings.ToLower(e.logs.String()), idfa) {
		t.Errorf("logs name the advertising id:\n%s", e.logs)
	}
}

// TestResolveDropsPlaceholderAdvertisingIDs: a profile of Ada's holds the
// all-zero advertising id her old phone gave while it limited ad tracking,
// as Grace's does. Resolving it for Ada's deletion would erase the events of
// every such user; it is dropped (and logged by count only), and only the
// real advertising id of Ada's other phone is used.
func TestResolveDropsPlaceholderAdvertisingIDs(t *testing.T) {
	t.Parallel()
	const (
		zero = "00000000-0000-0000-0000-000000000000"
		idfa = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
	)
	e := setup(t, 3)
	ctx := t.Context()
	ads, err := mongodb.New(ctx, "ads", mongodb.Spec{Database: e.shop.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "profiles", Match: map[string]string{"email": "email"}, Provide: map[string]string{"advertising_id": "ad_id"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}},
		{Name: "ad_events", Match: map[string]string{"ad_id": "advertising_id"}, Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}},
	}}, e.shop.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Add(ads); err != nil {
		t.Fatal(err)
	}
	insertDocs(t, e, "profiles",
		bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "ad_id", Value: zero}, {Key: "device", Value: "old phone"}},
		bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "ad_id", Value: strings.ToUpper(idfa)}, {Key: "device", Value: "new phone"}},
		bson.D{{Key: "email", Value: "grace@example.com"}, {Key: "ad_id", Value: zero}})
	insertDocs(t, e, "ad_events",
		bson.D{{Key: "ad_id", Value: zero}, {Key: "who", Value: "grace"}},
		bson.D{{Key: "ad_id", Value: zero}, {Key: "who", Value: "ada, limited"}},
		bson.D{{Key: "ad_id", Value: idfa}, {Key: "who", Value: "ada"}})
	e.startWorkers()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.ID, dsr.StatusCompleted)
	if n := e.count("ad_events", bson.D{{Key: "ad_id", Value: zero}}); n != 2 {
		t.Errorf("%d events under the all-zero id left; want both (they are nobody's)", n)
	}
	if n := e.count("ad_events", bson.D{{Key: "ad_id", Value: idfa}}); n != 0 {
		t.Errorf("Ada's event under her real advertising id kept")
	}
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var adIDs []string
	for _, id := range got.Identities {
		if id.Kind == dsr.KindAdvertisingID {
			adIDs = append(adIDs, id.Value)
		}
	}
	if len(adIDs) != 1 || adIDs[0] != idfa {
		t.Errorf("advertising ids of the request: %v; want %s alone", adIDs, idfa)
	}
	if !strings.Contains(e.logs.String(), "resolved identities dropped") || strings.Contains(e.logs.String(), zero) {
		t.Errorf("the drop is not logged, or the log holds the id:\n%s", e.logs)
	}
}
