package sqldb

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
)

// Spec is a postgres or mysql connector's settings in the connectors file.
type Spec struct {
	// DSN is the connection string: a PostgreSQL URL or key=value string
	// (pgx), or a go-sql-driver/mysql DSN (user:${PASS}@tcp(host:3306)/db).
	// A password must come from the environment: ${VAR}.
	DSN string `yaml:"dsn"`
	// Schema holds the tables: a PostgreSQL schema (default: the
	// connection's current_schema()) or a MySQL database (default: the
	// DSN's).
	Schema string `yaml:"schema"`
	// Tables that hold personal data.
	Tables []TableSpec `yaml:"tables"`

	// lines maps "" to the line of the connector's entry and each top-level
	// key to its line. Empty for a Spec built in Go.
	lines map[string]int
}

// TableSpec says how one table holds a subject's data and what each action
// does to it.
type TableSpec struct {
	Name string `yaml:"name"`
	// Match maps a column to the identity kind it holds. A row belongs to
	// the subject when any of these columns equals one of the subject's
	// identities of its kind (equality only, never LIKE).
	Match map[string]string `yaml:"match"`
	// Provide maps an identity kind to the column whose value, in rows that
	// match, is one more identity of the subject (customer_id: id).
	Provide map[string]string `yaml:"provide"`
	// Erase is what deletion does: delete or mask.
	Erase *Strategy `yaml:"erase"`
	// Mask maps each column an erasure masks to its strategy (null,
	// {fixed: VALUE}, hmac, random, email_format; see package mask).
	Mask map[string]mask.Strategy `yaml:"mask"`
	// OptOut is what an opt-out does: delete, or {set: {COLUMN: VALUE}}.
	// Absent: opt-outs leave the table alone.
	OptOut *Strategy `yaml:"opt_out"`
	// Retain names the legal basis on which the table is kept. A deletion
	// then masks it (erase: mask) or keeps it whole (erase: delete), and
	// reports the exception with its basis.
	Retain string `yaml:"retain"`

	// lines maps "" to the line of the table's entry, "KEY" to the line of
	// a key, and "match.COL", "provide.KIND", "mask.COL" to the line of
	// that entry.
	lines map[string]int
}

// UnmarshalYAML decodes a table strictly and records its lines, so that
// every problem found later, by validate or against the live schema, names
// its line.
func (t *TableSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain TableSpec // no methods: decoded the ordinary way
	if err := connectors.DecodeStrict(n, (*plain)(t)); err != nil {
		return err
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	t.lines = connectors.KeyLines(n, "match", "provide", "mask")
	return nil
}

// The strategy kinds.
const (
	StrategyDelete = "delete"
	StrategyMask   = "mask"
	StrategySet    = "set"
)

// Strategy is one way to change the rows that match: a bare word (delete,
// mask) or {set: {COLUMN: VALUE, ...}}.
type Strategy struct {
	Kind string
	Set  map[string]any // for set
	line int
	// setLines maps a set column to its line.
	setLines map[string]int
}

// UnmarshalYAML reads the word or the one-key mapping form.
func (s *Strategy) UnmarshalYAML(n *yaml.Node) error {
	s.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		s.Kind = n.Value
		if s.Kind != StrategyDelete && s.Kind != StrategyMask {
			return connectors.Errorf(n, "unknown strategy %q: want delete, mask or {set: {COLUMN: VALUE}}", n.Value)
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != StrategySet {
			return connectors.Errorf(n, "a strategy mapping is {set: {COLUMN: VALUE, ...}}")
		}
		v := n.Content[1]
		if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
			return connectors.Errorf(v, "set takes a mapping of COLUMN: VALUE")
		}
		s.Kind = StrategySet
		s.setLines = map[string]int{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			if val := v.Content[j+1]; val.Kind != yaml.ScalarNode {
				return connectors.Errorf(val, "set: %s: want one plain value (text, a number, true, false or null)", v.Content[j].Value)
			}
			s.setLines[v.Content[j].Value] = v.Content[j].Line
		}
		if err := v.Decode(&s.Set); err != nil {
			return connectors.Errorf(v, "set: %v", err)
		}
		return nil
	}
	return connectors.Errorf(n, "a strategy is delete, mask or {set: {COLUMN: VALUE}}")
}

// line returns the line of the first of keys the table knows, else the
// line of its entry.
func (t *TableSpec) line(keys ...string) int {
	return connectors.FirstLine(t.lines, append(keys, "")...)
}

// validate checks a spec as a whole, without the database, and returns
// every problem, each with its line when the spec came from a file.
// keyed says whether the keyed mask strategies (hmac, email_format) are
// available.
func (s *Spec) validate(keyed bool) error {
	var p connectors.Problems
	if s.DSN == "" {
		p.At(s.lines[""], "dsn: required (use ${VAR} for the password)")
	}
	if len(s.Tables) == 0 {
		p.At(connectors.FirstLine(s.lines, "tables", ""), "tables: list at least one table")
	}
	names := map[string]bool{}
	for i := range s.Tables {
		t := &s.Tables[i]
		where := fmt.Sprintf("table %q", t.Name)
		if t.Name == "" {
			p.At(t.line(), "tables[%d]: name: required", i)
			continue
		}
		if names[t.Name] {
			p.At(t.line("name"), "%s: listed twice", where)
		}
		names[t.Name] = true
		if len(t.Match) == 0 {
			p.At(t.line("match"), "%s: match: map at least one column to an identity kind (%s)", where, connectors.KindList())
		}
		for _, col := range connectors.SortedKeys(t.Match) {
			if kind := t.Match[col]; !connectors.ValidKind(kind) {
				p.At(t.line("match."+col, "match"), "%s: match: column %q has unknown identity kind %q (known: %s)", where, col, kind, connectors.KindList())
			}
		}
		for _, kind := range connectors.SortedKeys(t.Provide) {
			if !connectors.ValidKind(kind) {
				p.At(t.line("provide."+kind, "provide"), "%s: provide: unknown identity kind %q (known: %s)", where, kind, connectors.KindList())
			}
			if t.Provide[kind] == "" {
				p.At(t.line("provide."+kind, "provide"), "%s: provide: %s needs a column", where, kind)
			}
		}
		switch {
		case t.Erase == nil:
			p.At(t.line(), "%s: erase: required: delete or mask", where)
		case t.Erase.Kind == StrategySet:
			p.At(t.Erase.line, "%s: erase: set is for opt_out; erase with delete or mask", where)
		case t.Erase.Kind == StrategyMask && len(t.Mask) == 0:
			p.At(t.Erase.line, "%s: erase: mask needs the columns to mask in mask: {COLUMN: STRATEGY}", where)
		}
		if len(t.Mask) > 0 && (t.Erase == nil || t.Erase.Kind != StrategyMask) {
			p.At(t.line("mask"), "%s: mask is only used with erase: mask", where)
		}
		for _, col := range connectors.SortedKeys(t.Mask) {
			if t.Mask[col].Keyed() && !keyed {
				p.At(t.line("mask."+col, "mask"), "%s: mask: %s: %s needs the service's mask key, which this process has not got", where, col, t.Mask[col])
			}
		}
		if o := t.OptOut; o != nil && o.Kind == StrategyMask {
			p.At(o.line, "%s: opt_out: mask is for erase; opt out with delete or {set: {COLUMN: VALUE}}", where)
		}
	}
	return p.Err()
}
