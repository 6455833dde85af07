package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
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
// test store (the embedded FerretDB unless DSAR_TEST_MONGO_URI is set) and,
// in the same run, inserts as many request documents with one InsertMany,
// into the same collection so both see the same history. It reports the
// items per second of each and their ratio (how many times slower filing is
// than storing the bare documents):
//
//	go test ./handlers -run '^$' -bench BulkFiling -benchtime 3x
func BenchmarkBulkFiling(b *testing.B) {
	const history = 1000 // requests stored before the first batch
	for _, size := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			a := setup(b, false)
			ctx := context.Background()
			coll := a.store.DB().Collection(mongostore.RequestsCollection)
			insert := func(tag string, n int) time.Duration {
				b.Helper()
				docs := make([]any, n)
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
				if _, err := coll.InsertMany(ctx, docs); err != nil {
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
