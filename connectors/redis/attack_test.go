package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
)

// attackSpec finds people by email, by a glob pattern, an exact key and a
// segment pattern.
const attackSpec = `
connectors:
  - name: cache
    type: redis
    addr: ${ADDR}
    scan_count: 20
    keys:
      - name: user_data
        pattern: "${P}:user:{email}:*"
        provide: {customer_id: id}
        erase: delete
      - name: profiles
        pattern: "${P}:profile:{email}"
        erase: {hdel: [email]}
        opt_out: {set: {marketing: "no"}}
    segments:
      - name: segments
        key: "${P}:seg:*"
        member: "m:{email}"
`

// attackValues are identities that would reach other people's keys if they
// entered a SCAN pattern unescaped, or break a naive template.
var attackValues = []string{
	"*", "a*@x", "?", "a?@x", "[a-z]@x", "[", "]", "[]", `\`, `a\*@x`, `\*`, `a\`,
	"{customer_id}", "{{", "}", "{", "line\nbreak", "a*", "*@x", "^", "a[^b]@x",
	strings.Repeat("*", 5000), strings.Repeat("a", 100_000) + "*",
}

// bystanders are other people's identities, each reachable by some attack
// value's unescaped pattern.
var bystanders = []string{"ab@x", "a@x", "aa@x", "ax@x", "b@x", "x", "a", "abc", "a-z@x", "ab", `a\b@x`, "zzz"}

// seedPeople gives each of ids a key under the glob pattern (a hash whose
// id field is "id-" and the identity's index), a profile hash, and a
// membership of two segments.
func seedPeople(ctx context.Context, t *testing.T, rdb *goredis.Client, p string, ids []string) {
	t.Helper()
	pipe := rdb.Pipeline()
	for i, id := range ids {
		pipe.HSet(ctx, p+":user:"+id+":1", "id", fmt.Sprintf("id-%d", i), "n", i)
		pipe.HSet(ctx, p+":profile:"+id, "email", id, "marketing", "yes")
		pipe.SAdd(ctx, p+":seg:set", "m:"+id)
		pipe.ZAdd(ctx, p+":seg:zset", goredis.Z{Member: "m:" + id, Score: float64(i)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// present reports, for each of ids as seedPeople seeded them, whether all
// its data is as seeded; from is the index of the first one to check.
func present(ctx context.Context, t *testing.T, rdb *goredis.Client, p string, ids []string, from int) []bool {
	t.Helper()
	out := make([]bool, len(ids))
	for i, id := range ids {
		if i < from {
			out[i] = true
			continue
		}
		user, err := rdb.HGet(ctx, p+":user:"+id+":1", "id").Result()
		if err != nil && err != goredis.Nil {
			t.Fatal(err)
		}
		prof, _ := rdb.HGet(ctx, p+":profile:"+id, "email").Result()
		mk, _ := rdb.HGet(ctx, p+":profile:"+id, "marketing").Result()
		inSet, _ := rdb.SIsMember(ctx, p+":seg:set", "m:"+id).Result()
		_, zerr := rdb.ZScore(ctx, p+":seg:zset", "m:"+id).Result()
		out[i] = user == fmt.Sprintf("id-%d", i) && prof == id && mk == "yes" && inSet && zerr == nil
	}
	return out
}

// records is a RecordWriter that keeps each record as decoded JSON.
type records []map[string]any

func (r *records) WriteRecord(_ context.Context, _ string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = append(*r, m)
	return nil
}

// TestGlobAttack: a subject whose email holds glob characters, braces, a
// newline, or 100 kB, reaches their own keys and memberships, and no one
// else's, in every action.
func TestGlobAttack(t *testing.T) {
	t.Parallel()
	for i, attacker := range attackValues {
		t.Run(fmt.Sprintf("%d_%.12q", i, attacker), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			srv, rdb, p := server(t)
			c := load(t, attackSpec, map[string]string{"ADDR": srv.Addr, "P": p})
			var others []string
			for _, id := range append(append([]string(nil), attackValues...), bystanders...) {
				if id != attacker {
					others = append(others, id)
				}
			}
			everyone := append([]string{attacker}, others...)
			seedPeople(ctx, t, rdb, p, everyone)
			s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: attacker}}}

			ids, err := c.(connectors.Resolver).Resolve(ctx, s)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(ids) != 1 || ids[0].Value != "id-0" {
				t.Errorf("Resolve = %v; want only id-0, the subject's", ids)
			}

			var recs records
			res, err := c.(connectors.Exporter).Export(ctx, s, &recs)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			var keys []string
			for _, r := range recs {
				if k, ok := r["key"].(string); ok {
					keys = append(keys, k)
				} else {
					keys = append(keys, fmt.Sprint(r["segment"], " ", r["member"]))
				}
			}
			sort.Strings(keys)
			want := []string{p + ":profile:" + attacker, p + ":seg:set m:" + attacker, p + ":seg:zset m:" + attacker, p + ":user:" + attacker + ":1"}
			sort.Strings(want)
			if diff := cmp.Diff(want, keys); diff != "" {
				t.Errorf("Export found (-want +got):\n%.2000s", diff)
			}
			if res.Records != 4 {
				t.Errorf("Export reported %d records; want 4", res.Records)
			}

			for _, a := range []connectors.Action{connectors.ActionOptOut, connectors.ActionErase} {
				res, err := connectors.Run(ctx, c, a, s, nil)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				// Opt-out: the profile's flag and two memberships;
				// erasure: the key and the profile's email.
				wantN := map[connectors.Action]int64{connectors.ActionOptOut: 3, connectors.ActionErase: 2}[a]
				if res.Records != wantN {
					t.Errorf("%s reported %d records; want %d: %+v", a, res.Records, wantN, res.Collections)
				}
			}
			for i, ok := range present(ctx, t, rdb, p, everyone, 1) {
				if !ok {
					t.Errorf("the data of %.40q was changed by acting for %.40q", everyone[i], attacker)
				}
			}
			if n, _ := rdb.Exists(ctx, p+":user:"+attacker+":1").Result(); n != 0 {
				t.Error("the subject's own key is still there")
			}
		})
	}
}

// TestEmptyIdentity: an empty identity finds nothing: every collection it
// would search is not_searched, and no one's data changes (user::* would
// otherwise reach keys of no one in particular).
func TestEmptyIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, rdb, p := server(t)
	c := load(t, attackSpec, map[string]string{"ADDR": srv.Addr, "P": p})
	everyone := append([]string{"", "a@x"}, attackValues[:3]...)
	seedPeople(ctx, t, rdb, p, everyone)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ""}, {Kind: "customer_id", Value: ""}}}
	for _, a := range connectors.Actions() {
		if !connectors.Supports(c, a) {
			continue
		}
		var recs records
		res, err := connectors.Run(ctx, c, a, s, &recs)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if res.Records != 0 || len(recs) != 0 {
			t.Errorf("%s for an empty identity: %d records; want 0", a, res.Records)
		}
		for _, col := range res.Collections {
			if col.Outcome != connectors.OutcomeNotSearched || col.Note != "no email known" {
				t.Errorf("%s: collection %s: %s (%q); want not_searched, no email known", a, col.Name, col.Outcome, col.Note)
			}
		}
	}
	ids, err := c.(connectors.Resolver).Resolve(ctx, s)
	if err != nil || len(ids) != 0 {
		t.Errorf("Resolve for an empty identity = %v, %v; want nothing", ids, err)
	}
	for i, ok := range present(ctx, t, rdb, p, everyone, 0) {
		if !ok {
			t.Errorf("the data of %q changed", everyone[i])
		}
	}
}

// TestLiteralBraces: {{ and }} are literal braces (hash tags), and an exact
// pattern reads its key directly, without SCAN.
func TestLiteralBraces(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, rdb, p := server(t)
	spec := "connectors:\n  - name: cache\n    type: redis\n    addr: ${ADDR}\n    keys:\n" +
		"      - pattern: \"{{${P}}}:cart:{customer_id}\"\n        erase: delete\n"
	c := load(t, spec, map[string]string{"ADDR": srv.Addr, "P": p})
	key := "{" + p + "}:cart:42"
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	rdb.RPush(ctx, key, "book")
	var recs records
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "42"}}}
	if _, err := c.(connectors.Exporter).Export(ctx, s, &recs); err != nil {
		t.Fatal(err)
	}
	want := records{{"key": key, "type": "list", "value": []any{"book"}}}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("Export (-want +got):\n%s", diff)
	}
}

// TestRecordShapes: every core type is exported by its shape; bytes that
// are not UTF-8 come as base64 and infinite scores as "inf", so no value is
// lost or breaks the JSON.
func TestRecordShapes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, rdb, p := server(t)
	spec := "connectors:\n  - name: cache\n    type: redis\n    addr: ${ADDR}\n    keys:\n" +
		"      - pattern: \"${P}:u:{customer_id}:*\"\n        erase: delete\n"
	c := load(t, spec, map[string]string{"ADDR": srv.Addr, "P": p})
	k := p + ":u:7:"
	pipe := rdb.Pipeline()
	pipe.Set(ctx, k+"bin", "\xff\xfe", 0)
	pipe.HSet(ctx, k+"hash", "name", "Ada", "\xff", "x")
	pipe.ZAdd(ctx, k+"zset", goredis.Z{Member: "top", Score: math.Inf(1)}, goredis.Z{Member: "low", Score: -0.5})
	pipe.SAdd(ctx, k+"set", "b", "a")
	pipe.XAdd(ctx, &goredis.XAddArgs{Stream: k + "stream", ID: "5-1", Values: []string{"event", "login"}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var recs records
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "7"}}}
	if _, err := c.(connectors.Exporter).Export(ctx, s, &recs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i]["key"].(string) < recs[j]["key"].(string) })
	want := records{
		{"key": k + "bin", "type": "string", "value": map[string]any{"base64": "//4="}},
		{"key": k + "hash", "type": "hash", "value": map[string]any{"name": "Ada", "base64:/w==": "x"}},
		{"key": k + "set", "type": "set", "value": []any{"a", "b"}},
		{"key": k + "stream", "type": "stream", "value": []any{map[string]any{"id": "5-1", "fields": map[string]any{"event": "login"}}}},
		{"key": k + "zset", "type": "zset", "value": []any{map[string]any{"member": "low", "score": -0.5}, map[string]any{"member": "top", "score": "inf"}}},
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("Export (-want +got):\n%s", diff)
	}
}

// TestWrongType: an hdel or set pattern that meets a key that is no hash
// fails for good, without quoting the key, and leaves that key alone.
func TestWrongType(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, rdb, p := server(t)
	spec := "connectors:\n  - name: cache\n    type: redis\n    addr: ${ADDR}\n    keys:\n" +
		"      - pattern: \"${P}:u:{email}:*\"\n        erase: {hdel: [email]}\n        opt_out: {set: {flag: \"1\"}}\n"
	c := load(t, spec, map[string]string{"ADDR": srv.Addr, "P": p})
	key := p + ":u:ada@example.com:list"
	rdb.RPush(ctx, key, "ada@example.com")
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}
	for _, a := range []connectors.Action{connectors.ActionErase, connectors.ActionOptOut} {
		_, err := connectors.Run(ctx, c, a, s, nil)
		if !isPermanent(err) || !strings.Contains(err.Error(), "applies to hashes") {
			t.Errorf("%s on a list: %v; want a permanent error saying it applies to hashes", a, err)
		}
		if err != nil && strings.Contains(err.Error(), "ada@") {
			t.Errorf("%s: the error quotes the key: %v", a, err)
		}
	}
	if n, _ := rdb.LLen(ctx, key).Result(); n != 1 {
		t.Errorf("the list holds %d elements; want it untouched", n)
	}
}
