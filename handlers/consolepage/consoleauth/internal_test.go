package consoleauth

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

func TestCataloguesComplete(t *testing.T) {
	k := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	p := k.Parse(files, "console", "/console")
	if m := p.Missing(); len(m) > 0 {
		t.Fatalf("catalogues incomplete:\n%s", strings.Join(m, "\n"))
	}
	for key := range p.Keys() {
		if !strings.HasPrefix(key, "auth.") && !strings.HasPrefix(key, "common.") {
			t.Errorf("key %q is not the sign-in's (auth.)", key)
		}
	}
}

// deleteBeforeSet is a Redis hook that deletes a key just before a SET of
// it: a sign-out landing between a request's read of its session and its
// refresh.
type deleteBeforeSet struct{ rdb *redis.Client }

func (deleteBeforeSet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (deleteBeforeSet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h deleteBeforeSet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			_ = h.rdb.Del(ctx, cmd.Args()[1].(string)).Err()
		}
		return next(ctx, cmd)
	}
}

// A request in flight while its session is signed out does not bring the
// session back when it refreshes it.
func TestRefreshDoesNotResurrect(t *testing.T) {
	gin.SetMode(gin.TestMode)
	srv := testenv.RedisServer(t)
	plain := redis.NewClient(&redis.Options{Addr: srv.Addr})
	hooked := redis.NewClient(&redis.Options{Addr: srv.Addr})
	hooked.AddHook(deleteBeforeSet{plain})
	t.Cleanup(func() { _ = plain.Close(); _ = hooked.Close() })
	prefix := testenv.Name("dsar_test_console") + ":"
	keys := apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte("s"))})
	kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	a, err := New(context.Background(), Options{Kit: kit, Keys: keys, Redis: plain, Prefix: prefix})
	testenv.Must(t, err)
	id, err := a.create(context.Background(), apikey.Principal{Name: "desk", Role: apikey.RoleAgent}, viaKey)
	testenv.Must(t, err)
	t.Cleanup(func() { _ = plain.Del(context.Background(), a.sessionKey(hashID(id))).Err() })

	a.o.Redis = hooked
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/console", nil)
	c.Request.AddCookie(&http.Cookie{Name: CookieName, Value: id})
	if _, _, ok, _, err := a.load(c, true); ok || err != nil {
		t.Fatalf("load after a concurrent sign-out: ok %v, err %v", ok, err)
	}
	if n := plain.Exists(context.Background(), a.sessionKey(hashID(id))).Val(); n != 0 {
		t.Fatal("the refresh brought the signed-out session back")
	}
}

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/console/requests/r1":          "/console/requests/r1",
		"/console?status=open":          "/console?status=open",
		"/console/%2F%2Fevil":           home,
		"/console/./requests":           home,
		"/console/requests/.":           home,
		"/console/requests/..":          home,
		"/console\t/x":                  home,
		"/console/\x00":                 home,
		"/console/%00":                  home,
		"/console#frag":                 home,
		"/console/sign-out":             home,
		"///evil.example":               home,
		"http:/console":                 home,
		"/console/requests/r1/":         "/console/requests/r1/",
		strings.Repeat("/console", 300): home,
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestLimiterIPv6CountsBySlash64(t *testing.T) {
	srv := testenv.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	l := &limiter{rdb: rdb, prefix: testenv.Name("dsar_test_console") + ":"}
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), l.prefix+"*").Result()
		_ = rdb.Del(context.Background(), keys...).Err()
	})
	ctx := context.Background()
	for i := range triesPerWindow {
		ip := net.ParseIP("2001:db8:1:2::1").To16()
		ip[15] = byte(i + 1) // each from another address of the /64
		if ok, _, err := l.try(ctx, ip.String()); !ok || err != nil {
			t.Fatalf("try %d: %v %v", i, ok, err)
		}
	}
	ok, wait, err := l.try(ctx, "2001:db8:1:2::ffff")
	if ok || err != nil || wait <= 0 || wait > time.Minute {
		t.Fatalf("over the limit: ok %v wait %v err %v", ok, wait, err)
	}
	if ok, _, _ := l.try(ctx, "2001:db8:1:3::1"); !ok {
		t.Fatal("another /64 counted with the first")
	}
}
