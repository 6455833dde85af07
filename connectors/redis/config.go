package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Spec is a redis connector's settings in the connectors file.
type Spec struct {
	// Addr is the server's host:port. Give Addr or URL, not both.
	Addr string `yaml:"addr"`
	// URL is a redis://, rediss:// (TLS) or unix:// URL, database and
	// credentials included; its password must be ${VAR}.
	URL string `yaml:"url"`
	// Username and Password authenticate with Addr (an ACL user, or the
	// password alone for requirepass). Password must be ${VAR}.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number with Addr (default 0).
	DB int `yaml:"db"`
	// ScanCount is the COUNT hint of each SCAN: how many keys the server
	// looks at per call, and so about how many keys the connector holds at a
	// time. Default DefaultScanCount.
	ScanCount int `yaml:"scan_count"`
	// Keys are the key patterns that hold a person's data.
	Keys []KeySpec `yaml:"keys"`
	// Segments are sets and sorted sets a person is a member of.
	Segments []SegmentSpec `yaml:"segments"`

	// lines holds where the file put things: "" the connector's entry,
	// otherwise the line of a top-level key. Empty for a Spec built in Go.
	lines map[string]int
}

// DefaultScanCount is the COUNT of each SCAN when scan_count is not set.
const DefaultScanCount = 500

// maxScanCount bounds scan_count.
const maxScanCount = 100_000

// KeySpec is one key pattern: the keys it finds for a subject, and what each
// action does to them.
type KeySpec struct {
	// Name names the keys in results and exports; default: the pattern.
	Name string `yaml:"name"`
	// Pattern is the key with one {KIND} placeholder for an identity
	// (profile:{email}), optionally with wildcards * ? [..] around it
	// (user:{customer_id}:*). With no wildcard it names one key per identity.
	Pattern string `yaml:"pattern"`
	// Provide maps an identity kind to where a matched key holds one more
	// identity of the subject: a hash field name, or $value for the value
	// of a string key.
	Provide map[string]string `yaml:"provide"`
	// Erase is what deletion does: delete, or {hdel: [FIELD, ...]}.
	Erase *Strategy `yaml:"erase"`
	// OptOut is what an opt-out does: delete, {hdel: [...]} or
	// {set: {FIELD: VALUE}} on hashes. Absent: opt-outs leave the keys alone.
	OptOut *Strategy `yaml:"opt_out"`

	pattern template
	lines   map[string]int
}

// SegmentSpec is a set or sorted set (or a pattern of them) whose members
// are people.
type SegmentSpec struct {
	// Name names the segment in results and exports; default: the key.
	Name string `yaml:"name"`
	// Key is the segment's key, or a pattern of keys (segment:*); it has no
	// placeholder.
	Key string `yaml:"key"`
	// Member is the member that stands for the subject, with one {KIND}
	// placeholder: {customer_id}, customer:{customer_id}.
	Member string `yaml:"member"`

	key, member template
	lines       map[string]int
}

// UnmarshalYAML decodes a key pattern strictly and records its lines.
func (k *KeySpec) UnmarshalYAML(n *yaml.Node) error {
	type plain KeySpec
	if err := connectors.DecodeStrict(n, (*plain)(k)); err != nil {
		return err
	}
	k.lines = connectors.KeyLines(n, "provide")
	return nil
}

// UnmarshalYAML decodes a segment strictly and records its lines.
func (s *SegmentSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain SegmentSpec
	if err := connectors.DecodeStrict(n, (*plain)(s)); err != nil {
		return err
	}
	s.lines = connectors.KeyLines(n)
	return nil
}

// The strategy kinds.
const (
	StrategyDelete = "delete"
	StrategyHDel   = "hdel"
	StrategySet    = "set"
)

// Strategy is one way to change the keys that match: delete,
// {hdel: [FIELD, ...]} or {set: {FIELD: VALUE, ...}}.
type Strategy struct {
	Kind   string
	Fields []string          // for hdel
	Set    map[string]string // for set
	line   int
}

// UnmarshalYAML reads the word or one-key mapping form.
func (s *Strategy) UnmarshalYAML(n *yaml.Node) error {
	s.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != StrategyDelete {
			return connectors.Errorf(n, "unknown strategy %q: want delete, {hdel: [FIELD, ...]} or {set: {FIELD: VALUE}}", n.Value)
		}
		s.Kind = n.Value
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return connectors.Errorf(n, "a strategy mapping has exactly one key: hdel or set")
		}
		k, v := n.Content[0], n.Content[1]
		s.Kind = k.Value
		switch s.Kind {
		case StrategyHDel:
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return connectors.Errorf(v, "hdel takes a list of hash fields: {hdel: [email, phone]}")
			}
			if err := v.Decode(&s.Fields); err != nil {
				return connectors.Errorf(v, "hdel: %v", err)
			}
			for i, f := range s.Fields {
				if f == "" {
					return connectors.Errorf(v.Content[i], "hdel: a field name cannot be empty")
				}
			}
		case StrategySet:
			if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
				return connectors.Errorf(v, "set takes a mapping of FIELD: VALUE")
			}
			for i := 1; i < len(v.Content); i += 2 {
				if v.Content[i].Kind != yaml.ScalarNode {
					return connectors.Errorf(v.Content[i], "set: a hash field's value is a string, number or boolean")
				}
			}
			if err := v.Decode(&s.Set); err != nil {
				return connectors.Errorf(v, "set: %v", err)
			}
		default:
			return connectors.Errorf(k, "unknown strategy %q: want hdel or set", k.Value)
		}
		return nil
	}
	return connectors.Errorf(n, "a strategy is delete, {hdel: [FIELD, ...]} or {set: {FIELD: VALUE}}")
}

// validate checks a spec as a whole, parses its templates, and returns every
// problem, each with the line it is on when the spec came from a file.
func (s *Spec) validate() error {
	var problems connectors.Problems
	at := problems.At
	top := func(keys ...string) int { return connectors.FirstLine(s.lines, append(keys, "")...) }
	switch {
	case s.Addr == "" && s.URL == "":
		at(top(), "addr or url: required (addr: host:6379, or url: redis://user:${PASSWORD}@host:6379/0)")
	case s.Addr != "" && s.URL != "":
		at(top("url"), "give addr or url, not both")
	case s.URL != "":
		// The parser's error may quote the URL, password included: say
		// only what is wrong.
		if _, err := goredis.ParseURL(s.URL); err != nil {
			at(top("url"), "url: not a valid redis://, rediss:// or unix:// URL (redis://[user:${PASSWORD}@]host:port/db)")
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"username", s.Username != ""}, {"password", s.Password != ""}, {"db", s.DB != 0}} {
			if k.set {
				at(top(k.key), "%s: with url, put it in the url", k.key)
			}
		}
	}
	if s.DB < 0 {
		at(top("db"), "db: want 0 or more, not %d", s.DB)
	}
	if s.ScanCount < 0 || s.ScanCount > maxScanCount {
		at(top("scan_count"), "scan_count: want 1 to %d, not %d", maxScanCount, s.ScanCount)
	}
	if len(s.Keys) == 0 && len(s.Segments) == 0 {
		at(top("keys", "segments"), "keys or segments: list at least one key pattern or segment")
	}
	names := map[string]bool{}
	name := func(line int, n string) {
		if names[n] {
			at(line, "%q is listed twice: give each key pattern and segment its own name", n)
		}
		names[n] = true
	}
	for i := range s.Keys {
		k := &s.Keys[i]
		line := func(keys ...string) int { return connectors.FirstLine(k.lines, append(keys, "")...) }
		if k.Pattern == "" {
			at(line(), "keys[%d]: pattern: required (e.g. user:{customer_id}:*)", i)
			continue
		}
		where := fmt.Sprintf("key pattern %q", k.Pattern)
		var err error
		if k.pattern, err = parseTemplate(k.Pattern); err == nil {
			err = checkKeyPattern(k.pattern)
		}
		if err != nil {
			at(line("pattern"), "%s: %v", where, err)
		}
		if k.Name == "" {
			k.Name = k.Pattern
		}
		name(line("name", "pattern"), k.Name)
		for _, kind := range connectors.SortedKeys(k.Provide) {
			if !connectors.ValidKind(kind) {
				at(line("provide."+kind, "provide"), "%s: provide: unknown identity kind %q (known: %s)", where, kind, connectors.KindList())
			}
			if k.Provide[kind] == "" {
				at(line("provide."+kind, "provide"), "%s: provide: %s needs a hash field, or $value for a string key's value", where, kind)
			}
		}
		switch {
		case k.Erase == nil:
			at(line(), "%s: erase: required: delete or {hdel: [FIELD, ...]}", where)
		case k.Erase.Kind == StrategySet:
			at(k.Erase.line, "%s: erase: set is for opt_out; erase with delete or {hdel: [FIELD, ...]}", where)
		}
	}
	for i := range s.Segments {
		g := &s.Segments[i]
		line := func(keys ...string) int { return connectors.FirstLine(g.lines, append(keys, "")...) }
		if g.Key == "" {
			at(line(), "segments[%d]: key: required (a set or sorted set, or a pattern like segment:*)", i)
			continue
		}
		where := fmt.Sprintf("segment %q", g.Key)
		var err error
		if g.key, err = parseTemplate(g.Key); err != nil {
			at(line("key"), "%s: %v", where, err)
		} else if g.key.kind != "" {
			at(line("key"), "%s: a segment key names segments, not people: no {KIND} (put the subject in member)", where)
		}
		switch g.member, err = parseTemplate(g.Member); {
		case g.Member == "":
			at(line(), "%s: member: required, e.g. {customer_id} or customer:{customer_id}", where)
		case err != nil:
			at(line("member"), "%s: member: %v", where, err)
		case g.member.kind == "":
			at(line("member"), "%s: member: no {KIND} placeholder: the member would be the same for everyone", where)
		}
		if g.Name == "" {
			g.Name = g.Key
		}
		name(line("name", "key"), g.Name)
	}
	return problems.Err()
}
