package workers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// copySealed copies the sealed value of field (identities.0.value) of
// request from into request to, behind the store, as someone editing the
// database would.
func (e *env) copySealed(collection, field, from, to string) {
	e.t.Helper()
	ctx := context.Background()
	if e.store.Mongo != nil {
		coll := e.store.Mongo.DB().Collection(collection)
		v := e.rawRequest(from).Identities[0].Value
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: to}}, bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: v}}}}); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	path := "$." + strings.Replace(field, ".0.", "[0].", 1)
	db := e.store.LiteDB(e.t)
	res, err := db.Exec(`UPDATE `+collection+` SET doc = json_set(doc, ?, (SELECT json_extract(doc, ?) FROM `+collection+` WHERE id = ?)) WHERE id = ?`, path, path, from, to)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		e.t.Fatalf("tamper: %v (%d rows)", err, n)
	}
}

// rawRequest reads request id as the driver holds it: a request that does
// not open is an error through the sealing store.
func (e *env) rawRequest(id string) *dsr.Request {
	e.t.Helper()
	r, err := e.store.Sealed.Inner().Request(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestUnreadableWorkNeedsAttention: a request whose sealed identities do
// not open (altered behind the service, or its master key lost) is put in
// front of an agent at once, with the reason, by its fan-out, also when
// the sweep finds it; a job whose identities do not open fails for good.
// Neither is retried for ever, nor handed ciphertexts.
func TestUnreadableWorkNeedsAttention(t *testing.T) {
	t.Parallel()
	e := setup(t, 2)
	e.startWorkers()
	ctx := context.Background()
	wait := func(id string, want dsr.Status) *dsr.Request {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r := e.rawRequest(id)
			if r.Status == want {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s stuck in %s, want %s\nlogs:\n%s", id, r.Status, want, e.logs.String())
			}
		}
	}

	ada, grace := e.file(dsr.TypeDeletion, "ada@example.com"), e.file(dsr.TypeDeletion, "grace@example.com")
	e.copySealed(store.Requests, "identities.0.value", grace.ID, ada.ID)
	if err := e.queue.EnqueueFanout(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	got := wait(ada.ID, dsr.StatusNeedsAttention)
	if got.FanoutFailures != 1 || !strings.Contains(got.FanoutError, dsr.ErrUnreadable.Error()) {
		t.Errorf("fan-out: %d failures, error %q; want 1, saying it does not open", got.FanoutFailures, got.FanoutError)
	}
	if jobs, _ := e.store.Sealed.Inner().Jobs(ctx, ada.ID); len(jobs) != 0 {
		t.Errorf("jobs made for a request that does not open: %d", len(jobs))
	}

	// Found by the sweep (its task lost) rather than queued.
	alan := e.file(dsr.TypeDeletion, "alan@example.com")
	e.copySealed(store.Requests, "identities.0.value", grace.ID, alan.ID)
	e.clock.Add(2 * time.Minute)
	if _, err := e.proc.Sweep(ctx); err == nil {
		t.Log("the sweep reported nothing unreadable") // it reports what it could not open
	}
	wait(alan.ID, dsr.StatusNeedsAttention)

	// A job whose identities were altered after its fan-out.
	cy := e.file(dsr.TypeAccess, "cy@example.com")
	job := dsr.NewJob(cy.ID, "shop", dsr.ActionExport, e.clock.Now())
	job.Identities = []dsr.Identity{{Kind: dsr.KindEmail, Value: "cy@example.com", Source: dsr.SourceSubject}}
	if err := e.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	e.copySealed(store.Requests, "identities.0.value", grace.ID, cy.ID) // any other sealed value
	e.copySealedJob(cy.ID, job.ID)
	if err := e.queue.EnqueueJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		j, err := e.store.Sealed.Inner().Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == dsr.JobFailed {
			if !strings.Contains(j.Error, dsr.ErrUnreadable.Error()) || j.Attempts != 1 {
				t.Errorf("job failed after %d attempts with %q; want 1, saying it does not open", j.Attempts, j.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job stuck in %s\nlogs:\n%s", j.Status, e.logs.String())
		}
	}
}

// copySealedJob puts a sealed value of request's (not the job's) into the
// job's first identity.
func (e *env) copySealedJob(requestID, jobID string) {
	e.t.Helper()
	ctx := context.Background()
	raw := e.rawRequest(requestID)
	if e.store.Mongo != nil {
		if _, err := e.store.Mongo.DB().Collection(store.Jobs).UpdateOne(ctx, bson.D{{Key: "_id", Value: jobID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "identities.0.value", Value: raw.Identities[0].Value}}}}); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	res, err := e.store.LiteDB(e.t).Exec(`UPDATE jobs SET doc = json_set(doc, '$.identities[0].value', ?) WHERE id = ?`, raw.Identities[0].Value, jobID)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		e.t.Fatalf("tamper job: %v (%d rows)", err, n)
	}
}
