// Package redis is the connector for personal data kept in Redis: keys
// named after a person (user:{customer_id}:*, profile:{email}), found with
// SCAN MATCH (never KEYS) or, for a pattern without wildcards, addressed
// directly; and segments, sets and sorted sets whose members stand for
// people. It exports keys of every core type and the subject's memberships,
// erases keys (UNLINK) or hash fields (HDEL), removes memberships (SREM,
// ZREM), sets opt-out flags in hashes, and resolves identities held in hash
// fields or string values.
//
// An identity is escaped before it enters a SCAN pattern, so an email such as
// a*@example.com matches only its own keys; a pattern must hold a
// placeholder, and no wildcard may touch it, so no pattern reaches every
// person, or 123's keys for 12. Keys are handled one SCAN page at a time:
// neither side holds more of a person's data than a page's keys and values.
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type name in the connectors file.
const Type = "redis"

// ProvideValue, as the source of a provided identity, is the value of a
// matched string key (an index such as email:{email} -> customer id).
const ProvideValue = "$value"

// fetchBatch is how many keys' values one pipeline reads: with the page's
// keys, what the connector holds of a person's data at a time.
const fetchBatch = 100

// pingTimeout bounds the PING that checks a connector when it is loaded.
const pingTimeout = 5 * time.Second

// Connector reaches one Redis database. It implements connectors.Exporter,
// Eraser, OptOuter, Resolver, Scoped and Checker, and io.Closer.
type Connector struct {
	name  string
	spec  Spec
	rdb   *goredis.Client
	addr  string // host:port, for errors: never the URL, which may hold a password
	count int64  // SCAN COUNT
}

// Factory returns the factory for the redis type. A connector is checked
// with a PING when it is loaded: an unreachable server or rejected
// credentials stop the load.
func Factory(connectors.Deps) connectors.Factory {
	return func(ctx context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var spec Spec
		if err := connectors.DecodeStrict(node, &spec); err != nil {
			return nil, err
		}
		spec.lines = connectors.KeyLines(node)
		c, err := New(name, spec)
		if err != nil {
			return nil, err
		}
		if err := c.Ping(ctx); err != nil {
			_ = c.Close()
			return nil, connectors.Errorf(node, "%v", err)
		}
		return c, nil
	}
}

// New validates spec and returns a connector. It does no I/O: the client
// connects on first use (see Ping).
func New(name string, spec Spec) (*Connector, error) {
	// validate fills in names and parsed templates: on copies, not the
	// caller's slices.
	spec.Keys = append([]KeySpec(nil), spec.Keys...)
	spec.Segments = append([]SegmentSpec(nil), spec.Segments...)
	if err := spec.validate(); err != nil {
		return nil, err
	}
	opt := &goredis.Options{Addr: spec.Addr, Username: spec.Username, Password: spec.Password, DB: spec.DB}
	if spec.URL != "" {
		var err error
		if opt, err = goredis.ParseURL(spec.URL); err != nil {
			return nil, connectors.Permanent(errors.New("url: not a valid Redis URL")) // validate has said why
		}
	}
	// Deadlines of the caller's ctx bound every call; no push
	// notifications are asked for.
	opt.ContextTimeoutEnabled = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.DisableIdentity = true
	// One dial per attempt: the client's command retries (MaxRetries) and
	// the worker's back-off are the retries, so an unreachable server
	// fails a call in well under a second rather than after 20 dials.
	opt.DialerRetries = 1
	count := int64(spec.ScanCount)
	if count == 0 {
		count = DefaultScanCount
	}
	return &Connector{name: name, spec: spec, rdb: goredis.NewClient(opt), addr: opt.Addr, count: count}, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return c.name }

// Close closes the connector's connections.
func (c *Connector) Close() error { return c.rdb.Close() }

// Ping checks that the server answers and accepts the connector's
// credentials, within pingTimeout. Rejected credentials are
// connectors.Permanent.
func (c *Connector) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis at %s: %w", c.addr, classify(err))
	}
	return nil
}

// Handles reports opt-out support only when a key pattern has opt_out set
// or there are segments to leave.
func (c *Connector) Handles(a connectors.Action) bool {
	if a != connectors.ActionOptOut {
		return true
	}
	if len(c.spec.Segments) > 0 {
		return true
	}
	for _, k := range c.spec.Keys {
		if k.OptOut != nil {
			return true
		}
	}
	return false
}

// classify marks as connectors.Permanent the errors retrying cannot fix: a
// password or user the server refuses, or a command the user may not run.
// Anything else (a refused connection, a timeout, a server loading its data)
// stays transient.
func classify(err error) error {
	switch {
	case goredis.IsAuthError(err), goredis.IsPermissionError(err),
		goredis.HasErrorPrefix(err, "invalid password"), goredis.HasErrorPrefix(err, "Client sent AUTH"),
		goredis.HasErrorPrefix(err, "AUTH"):
		return connectors.Permanent(err)
	}
	return err
}

// eachPage calls fn with the keys t finds for identity v, a page at a time:
// for an exact pattern, the one key it names (which may not exist); else
// every page of a SCAN MATCH with the escaped identity.
func (c *Connector) eachPage(ctx context.Context, t template, v string, fn func(keys []string) error) error {
	if t.exact() {
		return fn([]string{t.fill(v)})
	}
	return c.scan(ctx, t.match(v), fn)
}

// eachSegment calls fn with the keys of segment g, a page at a time.
func (c *Connector) eachSegment(ctx context.Context, g SegmentSpec, fn func(keys []string) error) error {
	if g.key.exact() {
		return fn([]string{g.key.before})
	}
	return c.scan(ctx, g.key.before, fn)
}

// scan calls fn with each non-empty page of SCAN MATCH match. A key may come
// twice when the keyspace is resized during the scan.
func (c *Connector) scan(ctx context.Context, match string, fn func(keys []string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.rdb.Scan(ctx, cursor, match, c.count).Result()
		if err != nil {
			return fmt.Errorf("scan: %w", classify(err))
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// eachBatch calls fn with keys in slices of at most fetchBatch.
func eachBatch(keys []string, fn func([]string) error) error {
	for len(keys) > 0 {
		n := min(len(keys), fetchBatch)
		if err := fn(keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// seenKeys remembers the keys handled so far by a 128-bit digest, so a key
// that SCAN returns twice is handled once, without holding the keys.
type seenKeys map[[16]byte]struct{}

// first reports whether key is new, and remembers it.
func (s seenKeys) first(key string) bool {
	sum := sha256.Sum256([]byte(key))
	var d [16]byte
	copy(d[:], sum[:16])
	if _, ok := s[d]; ok {
		return false
	}
	s[d] = struct{}{}
	return true
}

// notSearched adds to res a collection the subject has no identity of kind
// for.
func notSearched(res *connectors.Result, name, kind string) {
	res.NotSearched(name, []string{kind})
}

// searched adds to res what an action did in collection name, matched by
// kind, which the subject has.
func searched(res *connectors.Result, name, outcome, kind string, n int64) {
	res.Searched(connectors.CollectionResult{Name: name, Outcome: outcome, Records: n,
		MatchKinds: []string{kind}, KindsKnown: []string{kind}})
}

// Export writes a record for every key that matches, by its type, and one
// for each segment the subject is a member of (the subject's membership and
// score only, never the other members). Each key pattern's and each
// segment's records come together.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	for _, k := range c.spec.Keys {
		vals := k.pattern.values(s)
		if len(vals) == 0 {
			notSearched(&res, k.Name, k.pattern.kind)
			continue
		}
		var n int64
		seen := seenKeys{}
		for _, v := range vals {
			err := c.eachPage(ctx, k.pattern, v, func(keys []string) error {
				fresh := keys[:0:0]
				for _, key := range keys {
					if seen.first(key) {
						fresh = append(fresh, key)
					}
				}
				return eachBatch(fresh, func(batch []string) error {
					recs, err := c.read(ctx, batch)
					if err != nil {
						return err
					}
					for _, r := range recs {
						if err := out.WriteRecord(ctx, k.Name, r); err != nil {
							return err
						}
						n++
					}
					return nil
				})
			})
			if err != nil {
				return res, fmt.Errorf("export %s: %w", k.Name, err)
			}
		}
		searched(&res, k.Name, "exported", k.pattern.kind, n)
	}
	for _, g := range c.spec.Segments {
		members := g.member.values(s)
		if len(members) == 0 {
			notSearched(&res, g.Name, g.member.kind)
			continue
		}
		for i, v := range members {
			members[i] = g.member.fill(v)
		}
		var n int64
		err := c.eachSegment(ctx, g, func(keys []string) error {
			return eachBatch(keys, func(batch []string) error {
				pipe := c.rdb.Pipeline()
				cmds := make([]*goredis.Cmd, len(batch))
				for i, key := range batch {
					cmds[i] = segmentScript.Eval(ctx, pipe, []string{key}, append([]any{"export"}, anys(members)...)...)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return classify(err)
				}
				for i, cmd := range cmds {
					reply, _ := cmd.Slice()
					for j, m := range members {
						if j+1 >= len(reply) {
							break
						}
						rec, ok := membership(batch[i], m, reply[j+1])
						if !ok {
							continue
						}
						if err := out.WriteRecord(ctx, g.Name, rec); err != nil {
							return err
						}
						n++
					}
				}
				return nil
			})
		})
		if err != nil {
			return res, fmt.Errorf("export %s: %w", g.Name, err)
		}
		searched(&res, g.Name, "exported", g.member.kind, n)
	}
	return res, nil
}

// segmentScript, on one segment key (KEYS[1]), either removes the members
// ARGV[2..] (ARGV[1] "remove"), returning how many it removed, or reports
// each one's membership (ARGV[1] "export"), returning {type, r2, r3, ...}
// where r is 0 (not a member), 1 (a member of a set), or the score as a
// string (a member of a sorted set). Keys of other types are left alone.
var segmentScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
local remove = ARGV[1] == 'remove'
if t ~= 'set' and t ~= 'zset' then
  if remove then return 0 end
  return {t}
end
if remove then
  local n = 0
  for i = 2, #ARGV do
    if t == 'set' then n = n + redis.call('SREM', KEYS[1], ARGV[i])
    else n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
  end
  return n
end
local out = {t}
for i = 2, #ARGV do
  if t == 'set' then
    out[#out+1] = redis.call('SISMEMBER', KEYS[1], ARGV[i])
  else
    out[#out+1] = redis.call('ZSCORE', KEYS[1], ARGV[i]) or 0
  end
end
return out
`)

// membership returns the record of member m of segment key when reply (from
// segmentScript's export) says it is one.
func membership(key, m string, reply any) (map[string]any, bool) {
	rec := map[string]any{"segment": text(key), "member": text(m)}
	switch r := reply.(type) {
	case int64:
		return rec, r == 1
	case string:
		rec["score"] = score(r)
		return rec, true
	}
	return nil, false
}

// types returns the type of each key of batch ("none" for a key gone), in
// one pipeline.
func (c *Connector) types(ctx context.Context, batch []string) ([]string, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*goredis.StatusCmd, len(batch))
	for i, key := range batch {
		cmds[i] = pipe.Type(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, classify(err)
	}
	out := make([]string, len(batch))
	for i, cmd := range cmds {
		out[i] = cmd.Val()
	}
	return out, nil
}

// read returns the record of each key of batch that still exists, by its
// type, in the order of batch.
func (c *Connector) read(ctx context.Context, batch []string) ([]map[string]any, error) {
	types, err := c.types(ctx, batch)
	if err != nil {
		return nil, err
	}
	pipe := c.rdb.Pipeline()
	vals := make([]goredis.Cmder, len(batch))
	for i, key := range batch {
		switch types[i] {
		case "string":
			vals[i] = pipe.Get(ctx, key)
		case "hash":
			vals[i] = pipe.HGetAll(ctx, key)
		case "list":
			vals[i] = pipe.LRange(ctx, key, 0, -1)
		case "set":
			vals[i] = pipe.SMembers(ctx, key)
		case "zset":
			vals[i] = pipe.ZRangeWithScores(ctx, key, 0, -1)
		case "stream":
			vals[i] = pipe.XRange(ctx, key, "-", "+")
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, classify(err)
	}
	var out []map[string]any
	for i, key := range batch {
		typ := types[i]
		if typ == "none" {
			continue // gone since SCAN found it, or an exact key that never was
		}
		rec := map[string]any{"key": text(key), "type": typ}
		switch cmd := vals[i].(type) {
		case *goredis.StringCmd:
			if errors.Is(cmd.Err(), goredis.Nil) {
				continue
			}
			rec["value"] = text(cmd.Val())
		case *goredis.MapStringStringCmd:
			if len(cmd.Val()) == 0 {
				continue
			}
			m := make(map[string]any, len(cmd.Val()))
			for f, v := range cmd.Val() {
				m[textKey(f)] = text(v)
			}
			rec["value"] = m
		case *goredis.StringSliceCmd:
			if len(cmd.Val()) == 0 {
				continue
			}
			list := cmd.Val()
			if typ == "set" {
				sort.Strings(list)
			}
			vs := make([]any, len(list))
			for j, v := range list {
				vs[j] = text(v)
			}
			rec["value"] = vs
		case *goredis.ZSliceCmd:
			if len(cmd.Val()) == 0 {
				continue
			}
			vs := make([]any, len(cmd.Val()))
			for j, z := range cmd.Val() {
				m, _ := z.Member.(string)
				vs[j] = map[string]any{"member": text(m), "score": number(z.Score)}
			}
			rec["value"] = vs
		case *goredis.XMessageSliceCmd:
			if len(cmd.Val()) == 0 {
				continue
			}
			vs := make([]any, len(cmd.Val()))
			for j, msg := range cmd.Val() {
				fields := make(map[string]any, len(msg.Values))
				for f, v := range msg.Values {
					s, _ := v.(string)
					fields[textKey(f)] = text(s)
				}
				vs[j] = map[string]any{"id": msg.ID, "fields": fields}
			}
			rec["value"] = vs
		default:
			rec["note"] = "the connector cannot read keys of this type; the key exists"
		}
		out = append(out, rec)
	}
	return out, nil
}

// text returns s for a JSON record: as it is when it is UTF-8, else as
// {"base64": ...}, so that no byte is lost.
func text(s string) any {
	if utf8.ValidString(s) {
		return s
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString([]byte(s))}
}

// textKey returns s as a JSON object key: as it is when it is UTF-8, else
// "base64:" and its encoding.
func textKey(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return "base64:" + base64.StdEncoding.EncodeToString([]byte(s))
}

// score returns a score as Redis wrote it, as a JSON number where it is one.
func score(s string) any {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return number(f)
}

// number returns f for JSON, which has no infinities: those as "inf" and
// "-inf", as Redis writes them.
func number(f float64) any {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return f
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Erase applies each key pattern's erase strategy and removes the subject
// from every segment.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	for _, k := range c.spec.Keys {
		if err := c.applyKeys(ctx, &res, k, *k.Erase, s); err != nil {
			return res, fmt.Errorf("erase %s: %w", k.Name, err)
		}
	}
	if err := c.leaveSegments(ctx, &res, s); err != nil {
		return res, fmt.Errorf("erase: %w", err)
	}
	return res, nil
}

// OptOut applies each key pattern's opt_out strategy (patterns without one
// are left alone) and removes the subject from every segment.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	for _, k := range c.spec.Keys {
		if k.OptOut == nil {
			continue
		}
		if err := c.applyKeys(ctx, &res, k, *k.OptOut, s); err != nil {
			return res, fmt.Errorf("opt out %s: %w", k.Name, err)
		}
	}
	if err := c.leaveSegments(ctx, &res, s); err != nil {
		return res, fmt.Errorf("opt out: %w", err)
	}
	return res, nil
}

// outcomes names what each strategy did to a key.
var outcomes = map[string]string{StrategyDelete: "deleted", StrategyHDel: "masked", StrategySet: "set"}

// applyKeys applies st to the keys k finds for s and adds the count of keys
// it changed to res. Each strategy changes only what it still would (UNLINK
// of a key that exists, HDEL of fields still there, HSET of a value that
// differs), so a second run reports 0.
func (c *Connector) applyKeys(ctx context.Context, res *connectors.Result, k KeySpec, st Strategy, s connectors.Subject) error {
	vals := k.pattern.values(s)
	if len(vals) == 0 {
		notSearched(res, k.Name, k.pattern.kind)
		return nil
	}
	var n int64
	for _, v := range vals {
		err := c.eachPage(ctx, k.pattern, v, func(keys []string) error {
			if st.Kind == StrategyDelete {
				// One UNLINK per page: the server frees the values
				// in the background.
				removed, err := c.rdb.Unlink(ctx, keys...).Result()
				if err != nil {
					return classify(err)
				}
				n += removed
				return nil
			}
			return eachBatch(keys, func(batch []string) error {
				changed, err := c.hashes(ctx, batch, st)
				n += changed
				return err
			})
		})
		if err != nil {
			return err
		}
	}
	searched(res, k.Name, outcomes[st.Kind], k.pattern.kind, n)
	return nil
}

// hdelScript deletes the fields ARGV from the hash KEYS[1]: it returns how
// many it deleted, 0 when the key is gone, and -1 when the key is no hash.
var hdelScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return 0 end
if t ~= 'hash' then return -1 end
return redis.call('HDEL', KEYS[1], unpack(ARGV))
`)

// setScript sets the fields of the hash KEYS[1] to the values ARGV (field,
// value, field, value...) where they differ: it returns 1 when it changed
// one, 0 when none differed or the key is gone (it is never created), and
// -1 when the key is no hash.
var setScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return 0 end
if t ~= 'hash' then return -1 end
local changed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i+1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
    changed = 1
  end
end
return changed
`)

// hashes applies an hdel or set strategy to each key of batch, and returns
// how many keys it changed. A key of another type than hash is a permanent
// error: the file says the pattern holds hashes, and it does not.
func (c *Connector) hashes(ctx context.Context, batch []string, st Strategy) (int64, error) {
	script, args := hdelScript, anys(st.Fields)
	if st.Kind == StrategySet {
		script, args = setScript, nil
		for _, f := range connectors.SortedKeys(st.Set) {
			args = append(args, f, st.Set[f])
		}
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*goredis.Cmd, len(batch))
	for i, key := range batch {
		cmds[i] = script.Eval(ctx, pipe, []string{key}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, classify(err)
	}
	var n int64
	wrongType := false
	for _, cmd := range cmds {
		r, _ := cmd.Int64()
		switch {
		case r > 0:
			n++
		case r < 0:
			wrongType = true
		}
	}
	if wrongType {
		return n, connectors.Permanent(fmt.Errorf("%s applies to hashes, and the pattern matched a key of another type", st.Kind))
	}
	return n, nil
}

// leaveSegments removes the subject's members from every segment and adds
// what it removed, per segment, to res.
func (c *Connector) leaveSegments(ctx context.Context, res *connectors.Result, s connectors.Subject) error {
	for _, g := range c.spec.Segments {
		members := g.member.values(s)
		if len(members) == 0 {
			notSearched(res, g.Name, g.member.kind)
			continue
		}
		args := []any{"remove"}
		for _, v := range members {
			args = append(args, g.member.fill(v))
		}
		var n int64
		err := c.eachSegment(ctx, g, func(keys []string) error {
			return eachBatch(keys, func(batch []string) error {
				pipe := c.rdb.Pipeline()
				cmds := make([]*goredis.Cmd, len(batch))
				for i, key := range batch {
					cmds[i] = segmentScript.Eval(ctx, pipe, []string{key}, args...)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return classify(err)
				}
				for _, cmd := range cmds {
					r, _ := cmd.Int64()
					n += r
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("segment %s: %w", g.Name, err)
		}
		searched(res, g.Name, "pulled", g.member.kind, n)
	}
	return nil
}

// Resolve returns the identities that matched keys provide: hash fields, or
// the values of string keys ($value). Each identity is returned once.
func (c *Connector) Resolve(ctx context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	var out []connectors.Identity
	found := map[[2]string]bool{}
	for _, k := range c.spec.Keys {
		if len(k.Provide) == 0 {
			continue
		}
		kinds := connectors.SortedKeys(k.Provide)
		var fields []string
		for _, kind := range kinds {
			if src := k.Provide[kind]; src != ProvideValue {
				fields = append(fields, src)
			}
		}
		for _, v := range k.pattern.values(s) {
			err := c.eachPage(ctx, k.pattern, v, func(keys []string) error {
				return eachBatch(keys, func(batch []string) error {
					got, err := c.provided(ctx, batch, fields)
					if err != nil {
						return err
					}
					for _, g := range got {
						for _, kind := range kinds {
							val := g.fields[k.Provide[kind]]
							if k.Provide[kind] == ProvideValue {
								val = g.value
							}
							if val == "" || found[[2]string{kind, val}] {
								continue
							}
							found[[2]string{kind, val}] = true
							out = append(out, connectors.Identity{Kind: kind, Value: val, Source: c.name + "/" + k.Name})
						}
					}
					return nil
				})
			})
			if err != nil {
				return nil, fmt.Errorf("resolve in %s: %w", k.Name, err)
			}
		}
	}
	return out, nil
}

// provision is what one key provides: the value of a string key, or the
// named fields of a hash.
type provision struct {
	value  string
	fields map[string]string
}

// provided reads, for each key of batch, its value if it is a string, or
// fields if it is a hash.
func (c *Connector) provided(ctx context.Context, batch []string, fields []string) ([]provision, error) {
	types, err := c.types(ctx, batch)
	if err != nil {
		return nil, err
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]goredis.Cmder, len(batch))
	for i, key := range batch {
		switch types[i] {
		case "string":
			cmds[i] = pipe.Get(ctx, key)
		case "hash":
			if len(fields) > 0 {
				cmds[i] = pipe.HMGet(ctx, key, fields...)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, classify(err)
	}
	var out []provision
	for _, cmd := range cmds {
		switch cmd := cmd.(type) {
		case *goredis.StringCmd:
			if cmd.Err() == nil {
				out = append(out, provision{value: cmd.Val()})
			}
		case *goredis.SliceCmd:
			p := provision{fields: map[string]string{}}
			for j, v := range cmd.Val() {
				if s, ok := v.(string); ok {
					p.fields[fields[j]] = s
				}
			}
			out = append(out, p)
		}
	}
	return out, nil
}
