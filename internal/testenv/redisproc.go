package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisProcess is a redis-server process of one test's own, without
// persistence, on a free loopback port: unlike the shared test Redis
// (RedisServer), the test may flush it, stop it and start it again.
type RedisProcess struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
}

// StartRedisProcess starts a RedisProcess, stopped when the test ends. The
// test is skipped, saying why, when no redis-server is installed, unless
// DSAR_TEST_REQUIRE_REDIS=1 (CI), which makes that a failure.
func StartRedisProcess(t testing.TB) *RedisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("DSAR_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal("testenv: no redis-server on PATH and DSAR_TEST_REQUIRE_REDIS=1: this test needs a Redis of its own to flush and stop (apt-get install redis-server)")
		}
		t.Skip("testenv: no redis-server on PATH: this test needs a Redis of its own to flush and stop (apt-get install redis-server)")
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	r := &RedisProcess{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port, the same across Stop and Start.
func (r *RedisProcess) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Redis is the server as tests take it.
func (r *RedisProcess) Redis() Redis { return Redis{Addr: r.Addr(), Real: true} }

// Start starts the server (empty) and waits until it answers.
func (r *RedisProcess) Start() {
	r.t.Helper()
	r.out = &Buffer{}
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", //nolint:gosec // the test's own server
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-r.done:
			r.t.Fatalf("testenv: redis-server on %s exited: %s", r.Addr(), r.out)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("testenv: redis-server on %s does not answer: %s", r.Addr(), r.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (what it held is gone); stopping a stopped server
// does nothing.
func (r *RedisProcess) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// FlushDB empties database 0, the one dsar's queue uses by default.
func (r *RedisProcess) FlushDB() {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		r.t.Fatalf("testenv: flush the test's own redis-server: %v", err)
	}
}

// PauseWrites makes the server hold every command that may write (asynq's
// scripts among them) for d, or until Unpause: clients wait, as they would
// on a Redis that hangs. A client that disconnects meanwhile loses what it
// sent.
func (r *RedisProcess) PauseWrites(d time.Duration) {
	r.t.Helper()
	r.do("CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "WRITE")
}

// Unpause ends a PauseWrites.
func (r *RedisProcess) Unpause() {
	r.t.Helper()
	r.do("CLIENT", "UNPAUSE")
}

func (r *RedisProcess) do(args ...any) {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		r.t.Fatalf("testenv: %v on the test's own redis-server: %v", args, err)
	}
}
