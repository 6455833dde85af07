package workers_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// TestRecordsIncomplete: a job whose earlier attempt changed records and
// was stopped before recording it says its counts may be short; a job
// whose earlier attempts all recorded their outcome, or an export, does
// not.
func TestRecordsIncomplete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		typ         dsr.Type
		killed      bool // the first attempt claims, runs and dies
		crmFails    int32
		wantRecords int64
		want        bool
	}{
		{"killed erase", dsr.TypeDeletion, true, 0, 0, true},
		{"crm failed once, recorded", dsr.TypeDeletion, false, 1, 3, false},
		{"killed export", dsr.TypeAccess, true, 0, 3, false},
		{"first attempt", dsr.TypeDeletion, false, 0, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			crm := &broken{name: "crm", fails: tt.crmFails}
			e := setup(t, 3, crm)
			ctx := context.Background()
			r := e.file(tt.typ, "ada@example.com")
			if err := e.proc.Fanout(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			id := dsr.JobID(r.ID, "shop", tt.typ.Action())
			if tt.killed {
				// The attempt claims the job, erases Ada's rows, and its
				// worker dies before recording it.
				if _, err := e.store.ClaimJob(ctx, id, time.Minute); err != nil {
					t.Fatal(err)
				}
				if tt.typ == dsr.TypeDeletion {
					for _, coll := range []string{"customers", "orders"} {
						if _, err := e.shop.Collection(coll).DeleteMany(ctx, bson.D{{Key: "$or", Value: bson.A{
							bson.D{{Key: "email", Value: "ada@example.com"}}, bson.D{{Key: "customer_id", Value: "cus_ada"}}}}}); err != nil {
							t.Fatal(err)
						}
					}
				}
				e.clock.Add(2 * time.Minute) // its lease runs out
			}
			crmID := dsr.JobID(r.ID, "crm", tt.typ.Action())
			for range tt.crmFails {
				_ = e.proc.RunJob(ctx, crmID)
			}
			if err := e.proc.RunJob(ctx, id); err != nil {
				t.Fatal(err)
			}
			job := e.job(id)
			if job.Status != dsr.JobSucceeded || job.Records != tt.wantRecords || job.RecordsIncomplete != tt.want {
				t.Errorf("shop job: %s, %d records, incomplete %v; want succeeded, %d, %v", job.Status, job.Records, job.RecordsIncomplete, tt.wantRecords, tt.want)
			}
			if tt.typ == dsr.TypeDeletion {
				if err := e.proc.RunJob(ctx, crmID); err != nil {
					t.Fatal(err)
				}
				if c := e.job(crmID); c.Status != dsr.JobSucceeded || c.RecordsIncomplete {
					t.Errorf("crm job (failures recorded): %s, incomplete %v; want succeeded, complete", c.Status, c.RecordsIncomplete)
				}
			}
		})
	}
}
