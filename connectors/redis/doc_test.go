package redis_test

import (
	"context"
	"crypto/rand"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
	"github.com/dsar-project/dsar/internal/testenv"
)

// docYAML returns the first example connectors file (a "```yaml connectors"
// block) of the markdown file at path.
func docYAML(t *testing.T, path string) string {
	t.Helper()
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml connectors\n(.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatalf("%s has no ```yaml connectors block", path)
	}
	return string(m[1])
}

// TestDocExample loads the example of docs/connectors/redis.md through the
// catalog, against the test Redis, and runs it for a person seeded the way
// the example describes: resolution from an email, export, opt-out and
// erasure, each with what the page says it does.
func TestDocExample(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := testenv.RedisServer(t)
	// A database of the test's own choosing, to keep the example's
	// unprefixed keys (newsletter, segment:*) away from other tests;
	// the test removes only what it wrote.
	n, err := rand.Int(rand.Reader, big.NewInt(15))
	if err != nil {
		t.Fatal(err)
	}
	db := int(n.Int64()) + 1
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DB: db})
	t.Cleanup(func() { _ = rdb.Close() })

	id := testenv.Name("c")
	email := testenv.Name("ada") + "@example.com"
	keys := []string{"profile:" + email, "email:" + email, "user:" + id + ":cart", "session:" + id, "segment:" + id}
	t.Cleanup(func() {
		ctx := context.Background()
		rdb.Del(ctx, keys...)
		rdb.SRem(ctx, "newsletter", email, "someone-"+email)
	})
	pipe := rdb.Pipeline()
	pipe.HSet(ctx, keys[0], "id", id, "name", "Ada Lovelace", "marketing", "yes")
	pipe.Set(ctx, keys[1], id, 0)
	pipe.RPush(ctx, keys[2], "book")
	pipe.HSet(ctx, keys[3], "ip", "10.0.0.1", "user_agent", "Firefox", "started", "2026")
	pipe.SAdd(ctx, keys[4], "customer:"+id, "customer:someone-else")
	pipe.SAdd(ctx, "newsletter", email, "someone-"+email)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	file := docYAML(t, "../../docs/connectors/redis.md")
	env := map[string]string{"CACHE_REDIS_URL": "redis://" + srv.Addr + "/" + strconv.Itoa(db)}
	reg, err := connectors.Parse(ctx, []byte(file), catalog.Types(connectors.Deps{}), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the docs' example does not load: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	c, ok := reg.Lookup("cache")
	if !ok {
		t.Fatalf("the docs' example has no connector cache: %v", reg.Names())
	}

	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: email}}}
	ids, err := c.(connectors.Resolver).Resolve(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0].Kind != "customer_id" || ids[0].Value != id {
		t.Fatalf("Resolve = %v; want the customer id", ids)
	}
	s.Identities = append(s.Identities, ids...)

	for _, step := range []struct {
		action connectors.Action
		want   map[string]int64
	}{
		{connectors.ActionExport, map[string]int64{"profiles": 1, "email_index": 1, "user_data": 1, "sessions": 1, "segments": 1, "newsletter": 1}},
		{connectors.ActionOptOut, map[string]int64{"profiles": 1, "segments": 1, "newsletter": 1}},
		{connectors.ActionErase, map[string]int64{"profiles": 1, "email_index": 1, "user_data": 1, "sessions": 1}},
		{connectors.ActionErase, map[string]int64{}},
	} {
		var recs records
		res, err := connectors.Run(ctx, c, step.action, s, &recs)
		if err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		got := map[string]int64{}
		for _, col := range res.Collections {
			if col.Records != 0 {
				got[col.Name] = col.Records
			}
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: records per collection (-want +got):\n%s", step.action, diff)
		}
	}
	left, err := rdb.HGetAll(ctx, "session:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"started": "2026"}, left); diff != "" {
		t.Errorf("the session after erasure (-want +got):\n%s", diff)
	}
	if n, _ := rdb.SCard(ctx, keys[4]).Result(); n != 1 {
		t.Errorf("the segment holds %d members after erasure; want the other one", n)
	}
	if ok, _ := rdb.SIsMember(ctx, "newsletter", "someone-"+email).Result(); !ok {
		t.Error("the other newsletter member was removed")
	}
}
