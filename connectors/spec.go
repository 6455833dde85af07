package connectors

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Helpers every type's settings use to say where in the file a problem is.

// Problems collects the problems found in a connector's settings, each with
// its line when known, so that all of them are reported at once.
type Problems []error

// At adds a problem at line (0: the line is unknown).
func (p *Problems) At(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	*p = append(*p, errors.New(msg))
}

// Err returns the problems joined, or nil when there are none.
func (p Problems) Err() error { return errors.Join(p...) }

// KeyLines maps "" to the line of mapping n, each of its keys to the line of
// the key, and, for the nested mappings named by nested, "KEY.SUBKEY" to the
// line of each of their keys.
func KeyLines(n *yaml.Node, nested ...string) map[string]int {
	lines := map[string]int{"": n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		lines[k.Value] = k.Line
		for _, name := range nested {
			if k.Value == name && v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					lines[name+"."+v.Content[j].Value] = v.Content[j].Line
				}
			}
		}
	}
	return lines
}

// FirstLine returns the line of the first of keys that lines knows, or 0.
func FirstLine(lines map[string]int, keys ...string) int {
	for _, k := range keys {
		if n, ok := lines[k]; ok && n > 0 {
			return n
		}
	}
	return 0
}

// KindList writes IdentityKinds sorted, comma-separated, for messages.
func KindList() string {
	return strings.Join(slices.Sorted(slices.Values(IdentityKinds)), ", ")
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
