// Package catalog lists every connector type dsar ships: the one place a new
// type is registered. A type package exports its name (Type) and a factory
// taking the shared dependencies (Factory(connectors.Deps)); add both here.
package catalog

import (
	"sort"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
)

// kinds is every connector type: its name in the connectors file, and its
// factory.
var kinds = []struct {
	name    string
	factory func(connectors.Deps) connectors.Factory
}{
	{mongodb.Type, mongodb.Factory},
}

// Types returns every connector type, each built with d, for
// connectors.LoadFile and connectors.Parse.
func Types(d connectors.Deps) connectors.Types {
	out := make(connectors.Types, len(kinds))
	for _, k := range kinds {
		out[k.name] = k.factory(d)
	}
	return out
}

// Names returns the name of every connector type, sorted.
func Names() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.name)
	}
	sort.Strings(out)
	return out
}
