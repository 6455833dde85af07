package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/redis"
	"github.com/dsar-project/dsar/internal/testenv"
)

func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{}) // the fault tests' dial failures are expected
	// A client that failed to dial probes the server in the background and
	// sees its pool closed only after its next second of sleep.
	testenv.Main(m, func() { time.Sleep(1500 * time.Millisecond) })
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// cacheSpec is a connectors file for a cache whose keys all start with ${P},
// the test's own prefix.
const cacheSpec = `
connectors:
  - name: cache
    type: redis
    addr: ${ADDR}
    scan_count: 50
    keys:
      - name: profiles
        pattern: "${P}:profile:{email}"
        provide: {customer_id: id}
        erase: delete
        opt_out: {set: {marketing: "no"}}
      - name: email_index
        pattern: "${P}:email:{email}"
        provide: {customer_id: $value}
        erase: delete
      - name: user_data
        pattern: "${P}:user:{customer_id}:*"
        erase: delete
      - name: sessions
        pattern: "${P}:session:{customer_id}"
        erase: {hdel: [ip, user_agent]}
    segments:
      - name: segments
        key: "${P}:segment:*"
        member: "customer:{customer_id}"
      - name: newsletter
        key: "${P}:newsletter"
        member: "{email}"
`

// server returns the test Redis, a client to it closed when the test ends,
// and a key prefix of the test's own whose keys are deleted when it ends.
func server(t *testing.T) (testenv.Redis, *goredis.Client, string) {
	t.Helper()
	srv := testenv.RedisServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	p := testenv.Name("dsar_rtest")
	t.Cleanup(func() {
		dropPrefix(rdb, p)
		_ = rdb.Close()
	})
	return srv, rdb, p
}

// dropPrefix deletes the keys that start with p:, and only those.
func dropPrefix(rdb *goredis.Client, p string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, p+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
}

// parse builds the connectors of spec, expanding env, and closes them when
// the test ends.
func parse(t *testing.T, spec string, env map[string]string) (*connectors.Registry, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	reg, err := connectors.Parse(t.Context(), []byte(spec), connectors.Types{redis.Type: redis.Factory(connectors.Deps{})}, lookup)
	if reg != nil {
		t.Cleanup(func() { _ = reg.Close() })
	}
	return reg, err
}

// load builds the one connector of spec, named cache.
func load(t *testing.T, spec string, env map[string]string) connectors.Connector {
	t.Helper()
	reg, err := parse(t, spec, env)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, ok := reg.Lookup("cache")
	if !ok {
		t.Fatalf("no connector cache; have %v", reg.Names())
	}
	return c
}

// The people of the cache: Ada is the subject; Grace shares segments with
// her.
const (
	adaEmail   = "ada@example.com"
	adaID      = "c-1001"
	graceEmail = "grace@example.com"
	graceID    = "c-2002"
)

// seedCache writes Ada's and Grace's data under prefix p.
func seedCache(ctx context.Context, t *testing.T, rdb *goredis.Client, p string) {
	t.Helper()
	k := func(s string) string { return p + ":" + s }
	pipe := rdb.Pipeline()
	pipe.HSet(ctx, k("profile:"+adaEmail), "id", adaID, "name", "Ada Lovelace", "marketing", "yes")
	pipe.HSet(ctx, k("profile:"+graceEmail), "id", graceID, "name", "Grace Hopper", "marketing", "yes")
	pipe.Set(ctx, k("email:"+adaEmail), adaID, 0)
	pipe.Set(ctx, k("email:"+graceEmail), graceID, 0)
	pipe.RPush(ctx, k("user:"+adaID+":cart"), "book", "lamp")
	pipe.Set(ctx, k("user:"+adaID+":address"), "12 Engine Row", 0)
	pipe.SAdd(ctx, k("user:"+adaID+":tags"), "poet", "analyst")
	pipe.ZAdd(ctx, k("user:"+adaID+":scores"), goredis.Z{Member: "chess", Score: 1}, goredis.Z{Member: "go", Score: 2.5})
	pipe.XAdd(ctx, &goredis.XAddArgs{Stream: k("user:" + adaID + ":events"), ID: "1-1", Values: []string{"event", "login"}})
	pipe.RPush(ctx, k("user:"+graceID+":cart"), "ship")
	pipe.Set(ctx, k("user:"+graceID+":address"), "1 Navy Way", 0)
	pipe.HSet(ctx, k("session:"+adaID), "ip", "10.0.0.1", "user_agent", "Firefox", "started", "2026")
	pipe.HSet(ctx, k("session:"+graceID), "ip", "10.0.0.2", "user_agent", "Safari", "started", "2025")
	pipe.SAdd(ctx, k("segment:vip"), "customer:"+adaID, "customer:"+graceID)
	pipe.ZAdd(ctx, k("segment:beta"), goredis.Z{Member: "customer:" + adaID, Score: 1.5}, goredis.Z{Member: "customer:" + graceID, Score: 2})
	pipe.SAdd(ctx, k("segment:navy"), "customer:"+graceID)
	pipe.Set(ctx, k("segment:count"), "3", 0) // no set: left alone
	pipe.SAdd(ctx, k("newsletter"), adaEmail, graceEmail)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// cacheFixture seeds and inspects the cache under prefix p.
func cacheFixture(t *testing.T, rdb *goredis.Client, p string) *connectortest.Fixture {
	k := func(s string) string { return p + ":" + s }
	b := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	hashIs := func(ctx context.Context, key string, want map[string]string) bool {
		got, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatalf("hgetall: %v", err)
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	}
	isMember := func(ctx context.Context, key, m string) bool {
		ok, err := rdb.SIsMember(ctx, key, m).Result()
		if err != nil {
			t.Fatalf("sismember: %v", err)
		}
		return ok
	}
	score := func(ctx context.Context, key, m string) (float64, bool) {
		s, err := rdb.ZScore(ctx, key, m).Result()
		return s, err == nil
	}
	adaMemberships := func(ctx context.Context) int {
		_, inBeta := score(ctx, k("segment:beta"), "customer:"+adaID)
		return b(isMember(ctx, k("segment:vip"), "customer:"+adaID)) + b(inBeta) + b(isMember(ctx, k("newsletter"), adaEmail))
	}
	return &connectortest.Fixture{
		Subject:     connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}},
		Resolved:    []connectors.Identity{{Kind: "customer_id", Value: adaID}},
		OtherValues: []string{graceEmail, graceID, "Grace Hopper", "1 Navy Way", "ship", "10.0.0.2", "Safari"},
		Seed:        func(ctx context.Context) { seedCache(ctx, t, rdb, p) },
		SubjectRecords: func(ctx context.Context) int {
			n, err := rdb.Exists(ctx, k("profile:"+adaEmail), k("email:"+adaEmail)).Result()
			if err != nil {
				t.Fatalf("exists: %v", err)
			}
			keys, err := rdb.Keys(ctx, k("user:"+adaID+":*")).Result() // the test's own few keys
			if err != nil {
				t.Fatalf("keys: %v", err)
			}
			personal, err := rdb.HExists(ctx, k("session:"+adaID), "ip").Result()
			if err != nil {
				t.Fatalf("hexists: %v", err)
			}
			return int(n) + len(keys) + b(personal) + adaMemberships(ctx)
		},
		OtherRecords: func(ctx context.Context) int {
			cart, _ := rdb.LRange(ctx, k("user:"+graceID+":cart"), 0, -1).Result()
			addr, _ := rdb.Get(ctx, k("user:"+graceID+":address")).Result()
			email, _ := rdb.Get(ctx, k("email:"+graceEmail)).Result()
			beta, inBeta := score(ctx, k("segment:beta"), "customer:"+graceID)
			count, _ := rdb.Get(ctx, k("segment:count")).Result()
			return b(hashIs(ctx, k("profile:"+graceEmail), map[string]string{"id": graceID, "name": "Grace Hopper", "marketing": "yes"})) +
				b(email == graceID) + b(fmt.Sprint(cart) == "[ship]") + b(addr == "1 Navy Way") +
				b(hashIs(ctx, k("session:"+graceID), map[string]string{"ip": "10.0.0.2", "user_agent": "Safari", "started": "2025"})) +
				b(isMember(ctx, k("segment:vip"), "customer:"+graceID)) + b(inBeta && beta == 2) +
				b(isMember(ctx, k("segment:navy"), "customer:"+graceID)) + b(isMember(ctx, k("newsletter"), graceEmail)) +
				b(count == "3")
		},
		InSegment: func(ctx context.Context) bool { return adaMemberships(ctx) > 0 },
		OptedOut: func(ctx context.Context) bool {
			v, _ := rdb.HGet(ctx, k("profile:"+adaEmail), "marketing").Result()
			return v == "no"
		},
		Export: map[string]int64{"profiles": 1, "email_index": 1, "user_data": 5, "sessions": 1, "segments": 2, "newsletter": 1},
		Erase:  map[string]int64{"profiles": 1, "email_index": 1, "user_data": 5, "sessions": 1, "segments": 2, "newsletter": 1},
		OptOut: map[string]int64{"profiles": 1, "segments": 2, "newsletter": 1},
	}
}

// goSpec is cacheSpec's connector built in Go, against addr, for the fault
// tests (loading the file pings the server, which these connectors must
// not reach).
func goSpec(addr, p string) redis.Spec {
	del := &redis.Strategy{Kind: redis.StrategyDelete}
	return redis.Spec{
		Addr: addr,
		Keys: []redis.KeySpec{
			{Name: "profiles", Pattern: p + ":profile:{email}", Provide: map[string]string{"customer_id": "id"}, Erase: del,
				OptOut: &redis.Strategy{Kind: redis.StrategySet, Set: map[string]string{"marketing": "no"}}},
			{Name: "user_data", Pattern: p + ":user:{customer_id}:*", Erase: del},
		},
		Segments: []redis.SegmentSpec{{Name: "segments", Key: p + ":segment:*", Member: "customer:{customer_id}"}},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			srv, rdb, p := server(t)
			c := load(t, cacheSpec, map[string]string{"ADDR": srv.Addr, "P": p})
			return c, cacheFixture(t, rdb, p)
		},
		Fault: func(t *testing.T, f connectortest.Fault) connectors.Connector {
			switch f {
			case connectortest.Unreachable:
				return build(t, goSpec(testenv.ClosedAddr(t), "p"))
			case connectortest.Rejected:
				srv, rdb, p := server(t)
				if !srv.Real {
					return nil // the in-process stand-in has no ACL users
				}
				spec := goSpec(srv.Addr, p)
				spec.Username, spec.Password = aclUser(t, rdb, p), "not-the-password"
				return build(t, spec)
			}
			return nil // Redis has no rate limit to report
		},
	})
}

// build makes a connector from a spec built in Go, closed when the test
// ends.
func build(t *testing.T, spec redis.Spec) *redis.Connector {
	t.Helper()
	c, err := redis.New("cache", spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// aclUser creates an ACL user of the test's own, allowed everything on the
// keys under p, with a password nobody is told; it is deleted when the test
// ends.
func aclUser(t *testing.T, rdb *goredis.Client, p string) string {
	t.Helper()
	user := testenv.Name("dsar_rtest_user")
	if err := rdb.Do(t.Context(), "ACL", "SETUSER", user, "on", ">"+testenv.Name("pw"), "~"+p+":*", "+@all").Err(); err != nil {
		t.Fatalf("acl setuser: %v", err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	return user
}

// TestLoadRejected: a connector whose credentials the server refuses, or
// whose server does not answer, stops the load with the connector's line;
// refused credentials are permanent.
func TestLoadRejected(t *testing.T) {
	t.Parallel()
	srv, rdb, p := server(t)
	spec := strings.Replace(cacheSpec, "addr: ${ADDR}", "addr: ${ADDR}\n    username: ${USER}\n    password: ${PW}", 1)
	if srv.Real {
		user := aclUser(t, rdb, p)
		_, err := parse(t, spec, map[string]string{"ADDR": srv.Addr, "P": p, "USER": user, "PW": "wrong"})
		if err == nil || !strings.Contains(err.Error(), "line 3:") || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("load with a wrong password: %v; want line 3 and WRONGPASS", err)
		}
	}
	_, err := parse(t, cacheSpec, map[string]string{"ADDR": testenv.ClosedAddr(t), "P": p})
	if err == nil || !strings.Contains(err.Error(), "line 3:") || !strings.Contains(err.Error(), "ping redis") {
		t.Errorf("load against a closed port: %v; want line 3 and the ping's failure", err)
	}
}

// TestRejectedPermanent: an action with credentials the server refuses is
// connectors.Permanent; one whose ACL user may not run a command too.
func TestRejectedPermanent(t *testing.T) {
	t.Parallel()
	srv, rdb, p := server(t)
	if !srv.Real {
		t.Skip("the in-process stand-in has no ACL users")
	}
	user := aclUser(t, rdb, p)
	pw := testenv.Name("pw")
	// May read, not write.
	if err := rdb.Do(t.Context(), "ACL", "SETUSER", user, "resetpass", ">"+pw, "-@all", "+@read", "+ping", "+scan", "+type", "+hello", "+auth").Err(); err != nil {
		t.Fatal(err)
	}
	seedCache(t.Context(), t, rdb, p)
	spec := goSpec(srv.Addr, p)
	spec.Username, spec.Password = user, pw
	c := build(t, spec)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "customer_id", Value: adaID}}}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the right password: %v", err)
	}
	_, err := c.Erase(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Erase by a user who may only read: %v; want NOPERM", err)
	}
	if !isPermanent(err) {
		t.Errorf("Erase by a user who may only read: %v; want connectors.Permanent", err)
	}
	if strings.Contains(err.Error(), adaEmail) || strings.Contains(err.Error(), adaID) {
		t.Errorf("the error quotes the subject: %v", err)
	}
}

func isPermanent(err error) bool { return errors.Is(err, connectors.ErrPermanent) }
