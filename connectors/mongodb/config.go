package mongodb

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
)

// Spec is a mongodb connector's settings in the connectors file.
type Spec struct {
	// URI of the database server; empty means the service's own store.
	// A password must come from the environment: ${VAR}.
	URI string `yaml:"uri"`
	// Database holding the collections.
	Database string `yaml:"database"`
	// Collections that hold personal data.
	Collections []CollectionSpec `yaml:"collections"`

	// lines holds where the file put things: "" the connector's entry,
	// otherwise the line of a top-level key. Empty for a Spec built in Go.
	lines map[string]int
	// masker applies the keyed mask strategies (connectors.Deps.Mask).
	masker *mask.Masker
}

// FieldMask is how one field is masked.
type FieldMask struct {
	Field    string
	Strategy mask.Strategy
	line     int
}

// Masks are the fields a mask erasure changes, in the file's order.
type Masks []FieldMask

// UnmarshalYAML reads the list form ([email, name]: each set to null) or
// the mapping form ({email: email_format, name: null}).
func (m *Masks) UnmarshalYAML(n *yaml.Node) error {
	*m = nil
	switch n.Kind {
	case yaml.SequenceNode:
		for _, f := range n.Content {
			if f.Kind != yaml.ScalarNode || f.Value == "" {
				return connectors.Errorf(f, "mask: a list of field names, or a mapping of field: strategy")
			}
			*m = append(*m, FieldMask{Field: f.Value, Strategy: mask.Strategy{Kind: mask.Null}, line: f.Line})
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var st mask.Strategy
			if err := v.Decode(&st); err != nil {
				return err
			}
			*m = append(*m, FieldMask{Field: k.Value, Strategy: st, line: k.Line})
		}
	default:
		return connectors.Errorf(n, "mask: a list of field names, or a mapping of field: strategy (%s)", maskKinds())
	}
	return nil
}

func maskKinds() string {
	var k []string
	for _, x := range mask.Kinds {
		k = append(k, string(x))
	}
	return strings.Join(k, ", ")
}

// locate records the lines of the connector entry n and of its keys.
func (s *Spec) locate(n *yaml.Node) {
	s.lines = connectors.KeyLines(n)
}

// CollectionSpec says how one collection holds a subject's data and what
// each action does to it.
type CollectionSpec struct {
	Name string `yaml:"name"`
	// Match maps a document field (dotted paths allowed) to the identity
	// kind it holds. A document matches when any field holds one of the
	// subject's identities, directly or as an element of an array.
	Match map[string]string `yaml:"match"`
	// Provide maps an identity kind to the field whose value, in documents
	// that match, is one more identity of the subject (e.g. customer_id: _id).
	Provide map[string]string `yaml:"provide"`
	// Erase is what deletion does: delete, mask, or {pull: FIELD}.
	Erase *Strategy `yaml:"erase"`
	// Mask lists the fields Erase: mask changes: a list of fields set to
	// null, or a mapping from field to strategy (package mask).
	Mask Masks `yaml:"mask"`
	// OptOut is what an opt-out does: delete, {pull: FIELD} or
	// {set: {FIELD: VALUE}}. Absent: opt-outs leave the collection alone.
	OptOut *Strategy `yaml:"opt_out"`
	// Retain names the legal basis on which the collection is kept (e.g.
	// "tax law: invoices kept 10 years"). A deletion then masks it (with
	// erase: mask) or keeps it whole (erase: delete), and reports the
	// exception with its basis.
	Retain string `yaml:"retain"`
	// Correct maps a field a correction request may change (an identity
	// kind, or a name of the file's choosing such as name or address) to
	// the document field (dotted paths allowed) that holds it: a
	// correction sets it in the subject's documents. Absent: corrections
	// leave the collection alone.
	Correct map[string]string `yaml:"correct"`

	// lines holds where the file put things: "" the collection's entry,
	// "KEY" the line of a key, "match.FIELD" the line of a match field's
	// kind, "provide.KIND" the line of a provided kind, "correct.FIELD"
	// the line of a corrected field. Empty for a spec
	// built in Go.
	lines map[string]int
}

// UnmarshalYAML decodes a collection strictly and records its lines, so
// that every problem validate finds names its line.
func (c *CollectionSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain CollectionSpec // no methods: decoded the ordinary way
	if err := connectors.DecodeStrict(n, (*plain)(c)); err != nil {
		return err
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	c.lines = connectors.KeyLines(n, "provide", "correct")
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "match" && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 { // the kind is what is checked
				c.lines["match."+v.Content[j].Value] = v.Content[j+1].Line
			}
		}
	}
	return nil
}

// The strategy kinds.
const (
	StrategyDelete = "delete"
	StrategyMask   = "mask"
	StrategyPull   = "pull"
	StrategySet    = "set"
)

// Strategy is one way to change the documents that match: a bare word
// (delete, mask) or a one-key mapping ({pull: FIELD}, {set: {FIELD: VALUE}}).
type Strategy struct {
	Kind  string
	Field string         // for pull
	Set   map[string]any // for set
	line  int
}

// UnmarshalYAML reads the word or one-key mapping form.
func (s *Strategy) UnmarshalYAML(n *yaml.Node) error {
	s.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		s.Kind = n.Value
		if s.Kind != StrategyDelete && s.Kind != StrategyMask {
			return connectors.Errorf(n, "unknown strategy %q: want delete, mask, {pull: FIELD} or {set: {FIELD: VALUE}}", n.Value)
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return connectors.Errorf(n, "a strategy mapping has exactly one key: pull or set")
		}
		k, v := n.Content[0], n.Content[1]
		s.Kind = k.Value
		switch s.Kind {
		case StrategyPull:
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return connectors.Errorf(v, "pull takes the name of an array field")
			}
			s.Field = v.Value
		case StrategySet:
			if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
				return connectors.Errorf(v, "set takes a mapping of FIELD: VALUE")
			}
			if err := v.Decode(&s.Set); err != nil {
				return connectors.Errorf(v, "set: %v", err)
			}
		default:
			return connectors.Errorf(k, "unknown strategy %q: want pull or set", k.Value)
		}
		return nil
	}
	return connectors.Errorf(n, "a strategy is delete, mask, {pull: FIELD} or {set: {FIELD: VALUE}}")
}

// validate checks a spec as a whole and returns every problem, each with
// the line it is on when the spec came from a file.
func (s *Spec) validate() error {
	var problems connectors.Problems
	at := problems.At
	if s.Database == "" {
		at(s.lines[""], "database: required")
	}
	if len(s.Collections) == 0 {
		at(connectors.FirstLine(s.lines, "collections", ""), "collections: list at least one collection")
	}
	names := map[string]bool{}
	for i := range s.Collections {
		c := &s.Collections[i]
		line := func(keys ...string) int { return connectors.FirstLine(c.lines, append(keys, "")...) }
		where := fmt.Sprintf("collection %q", c.Name)
		if c.Name == "" {
			at(line(), "collections[%d]: name: required", i)
			continue
		}
		if names[c.Name] {
			at(line("name"), "%s: listed twice", where)
		}
		names[c.Name] = true
		if len(c.Match) == 0 {
			at(line("match"), "%s: match: map at least one field to an identity kind (%s)", where, connectors.KindList())
		}
		for _, field := range connectors.SortedKeys(c.Match) {
			if kind := c.Match[field]; !connectors.ValidKind(kind) {
				at(line("match."+field, "match"), "%s: match: field %q has unknown identity kind %q (known: %s)", where, field, kind, connectors.KindList())
			}
		}
		for _, kind := range connectors.SortedKeys(c.Provide) {
			if !connectors.ValidKind(kind) {
				at(line("provide."+kind, "provide"), "%s: provide: unknown identity kind %q (known: %s)", where, kind, connectors.KindList())
			}
			if c.Provide[kind] == "" {
				at(line("provide."+kind, "provide"), "%s: provide: %s needs a field", where, kind)
			}
		}
		switch {
		case c.Erase == nil:
			at(line(), "%s: erase: required: delete, mask or {pull: FIELD}", where)
		case c.Erase.Kind == StrategySet:
			at(c.Erase.line, "%s: erase: set is for opt_out; erase with delete, mask or {pull: FIELD}", where)
		case c.Erase.Kind == StrategyMask && len(c.Mask) == 0:
			at(c.Erase.line, "%s: erase: mask needs the fields to null in mask: [...]", where)
		case c.Erase.Kind == StrategyPull && c.Match[c.Erase.Field] == "":
			at(c.Erase.line, "%s: erase: pull field %q must be one of the match fields", where, c.Erase.Field)
		case c.Erase.Kind == StrategyPull && strings.Contains(c.Erase.Field, "."):
			at(c.Erase.line, "%s: erase: pull takes a top-level array of plain values, not %q; erase documents of sub-documents with delete or mask", where, c.Erase.Field)
		}
		for _, field := range connectors.SortedKeys(c.Correct) {
			doc := c.Correct[field]
			switch {
			case !connectors.ValidCorrectField(field):
				at(line("correct."+field, "correct"), "%s: correct: %q is not a field name: want an identity kind (%s) or 1 to 63 of a-z, 0-9 and _, starting with a letter", where, field, connectors.KindList())
			case doc == "" || doc == "_id" || strings.HasPrefix(doc, "_id.") || strings.Contains(doc, "$") || slices.Contains(strings.Split(doc, "."), ""):
				at(line("correct."+field, "correct"), "%s: correct: %s: want the document field that holds it (not _id, no $, no empty path segment), not %q", where, field, doc)
			}
		}
		if c.Retain != "" && c.Erase != nil && c.Erase.Kind == StrategyPull {
			at(c.Erase.line, "%s: retain: a collection kept on a legal basis erases with mask (to mask it) or delete (to keep it whole), not pull", where)
		}
		if len(c.Mask) > 0 && (c.Erase == nil || c.Erase.Kind != StrategyMask) {
			at(line("mask"), "%s: mask is only used with erase: mask", where)
		}
		for _, fm := range c.Mask {
			if fm.Strategy.Keyed() && s.masker == nil {
				at(connectors.FirstLine(map[string]int{"": fm.line}, ""), "%s: mask: %s: %s needs the service's mask key, which this process was not given", where, fm.Field, fm.Strategy)
			}
		}
		if o := c.OptOut; o != nil {
			switch {
			case o.Kind == StrategyMask:
				at(o.line, "%s: opt_out: mask is for erase; opt out with delete, {pull: FIELD} or {set: {FIELD: VALUE}}", where)
			case o.Kind == StrategyPull && c.Match[o.Field] == "":
				at(o.line, "%s: opt_out: pull field %q must be one of the match fields", where, o.Field)
			case o.Kind == StrategyPull && strings.Contains(o.Field, "."):
				at(o.line, "%s: opt_out: pull takes a top-level array of plain values, not %q", where, o.Field)
			}
		}
	}
	return problems.Err()
}
