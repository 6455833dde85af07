package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis with failover, for the failover tests: a master, a replica and
// three sentinels (StartSentinels), or a Redis Cluster of three masters
// and three replicas (StartCluster), each node a process of the test's
// own on a free loopback port, without persistence, killed when the test
// ends. Timeouts are short (a node is deemed down after 1 s) so that a
// failover takes a few seconds.

// haNode is one redis-server or redis-sentinel process.
type haNode struct {
	port int
	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
}

// Addr is the node's host:port.
func (n *haNode) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// kill sends SIGKILL and waits until the process is gone.
func (n *haNode) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.done
}

// haBinary finds bin on PATH, or skips the test saying why (fails it
// under DSAR_TEST_REQUIRE_REDIS=1, as CI sets).
func haBinary(t testing.TB, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("testenv: no %s on PATH: this failover test runs Redis servers of its own (apt-get install %s)", bin, pkg)
		if os.Getenv("DSAR_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal(msg + " and DSAR_TEST_REQUIRE_REDIS=1")
		}
		t.Skip(msg)
	}
	return path
}

// freePort returns a loopback port free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode runs bin with args, which make it listen on port, and waits
// until it answers PING; it is killed when the test ends.
func startNode(t testing.TB, bin string, port int, args ...string) *haNode {
	t.Helper()
	n := &haNode{port: port, out: &Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, args...) //nolint:gosec // the test's own server
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.kill)
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-n.done:
			t.Fatalf("testenv: %s on %s exited: %s", filepath.Base(bin), n.Addr(), n.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s on %s does not answer: %s", filepath.Base(bin), n.Addr(), n.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// serverArgs are the arguments of a redis-server without persistence on
// port, keeping its files in dir.
func serverArgs(port int, dir string, more ...string) []string {
	return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", dir}, more...)
}

// waitFor polls cond every 50 ms until it holds, failing the test with
// what after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Sentinels is a master, its replica and three sentinels monitoring it.
type Sentinels struct {
	t testing.TB
	// MasterName is the name the sentinels know the master by.
	MasterName string
	// Addrs are the sentinels' host:port.
	Addrs   []string
	master  *haNode
	replica *haNode
}

// StartSentinels starts a master, a replica and three sentinels (quorum
// 2, down after 1 s, failover timeout 3 s) and waits until the replica is
// in sync and every sentinel knows the replica and the other two; all
// are killed when the test ends. The test is skipped, saying why, when
// redis-server or redis-sentinel is not installed (failed under
// DSAR_TEST_REQUIRE_REDIS=1).
func StartSentinels(t testing.TB) *Sentinels {
	t.Helper()
	server := haBinary(t, "redis-server", "redis-server")
	sentinel := haBinary(t, "redis-sentinel", "redis-sentinel")
	s := &Sentinels{t: t, MasterName: "dsar-test"}
	mp, rp := freePort(t), freePort(t)
	s.master = startNode(t, server, mp, serverArgs(mp, t.TempDir())...)
	s.replica = startNode(t, server, rp, serverArgs(rp, t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(mp))...)
	replica := redis.NewClient(&redis.Options{Addr: s.replica.Addr()})
	defer replica.Close()
	waitFor(t, 15*time.Second, "the replica in sync", func() bool {
		info, _ := replica.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	for range 3 {
		dir := t.TempDir()
		port := freePort(t)
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 3000\n"+
			"sentinel parallel-syncs %[3]s 1\n", port, dir, s.MasterName, mp)
		file := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, sentinel, port, file)
		s.Addrs = append(s.Addrs, n.Addr())
	}
	for _, a := range s.Addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a})
		waitFor(t, 20*time.Second, "sentinel "+a+" knowing the replica and the other sentinels", func() bool {
			reps, err1 := c.Replicas(context.Background(), s.MasterName).Result()
			sens, err2 := c.Sentinels(context.Background(), s.MasterName).Result()
			return err1 == nil && err2 == nil && len(reps) == 1 && len(sens) == 2
		})
		_ = c.Close()
	}
	return s
}

// MasterAddr is the address of the first master (the one KillMaster
// kills).
func (s *Sentinels) MasterAddr() string { return s.master.Addr() }

// KillMaster kills the master with SIGKILL; the sentinels then promote
// the replica.
func (s *Sentinels) KillMaster() { s.master.kill() }

// Cluster is a Redis Cluster of three masters, each with a replica.
type Cluster struct {
	t testing.TB
	// Addrs are every node's host:port.
	Addrs []string
	nodes map[string]*haNode
}

// StartCluster starts six cluster nodes (node timeout 1 s), makes them a
// cluster of three masters and three replicas with redis-cli --cluster
// create, and waits until every node reports the cluster ok; all are
// killed when the test ends. The test is skipped, saying why, when
// redis-server or redis-cli is not installed (failed under
// DSAR_TEST_REQUIRE_REDIS=1).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	server := haBinary(t, "redis-server", "redis-server")
	cli := haBinary(t, "redis-cli", "redis-tools")
	c := &Cluster{t: t, nodes: map[string]*haNode{}}
	for range 6 {
		port := freePort(t)
		n := startNode(t, server, port, serverArgs(port, t.TempDir(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000",
			// A replica takes over however long ago it last heard from
			// its master: else, in a cluster just made, it may refuse.
			"--cluster-replica-validity-factor", "0")...)
		c.Addrs = append(c.Addrs, n.Addr())
		c.nodes[n.Addr()] = n
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil { //nolint:gosec // the test's own nodes
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	replicas := 0
	for _, a := range c.Addrs {
		n := redis.NewClient(&redis.Options{Addr: a})
		waitFor(t, 20*time.Second, "cluster node "+a+" reporting cluster_state:ok", func() bool {
			info, _ := n.ClusterInfo(context.Background()).Result()
			return strings.Contains(info, "cluster_state:ok")
		})
		info, _ := n.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "role:slave") {
			replicas++
			waitFor(t, 20*time.Second, "cluster replica "+a+" in sync", func() bool {
				info, _ := n.Info(context.Background(), "replication").Result()
				return strings.Contains(info, "master_link_status:up")
			})
		}
		_ = n.Close()
	}
	if replicas != 3 {
		t.Fatalf("testenv: the cluster has %d replicas, want 3", replicas)
	}
	return c
}

// KillMasterOf kills with SIGKILL the master holding key's slot and
// returns its address; its replica then takes over.
func (c *Cluster) KillMasterOf(key string) string {
	c.t.Helper()
	n := redis.NewClient(&redis.Options{Addr: c.Addrs[0]})
	defer n.Close()
	ctx := context.Background()
	slot, err := n.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	ranges, err := n.ClusterSlots(ctx).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			addr := r.Nodes[0].Addr
			node, ok := c.nodes[addr]
			if !ok {
				c.t.Fatalf("testenv: the master of slot %d, %s, is none of the cluster's nodes", slot, addr)
			}
			node.kill()
			return addr
		}
	}
	c.t.Fatalf("testenv: no node holds slot %d", slot)
	return ""
}
