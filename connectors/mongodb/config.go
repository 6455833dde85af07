package mongodb

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
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
	// Mask lists the fields set to null when Erase is mask.
	Mask []string `yaml:"mask"`
	// OptOut is what an opt-out does: delete, {pull: FIELD} or
	// {set: {FIELD: VALUE}}. Absent: opt-outs leave the collection alone.
	OptOut *Strategy `yaml:"opt_out"`
	// Retain names the legal basis on which the collection is kept (e.g.
	// "tax law: invoices kept 10 years"). A deletion then masks it (with
	// erase: mask) or keeps it whole (erase: delete), and reports the
	// exception with its basis.
	Retain string `yaml:"retain"`
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

// validate checks a spec as a whole and returns every problem.
func (s *Spec) validate() error {
	var errs []error
	add := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
	}
	if s.Database == "" {
		errs = append(errs, errors.New("database: required"))
	}
	if len(s.Collections) == 0 {
		errs = append(errs, errors.New("collections: list at least one collection"))
	}
	names := map[string]bool{}
	for i := range s.Collections {
		c := &s.Collections[i]
		where := fmt.Sprintf("collection %q", c.Name)
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("collections[%d]: name: required", i))
			continue
		}
		if names[c.Name] {
			errs = append(errs, fmt.Errorf("%s: listed twice", where))
		}
		names[c.Name] = true
		if len(c.Match) == 0 {
			errs = append(errs, fmt.Errorf("%s: match: map at least one field to an identity kind (%s)", where, kinds()))
		}
		for field, kind := range c.Match {
			if !connectors.ValidKind(kind) {
				errs = append(errs, fmt.Errorf("%s: match: field %q has unknown identity kind %q (known: %s)", where, field, kind, kinds()))
			}
		}
		for kind, field := range c.Provide {
			if !connectors.ValidKind(kind) {
				errs = append(errs, fmt.Errorf("%s: provide: unknown identity kind %q (known: %s)", where, kind, kinds()))
			}
			if field == "" {
				errs = append(errs, fmt.Errorf("%s: provide: %s needs a field", where, kind))
			}
		}
		switch {
		case c.Erase == nil:
			errs = append(errs, fmt.Errorf("%s: erase: required: delete, mask or {pull: FIELD}", where))
		case c.Erase.Kind == StrategySet:
			add(c.Erase.line, "%s: erase: set is for opt_out; erase with delete, mask or {pull: FIELD}", where)
		case c.Erase.Kind == StrategyMask && len(c.Mask) == 0:
			add(c.Erase.line, "%s: erase: mask needs the fields to null in mask: [...]", where)
		case c.Erase.Kind == StrategyPull && c.Match[c.Erase.Field] == "":
			add(c.Erase.line, "%s: erase: pull field %q must be one of the match fields", where, c.Erase.Field)
		case c.Erase.Kind == StrategyPull && strings.Contains(c.Erase.Field, "."):
			add(c.Erase.line, "%s: erase: pull takes a top-level array of plain values, not %q; erase documents of sub-documents with delete or mask", where, c.Erase.Field)
		}
		if c.Retain != "" && c.Erase != nil && c.Erase.Kind == StrategyPull {
			add(c.Erase.line, "%s: retain: a collection kept on a legal basis erases with mask (to mask it) or delete (to keep it whole), not pull", where)
		}
		if len(c.Mask) > 0 && (c.Erase == nil || c.Erase.Kind != StrategyMask) {
			errs = append(errs, fmt.Errorf("%s: mask is only used with erase: mask", where))
		}
		if o := c.OptOut; o != nil {
			switch {
			case o.Kind == StrategyMask:
				add(o.line, "%s: opt_out: mask is for erase; opt out with delete, {pull: FIELD} or {set: {FIELD: VALUE}}", where)
			case o.Kind == StrategyPull && c.Match[o.Field] == "":
				add(o.line, "%s: opt_out: pull field %q must be one of the match fields", where, o.Field)
			case o.Kind == StrategyPull && strings.Contains(o.Field, "."):
				add(o.line, "%s: opt_out: pull takes a top-level array of plain values, not %q", where, o.Field)
			}
		}
	}
	return errors.Join(errs...)
}

func kinds() string {
	k := append([]string(nil), connectors.IdentityKinds...)
	sort.Strings(k)
	return strings.Join(k, ", ")
}
