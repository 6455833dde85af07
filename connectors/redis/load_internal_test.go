package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
)

// commands counts the commands a client sends: per name, the most keys one
// command carried, and the longest pipeline.
type commands struct {
	mu       sync.Mutex
	byName   map[string]int
	maxArgs  map[string]int
	maxBatch int
}

func newCommands() *commands {
	return &commands{byName: map[string]int{}, maxArgs: map[string]int{}}
}

func (c *commands) add(cmd goredis.Cmder) {
	name := strings.ToUpper(cmd.Name())
	if name == "HELLO" || name == "PING" || name == "CLIENT" || name == "SELECT" {
		return
	}
	c.byName[name]++
	c.maxArgs[name] = max(c.maxArgs[name], len(cmd.Args())-1)
}

func (c *commands) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byName[name]
}

func (c *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.mu.Lock()
		c.add(cmd)
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			c.add(cmd)
		}
		c.maxBatch = max(c.maxBatch, len(cmds))
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// recordCounter is a RecordWriter that counts records and notes how many
// SCANs had been sent when the first one came.
type recordCounter struct {
	n            int
	scansAtFirst int
	cmds         *commands
}

func (r *recordCounter) WriteRecord(context.Context, string, any) error {
	if r.n == 0 {
		r.scansAtFirst = r.cmds.count("SCAN")
	}
	r.n++
	return nil
}

// TestManyKeys: a subject with 10,000 keys is exported and erased a SCAN
// page at a time: records are written while the scan goes on, no pipeline
// holds more than fetchBatch keys, one UNLINK per page erases them, and no
// command is sent per key beyond that. Counted, not timed.
func TestManyKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := testenv.RedisServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	p := testenv.Name("dsar_rtest")
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, p+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	const many = 10_000
	for start := 0; start < many; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < start+1000; i++ {
			pipe.Set(ctx, fmt.Sprintf("%s:user:42:%d", p, i), "v", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	others := []string{p + ":user:421:0", p + ":user:4:0", p + ":user:4242:1"}
	for _, k := range others {
		rdb.Set(ctx, k, "other", 0)
	}
	dbsize, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}

	const scanCount = 500
	c, err := New("cache", Spec{Addr: srv.Addr, ScanCount: scanCount, Keys: []KeySpec{
		{Name: "user_data", Pattern: p + ":user:{customer_id}:*", Erase: &Strategy{Kind: StrategyDelete}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cmds := newCommands()
	c.rdb.AddHook(cmds)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "42"}}}
	// SCAN visits about scan_count slots of the keyspace per call: its
	// calls grow with the database, never with the subject's keys.
	maxScans := int(4*(dbsize+many)/scanCount) + 10

	w := &recordCounter{cmds: cmds}
	res, err := c.Export(ctx, s, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != many || w.n != many {
		t.Errorf("Export: %d records reported, %d written; want %d", res.Records, w.n, many)
	}
	scans := cmds.count("SCAN")
	if w.scansAtFirst >= scans {
		t.Errorf("the first record came after %d of %d SCANs; want it written while the scan goes on", w.scansAtFirst, scans)
	}
	if scans > maxScans {
		t.Errorf("Export sent %d SCANs; want at most %d", scans, maxScans)
	}
	if cmds.maxBatch > fetchBatch {
		t.Errorf("a pipeline carried %d commands; want at most %d", cmds.maxBatch, fetchBatch)
	}
	if got := cmds.count("TYPE") + cmds.count("GET"); got != 2*many {
		t.Errorf("Export sent %d TYPE and GET; want one of each per key (%d)", got, 2*many)
	}

	cmds = newCommands()
	c.rdb.AddHook(cmds)
	res, err = c.Erase(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != many {
		t.Errorf("Erase reported %d records; want %d", res.Records, many)
	}
	scans, unlinks := cmds.count("SCAN"), cmds.count("UNLINK")
	t.Logf("erase of %d keys in a database of %d: %d SCAN, %d UNLINK, at most %d keys per UNLINK", many, dbsize, scans, unlinks, cmds.maxArgs["UNLINK"])
	if scans > maxScans || unlinks > scans {
		t.Errorf("Erase sent %d SCANs and %d UNLINKs; want at most %d SCANs and one UNLINK per page", scans, unlinks, maxScans)
	}
	if held := cmds.maxArgs["UNLINK"]; held > 4*scanCount {
		t.Errorf("an UNLINK carried %d keys; want a page's (about %d)", held, scanCount)
	}
	for name := range cmds.byName {
		if name != "SCAN" && name != "UNLINK" {
			t.Errorf("Erase sent %s; want only SCAN and UNLINK", name)
		}
	}
	n, err := rdb.Exists(ctx, others...).Result()
	if err != nil || n != int64(len(others)) {
		t.Errorf("the other people's keys: %d of %d left (%v)", n, len(others), err)
	}

	res, err = c.Erase(ctx, s)
	if err != nil || res.Records != 0 {
		t.Errorf("second Erase: %d records, %v; want 0", res.Records, err)
	}
}
