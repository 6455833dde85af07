package bench_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

// BenchmarkPages measures the pages against the API's own list in the same
// run: the console's queue (GET /console, its first page) and dashboard
// (GET /console/dashboard), and the portal's form (GET /privacy), each as
// a ratio to GET /v1/requests?limit=50, with 1k and 10k requests stored
// (DSAR_BENCH_STORED). The stored requests were received and completed a
// year ago: the history; 200 more, open, are received this week, which the
// dashboard's weeks count. The goal: no page's cost grows with the history
// but the dashboard's counts by status, which count every request (read
// from one index, never a request's row).
//
//	go test ./bench -run '^$' -bench Pages -benchtime 50x
func BenchmarkPages(b *testing.B) {
	for _, n := range latencySizes(b) {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			st := openStore(b)
			idx := index(b)
			fillAt(b, st, idx, "history", n, time.Now().AddDate(-1, 0, 0), true)
			fill(b, st, idx, "recent", 200)
			r := testenv.RedisServer(b)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
			b.Cleanup(func() { _ = rdb.Close() })
			keys := apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte(agentKey))})
			kit := webkit.New(webkit.Options{Secrets: [][]byte{make([]byte, 32)}})
			auth, err := consoleauth.New(context.Background(), consoleauth.Options{Kit: kit, Keys: keys, Redis: rdb,
				Prefix: "dsar:console:" + testenv.Queue(b, r) + ":", IdleTimeout: time.Hour, MaxAge: time.Hour, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(handlers.New(handlers.Deps{Store: st, Queue: nopQueue{}, Index: idx, Keys: keys,
				Log: slog.New(slog.DiscardHandler), Pages: kit, ConsoleAuth: auth}))
			b.Cleanup(srv.Close)
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			get := func(path string, auth bool) time.Duration {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				if auth {
					req.Header.Set("Authorization", "Bearer "+agentKey)
				}
				t := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
				}
				return time.Since(t)
			}
			signIn(b, c, srv.URL)
			var list, queue, dashboard, portal time.Duration
			for b.Loop() {
				list += get("/v1/requests?limit=50", true)
				queue += get("/console", false)
				dashboard += get("/console/dashboard", false)
				portal += get("/privacy", false)
			}
			k := float64(b.N)
			b.ReportMetric(float64(list.Microseconds())/1000/k, "api-list-ms")
			b.ReportMetric(float64(queue.Microseconds())/1000/k, "queue-ms")
			b.ReportMetric(float64(dashboard.Microseconds())/1000/k, "dashboard-ms")
			b.ReportMetric(float64(queue)/float64(list), "queue/api-list")
			b.ReportMetric(float64(dashboard)/float64(list), "dashboard/api-list")
			b.ReportMetric(float64(portal)/float64(list), "portal/api-list")
		})
	}
}

var csrfInPage = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs c in to the console with the agent's key.
func signIn(b *testing.B, c *http.Client, base string) {
	b.Helper()
	resp, err := c.Get(base + "/console/sign-in")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInPage.FindSubmatch(page)
	if m == nil {
		b.Fatal("no CSRF token on the sign-in page")
	}
	resp, err = c.PostForm(base+"/console/sign-in", url.Values{"key": {agentKey}, "csrf": {string(m[1])}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK { // the queue, after the redirect
		b.Fatalf("sign-in: %d", resp.StatusCode)
	}
}

// nopQueue hands nothing on: the pages read only.
type nopQueue struct{}

func (nopQueue) EnqueueFanout(context.Context, string) error         { return nil }
func (nopQueue) EnqueueJob(context.Context, string) error            { return nil }
func (nopQueue) EnqueueNotice(context.Context, string, string) error { return nil }
