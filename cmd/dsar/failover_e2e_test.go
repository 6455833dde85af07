package main

// Redis failover tests (docs/reliability.md#redis-failover): the built
// binary on Redis Sentinel and on Redis Cluster, each a set of
// redis-server processes of the test's own on loopback, their master
// killed with SIGKILL while requests are filed and carried out.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/internal/testenv"
)

// TestFailoverSentinel: dsar dev on a master, a replica and three
// sentinels (DSAR_REDIS_SENTINELS); the master is killed with SIGKILL
// while 200 deletions are filed and carried out. See failover.
func TestFailoverSentinel(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	s := testenv.StartSentinels(t)
	topology := map[string]string{"DSAR_REDIS_SENTINELS": strings.Join(s.Addrs, ","), "DSAR_REDIS_MASTER_NAME": s.MasterName}
	failover(t, "sentinel", topology, func() string {
		s.KillMaster()
		return s.MasterAddr()
	}, func(ctx context.Context, killed string) error {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0]})
		defer c.Close()
		addr, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err == nil && strings.Join(addr, ":") == killed {
			return fmt.Errorf("the sentinels still name the killed master %s", killed)
		}
		return err
	})
}

// TestFailoverCluster: dsar dev on a Redis Cluster of three masters, each
// with a replica (DSAR_REDIS_CLUSTER_ADDRS); the master holding the main
// queue's slot is killed with SIGKILL while 200 deletions are filed and
// carried out. The connector's max_rate and max_concurrency count in the
// cluster too. See failover.
func TestFailoverCluster(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	c := testenv.StartCluster(t)
	topology := map[string]string{"DSAR_REDIS_CLUSTER_ADDRS": strings.Join(c.Addrs, ",")}
	failover(t, "cluster", topology, func() string {
		return c.KillMasterOf("asynq:{dsar}:pending") // the main queue's keys, hash tag {dsar}
	}, func(ctx context.Context, killed string) error {
		n := redis.NewClient(&redis.Options{Addr: c.Addrs[0]})
		if c.Addrs[0] == killed {
			n = redis.NewClient(&redis.Options{Addr: c.Addrs[1]})
		}
		defer n.Close()
		info, err := n.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("the cluster is not ok after the failover:\n%s", info)
		}
		return err
	})
}

// failover runs dsar dev (embedded store, a webhook connector, mail to a
// test SMTP server) on the Redis topology given (its DSAR_REDIS_*
// settings), files 200 deletions from 4 clients (about 25 a second), each
// with an Idempotency-Key and retried after a failed exchange, and calls kill
// (which kills the master and returns its address) once 60 are filed
// and 10 subjects erased.
// Every deletion must complete with its one job succeeded (none failed
// for having run twice), each filed once, every subject erased at the
// receiver and sent its completion notice; after, check must pass (the
// topology's own view of the failover). A probe client of the same
// settings (config.Redis, as dsar's) writes every 20 ms, timing the
// first write that succeeds after the kill.
func failover(t *testing.T, name string, topology map[string]string, kill func() string, check func(ctx context.Context, killed string) error) {
	const n, killAfter = 200, 60
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	crm := newReceiver("crm", seed)
	crm.delay = func() time.Duration { return time.Duration(10+crm.rnd.IntN(40)) * time.Millisecond }
	addrs := emails("ha-"+name+"-", n)
	for _, e := range addrs {
		crm.held[e] = 2
	}
	srv := crm.start(t)
	dir := t.TempDir()
	// max_rate and max_concurrency: the connector limits count in this
	// Redis too (workers.RateLimiter, workers.SlotCounter).
	conn := webhookConnector("crm", srv.URL) + "    max_rate: 1000/s\n    max_concurrency: 3\n"
	var env []string
	for _, kv := range faultEnv(t, dir, testenv.Redis{}, "dsar", conn) {
		if !strings.HasPrefix(kv, "DSAR_REDIS_ADDR=") {
			env = append(env, kv)
		}
	}
	for k, v := range topology {
		env = append(env, k+"="+v)
	}
	env = append(env, "DSAR_WORKER_CONCURRENCY=4",
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=none",
		"DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password, "DSAR_SMTP_FROM=Privacy <privacy@shop.example>")

	cfg, err := config.Load(func(k string) (string, bool) { v, ok := topology[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfg.Redis("")
	if err != nil {
		t.Fatal(err)
	}
	probe := rc.NewClient()
	t.Cleanup(func() {
		_ = probe.Close()
		// go-redis's pool of a node that stopped answering dials it
		// again each second until it sees the pool closed: let that end
		// before the leak check.
		time.Sleep(1100 * time.Millisecond)
	})

	p := startDSAR(t, env, "dev")
	start := time.Now()

	// The probe: kills and writes, noting the first write that succeeds
	// after the kill and the failed ones.
	var killedAt atomic.Pointer[time.Time]
	firstOK := make(chan time.Duration, 1)
	var probeFails atomic.Int64
	probeCtx, stopProbe := context.WithCancel(context.Background())
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for i := 0; probeCtx.Err() == nil; i++ {
			err := probe.Set(probeCtx, "dsar:failover-probe:{dsar}", i, time.Minute).Err()
			if k := killedAt.Load(); k != nil {
				if err != nil {
					probeFails.Add(1)
				} else {
					select {
					case firstOK <- time.Since(*k):
					default:
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stopProbe(); <-probeDone }()

	ids := make([]string, n)
	var filed, retries atomic.Int64
	var next atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				for try := 0; ; try++ {
					a, err := apiDo(context.Background(), "POST", p.base+"/v1/requests", requestBody("deletion", "gdpr", addrs[i]), fmt.Sprintf("ha-%s-%d", name, i))
					var r request
					if err == nil && a.status == http.StatusAccepted && json.Unmarshal(a.body, &r) == nil {
						ids[i] = r.ID
						break
					}
					if err == nil && a.status < 500 {
						t.Errorf("file deletion %d: %d %s", i, a.status, a.body)
						return
					}
					if try > 600 {
						t.Errorf("file deletion %d: still failing after a minute: %v %d %s", i, err, a.status, a.body)
						return
					}
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
				if filed.Add(1) == killAfter {
					once.Do(func() { close(reached) })
				}
				// About 25 a second in all: filing goes on through the
				// failover.
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	select {
	case <-reached:
	case <-time.After(time.Minute):
		t.Fatalf("only %d deletions filed in a minute\n%s", filed.Load(), p.stderr)
	}
	// And once work is under way: some subjects erased, more in flight.
	for erased := 0; erased < 10; {
		crm.mu.Lock()
		erased = n - len(crm.held)
		crm.mu.Unlock()
		if time.Since(start) > time.Minute {
			t.Fatalf("only %d subjects erased in a minute\n%s", erased, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	now := time.Now()
	killed := kill()
	killedAt.Store(&now)
	t.Logf("%s master %s killed %s after the start, %d filed", name, killed, now.Sub(start).Round(time.Millisecond), filed.Load())
	filedAtKill := filed.Load()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	allFiled := time.Since(now)
	var seen time.Duration
	select {
	case seen = <-firstOK:
	case <-time.After(time.Minute):
		t.Fatalf("no write through the %s settings succeeded within a minute of the kill\n%s", name, p.stderr)
	}
	// A task whose end asynq could not record while the master was down
	// stays active until asynq's recoverer hands it back, up to about
	// 90 s after (docs/reliability.md#redis-failover).
	got := settled(t, func() string { return p.base }, ids, 3*time.Minute)
	completedIn := time.Since(now)
	lost, failed := 0, 0
	for _, id := range ids {
		r := got[id]
		if r.Status != "completed" {
			lost++
		}
		for _, j := range r.Jobs {
			if j.Status != "succeeded" {
				failed++
			}
		}
		if r.Status != "completed" || len(r.Jobs) != 1 || r.Jobs[0].Status != "succeeded" {
			t.Errorf("deletion %s: %s, jobs %+v", id, r.Status, r.Jobs)
		}
	}
	if all := stored(t, p.base); len(all) != n {
		t.Errorf("the store holds %d requests, want %d: a retried filing was filed twice", len(all), n)
	}
	crm.mu.Lock()
	left := len(crm.held)
	crm.mu.Unlock()
	if left != 0 {
		t.Errorf("%d subjects still have data at the receiver", left)
	}
	// Every completion notice sent, each request's to its subject.
	var notices map[string]int
	var kinds map[string]int
	deadline := time.Now().Add(time.Minute)
	for {
		notices, kinds = map[string]int{}, map[string]int{}
		for _, m := range mailbox.Messages() {
			data := string(m.Data)
			for _, kind := range []string{"receipt", "completed"} {
				if strings.Contains(data, "X-DSAR-Kind: "+kind+"\r\n") {
					kinds[kind]++
				}
			}
			for i, id := range ids {
				if strings.Contains(data, "X-DSAR-Request-Id: "+id+"\r\n") && strings.Contains(data, "X-DSAR-Kind: completed\r\n") &&
					len(m.To) == 1 && m.To[0] == addrs[i] {
					notices[id]++
				}
			}
		}
		if len(notices) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(notices) != n {
		t.Errorf("%d of %d completion notices sent within a minute of completion (notices by kind: %v)", len(notices), n, kinds)
	}
	twice := 0
	for _, c := range notices {
		if c > 1 {
			twice++
		}
	}
	consoleSession(t, p.base)
	portalFilings(t, p.base)
	if err := check(context.Background(), killed); err != nil {
		t.Error(err)
	}
	if probeFails.Load() == 0 && seen < 500*time.Millisecond {
		t.Errorf("the probe never failed after the kill and wrote again within %s: was the master killed?", seen)
	}
	rerun, calls := crm.rerun()
	log := p.stderr.String()
	unqueued := strings.Count(log, `"request stored but not enqueued; the sweep will retry"`)
	t.Logf("FIGURES %s failover: %d deletions (master killed with %d filed), %d filing retries, %d stored but not enqueued; sweeps re-drove %v; "+
		"first probe write after the kill %s (%d probe writes failed); "+
		"all filed %s and all completed %s after the kill; not completed %d; jobs not succeeded %d; receiver: %d calls, %d jobs called more than once; notices %v, %d requests notified twice",
		name, n, filedAtKill, retries.Load(), unqueued, sweepRedrove(t, log), seen.Round(time.Millisecond), probeFails.Load(), allFiled.Round(time.Millisecond), completedIn.Round(time.Millisecond),
		lost, failed, calls, rerun, kinds, twice)
}

// consoleSession signs in to the console with the dev API key and opens it
// with the session cookie: the sign-in tries' count and the session are
// kept in Redis (handlers/consolepage/consoleauth).
func consoleSession(t *testing.T, base string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string) {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, page := get("/console/sign-in")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", page)
	}
	resp, err := c.PostForm(base+"/console/sign-in", url.Values{"csrf": {m[1]}, "key": {apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console sign-in: %d, want 303", resp.StatusCode)
	}
	if code, page := get("/console"); code != http.StatusOK || strings.Contains(page, `id="sign-in"`) {
		t.Errorf("the console with the session: %d, sign-in page %v", code, strings.Contains(page, `id="sign-in"`))
	}
}

// portalFilings files 3 access requests on the portal's API from this
// address: each is counted by the per-address and per-identity rate limits
// in Redis (handlers/httpkit's, ulule/limiter's Lua scripts).
func portalFilings(t *testing.T, base string) {
	t.Helper()
	for i := range 3 {
		resp, err := http.Post(base+"/v1/portal/requests", "application/json",
			strings.NewReader(fmt.Sprintf(`{"type":"access","regulation":"gdpr","subject":{"email":"portal%d@example.com"}}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("RateLimit-Limit") == "" {
			t.Errorf("portal filing %d: %d, RateLimit-Limit %q; want 202 counted by the rate limits", i, resp.StatusCode, resp.Header.Get("RateLimit-Limit"))
		}
	}
}
