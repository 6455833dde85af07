package portalpage_test

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/testenv"
)

// A browser over the limit per address gets a page (HTML, the pages'
// headers, Retry-After), not the API's problem JSON.
func TestOverTheLimitPerAddressIsAPage(t *testing.T) {
	r := testenv.RedisServer(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	limits, err := httpkit.NewLimits(rc, "dsar:test:rl:"+hex.EncodeToString(b), "2-M", "100-M", []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p := startPortalLimits(t, nil, limits)
	br := p.browser()
	br.get("/privacy")
	var resp *http.Response
	var page string
	for range 3 {
		resp, page = br.post("/privacy/check", url.Values{"request": {"01a22cc8-4dc8-74bd-a325-df8e79cd5e2e"}, "reference": {"nope"}})
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third form: %d, want 429", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("429 Content-Type %q, want a page:\n%s", ct, page)
	}
	for _, h := range []string{"Content-Security-Policy", "Retry-After", "Cache-Control"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("429 page without %s", h)
		}
	}
	if strings.Count(page, "<h1") != 1 {
		t.Errorf("429 page: want one h1:\n%s", page)
	}
}
