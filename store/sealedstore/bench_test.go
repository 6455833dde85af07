package sealedstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// benchStores returns the same driver's store twice, in clear and sealed:
// SQLite in a temporary file, or the tests' MongoDB when they run on it.
// Each sub-benchmark's result is to be read against its "clear" sibling in
// the same run: the ratio is the cost of sealing.
func benchStores(b *testing.B) map[string]store.Store {
	b.Helper()
	var inner store.Store
	if teststore.OnMongo() {
		inner = teststore.Open(b, nil).Sealed.Inner()
	} else {
		lite, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "dsar.db"), sqlitestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lite.Close() })
		if err := lite.Prepare(context.Background()); err != nil {
			b.Fatal(err)
		}
		inner = lite
	}
	return map[string]store.Store{"clear": inner, "sealed": sealedstore.New(inner, ring(b), sealedstore.Options{})}
}

// BenchmarkIntake stores and reads back a request the way intake files one
// (an email, a phone and a customer id, an agent and a note), in clear and
// sealed:
//
//	go test ./store/sealedstore -run '^$' -bench Intake -benchtime 2000x -count 5
func BenchmarkIntake(b *testing.B) {
	index, err := dsr.NewBlindIndex(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"clear", "sealed"} {
		b.Run(name, func(b *testing.B) {
			s := benchStores(b)[name]
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "agent_api", FiledBy: "desk",
					Status: dsr.StatusVerified, Identities: []dsr.Identity{
						{Kind: dsr.KindEmail, Value: fmt.Sprintf("person%d@example.com", i), Source: dsr.SourceSubject},
						{Kind: dsr.KindPhone, Value: fmt.Sprintf("+4420794%05d", i%100000), Source: dsr.SourceSubject},
						{Kind: dsr.KindCustomerID, Value: fmt.Sprintf("cus_%08d", i), Source: dsr.SourceSubject},
					}}, index)
				if err != nil {
					b.Fatal(err)
				}
				r.Agent = &dsr.Agent{Name: "Agent Smith", Email: "agent@example.org"}
				r.Note = "called on the phone, asked for everything"
				if err := s.CreateRequest(ctx, r); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Request(ctx, r.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExport writes an export of 1,000 records of about 300 bytes and
// reads it back, in clear and sealed:
//
//	go test ./store/sealedstore -run '^$' -bench Export -benchtime 100x -count 5
func BenchmarkExport(b *testing.B) {
	index, err := dsr.NewBlindIndex(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	record := map[string]any{"email": "ada@example.com", "name": "Ada Lovelace", "address": "12 St James's Square, London",
		"orders": []string{"ord_1", "ord_2", "ord_3"}, "notes": "prefers email; loyalty tier gold; opted in 2024-01-02 via the shop's checkout"}
	for _, name := range []string{"clear", "sealed"} {
		b.Run(name, func(b *testing.B) {
			s := benchStores(b)[name]
			ctx := context.Background()
			r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "t", FiledBy: "t", Status: dsr.StatusVerified,
				Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, index)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.CreateRequest(ctx, r); err != nil {
				b.Fatal(err)
			}
			job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, r.ReceivedAt)
			if err := s.CreateJobs(ctx, []dsr.Job{job}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				w, err := s.NewExportWriter(ctx, &job)
				if err != nil {
					b.Fatal(err)
				}
				for range 1000 {
					if err := w.WriteRecord(ctx, "customers", record); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				n := 0
				if err := s.EachExportRecord(ctx, job.ID, func(_ string, data json.RawMessage) error { n++; return nil }); err != nil || n != 1000 {
					b.Fatal(n, err)
				}
			}
		})
	}
}
