package connectors

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// KeyDataMap is the setting, common to every connector type, that declares
// what the connector's system does with personal data: the connector's
// entry in the record of processing activities (GDPR Art. 30), and what an
// access package tells the person about that system (GDPR Art. 15(1)).
const KeyDataMap = "data_map"

// DataMap is what a connector's entry declares of its system under
// data_map. Every field is optional; an empty one is shown as not declared,
// never guessed.
type DataMap struct {
	// Purpose is why the system processes the data ("order fulfilment").
	Purpose string `yaml:"purpose"`
	// Categories are the kinds of personal data it holds ("contact
	// details", "order history").
	Categories []string `yaml:"categories"`
	// Recipients are who the data is disclosed to ("payment processor").
	Recipients []string `yaml:"recipients"`
	// Retention is how long it is kept, or how that is decided.
	Retention string `yaml:"retention"`
	// Source is where the data comes from when not from the person.
	Source string `yaml:"source"`
	// LegalBasis is the GDPR Art. 6(1) basis, by name (see LegalBases).
	LegalBasis string `yaml:"legal_basis"`
	// Scopes are the uses a person can refuse that the system serves
	// (marketing, profiling, sale_share; never ScopeAll): an opt-out
	// reaches the system only when it refuses one of them. None declared:
	// the system serves every opt-out.
	Scopes []Scope `yaml:"scopes"`
}

// LegalBases are the legal bases of GDPR Art. 6(1), by the name a data_map
// gives them, with the point of Art. 6(1) each is.
var LegalBases = []struct{ Name, Point string }{
	{"consent", "a"},
	{"contract", "b"},
	{"legal_obligation", "c"},
	{"vital_interests", "d"},
	{"public_task", "e"},
	{"legitimate_interests", "f"},
}

// LegalBasisArticle returns where the law states basis: "GDPR Art. 6(1)(f)"
// for "legitimate_interests"; "" for a name that is not one of LegalBases.
func LegalBasisArticle(basis string) string {
	for _, b := range LegalBases {
		if b.Name == basis {
			return "GDPR Art. 6(1)(" + b.Point + ")"
		}
	}
	return ""
}

func legalBasisNames() string {
	names := make([]string, len(LegalBases))
	for i, b := range LegalBases {
		names[i] = b.Name
	}
	return strings.Join(names, ", ")
}

var linePrefix = regexp.MustCompile(`^line \d+: `)

// parseDataMap decodes the data_map of connector name from node.
func parseDataMap(name string, node *yaml.Node) (*DataMap, error) {
	if node.Kind != yaml.MappingNode {
		return nil, Errorf(node, "connector %q: %s: want a mapping of purpose, categories, recipients, retention, source, legal_basis and scopes", name, KeyDataMap)
	}
	var dm DataMap
	if err := DecodeStrict(node, &dm); err != nil {
		// "line 3: connector "shop": data_map: unknown setting ...", the
		// line first as in every other error of the file.
		msg := err.Error()
		line := ""
		if m := linePrefix.FindString(msg); m != "" {
			line, msg = m, msg[len(m):]
		}
		return nil, fmt.Errorf("%sconnector %q: %s: %s", line, name, KeyDataMap, msg)
	}
	if dm.LegalBasis != "" && LegalBasisArticle(dm.LegalBasis) == "" {
		return nil, Errorf(valueOf(node, "legal_basis"), "connector %q: %s: legal_basis %q: want one of the bases of GDPR Art. 6(1): %s",
			name, KeyDataMap, dm.LegalBasis, legalBasisNames())
	}
	for _, list := range []struct {
		key string
		v   []string
	}{{"categories", dm.Categories}, {"recipients", dm.Recipients}} {
		for i, s := range list.v {
			if strings.TrimSpace(s) == "" {
				return nil, Errorf(valueOf(node, list.key).Content[i], "connector %q: %s: %s: an entry is empty", name, KeyDataMap, list.key)
			}
		}
	}
	for i, sc := range dm.Scopes {
		at := valueOf(node, "scopes").Content[i]
		switch {
		case sc == ScopeAll:
			return nil, Errorf(at, "connector %q: %s: scopes: %q is what a deletion suppresses, not a use a system serves; a system that serves every opt-out declares no scopes", name, KeyDataMap, sc)
		case !sc.Valid():
			return nil, Errorf(at, "connector %q: %s: scopes: unknown scope %q: want %s, %s or %s", name, KeyDataMap, sc, ScopeMarketing, ScopeProfiling, ScopeSaleShare)
		case slices.Contains(dm.Scopes[:i], sc):
			return nil, Errorf(at, "connector %q: %s: scopes: %q given twice", name, KeyDataMap, sc)
		}
	}
	return &dm, nil
}

// Declared is one connector's entry in a connectors file as [ReadDataMaps]
// reads it: its name, type and data map (nil when it declares none).
type Declared struct {
	Name    string
	Type    string
	DataMap *DataMap
}

// ReadDataMaps reads the name, type and data map of every connector in the
// connectors file at path, in the file's order, with the checks [Parse]
// makes of them, without building any connector: it connects to nothing
// and needs no variable but those the data maps use themselves.
func ReadDataMaps(path string, lookupEnv func(string) (string, bool)) ([]Declared, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("connectors file: %w", err)
	}
	out, err := parseDataMaps(data, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("connectors file %s: %w", path, err)
	}
	return out, nil
}

func parseDataMaps(data []byte, lookupEnv func(string) (string, bool)) ([]Declared, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if root.Kind == 0 {
		return nil, fmt.Errorf("empty file: want a top-level 'connectors:' list")
	}
	if err := checkPlain(&root); err != nil {
		return nil, err
	}
	if err := checkSecrets(&root); err != nil {
		return nil, err
	}
	// Only the top level is decoded strictly: each type checks its own
	// settings, which this reads none of.
	var spec fileSpec
	if err := DecodeStrict(root.Content[0], &spec); err != nil {
		return nil, err
	}
	var out []Declared
	seen := map[string]bool{}
	for i := range spec.Connectors {
		entry := &spec.Connectors[i]
		if entry.Kind != yaml.MappingNode {
			return nil, Errorf(entry, "each connector must be a mapping with name and type")
		}
		c, err := common(entry)
		if err != nil {
			return nil, err
		}
		if c.typ == nil {
			return nil, Errorf(entry, "connector %q: type: required", c.name)
		}
		if seen[c.name] {
			return nil, Errorf(c.nameNode, "add connector: duplicate name %q", c.name)
		}
		seen[c.name] = true
		d := Declared{Name: c.name, Type: c.typ.Value}
		if c.dataMap != nil {
			if err := expandEnv(c.dataMap, lookupEnv); err != nil {
				return nil, err
			}
			if d.DataMap, err = parseDataMap(c.name, c.dataMap); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}
