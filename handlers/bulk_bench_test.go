package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// BenchmarkBulkFiling files batches through POST /v1/requests/bulk on the
// test store (see internal/teststore) and, in the same run, stores as many
// requests directly, so both see the same history: on MongoDB the bare
// documents with one InsertMany, on SQLite with the store's CreateRequests
// (one transaction). It reports the items per second of each and their
// ratio (how many times slower filing is than storing directly):
//
//	go test ./handlers -run '^$' -bench BulkFiling -benchtime 3x
func BenchmarkBulkFiling(b *testing.B) {
	const history = 1000 // requests stored before the first batch
	for _, size := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			a := setup(b, false)
			ctx := context.Background()
			insert := func(tag string, n int) time.Duration {
				b.Helper()
				docs := make([]*dsr.Request, n)
				for j := range docs {
					r, err := dsr.NewRequest(dsr.Intake{
						Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "agent_api", FiledBy: "desk",
						Status: dsr.StatusVerified, ReceivedAt: time.Now(), Channel: "letter", Notify: true,
						Notices:    []string{dsr.NoticeReceipt},
						Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: fmt.Sprintf("%s-%d@example.com", tag, j), Source: dsr.SourceSubject}},
					}, a.index)
					if err != nil {
						b.Fatal(err)
					}
					docs[j] = r
				}
				start := time.Now()
				if a.store.Mongo != nil {
					if _, err := a.store.Mongo.DB().Collection(mongostore.RequestsCollection).InsertMany(ctx, docs); err != nil {
						b.Fatal(err)
					}
				} else if err := errors.Join(a.store.CreateRequests(ctx, docs)...); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			insert("seed", history)
			client := &http.Client{Timeout: time.Hour} // unchecked: the schema check would be timed too
			var filing, storing time.Duration
			batches := 0
			for b.Loop() {
				items := make([]string, size)
				for j := range items {
					items[j] = fmt.Sprintf(`{"type":"access","regulation":"gdpr","subject":{"email":"bulk%d-%d@example.com"},"channel":"letter"}`, batches, j)
				}
				req, _ := http.NewRequest("POST", a.url+"/v1/requests/bulk", bytes.NewReader([]byte(`{"requests":[`+strings.Join(items, ",")+`]}`)))
				req.Header.Set("Authorization", "Bearer "+agentKey)
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				filing += time.Since(start)
				var out struct{ Accepted int }
				if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &out) != nil || out.Accepted != size {
					b.Fatalf("bulk: %d, accepted %d of %d", resp.StatusCode, out.Accepted, size)
				}
				storing += insert(fmt.Sprintf("direct%d", batches), size)
				batches++
			}
			n := float64(batches * size)
			b.ReportMetric(n/filing.Seconds(), "filed/s")
			b.ReportMetric(n/storing.Seconds(), "inserted/s")
			b.ReportMetric(filing.Seconds()/storing.Seconds(), "x_insert")
		})
	}
}
