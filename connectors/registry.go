package connectors

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Registry holds the configured connectors by name. The zero value is not
// usable; create one with [NewRegistry]. It is not safe to Add concurrently
// with reads; build it at start-up.
type Registry struct {
	byName map[string]Connector
	order  []string
	limits map[string]limits
	types  map[string]string
	// dataMaps are the entries' data maps, by connector name.
	dataMaps map[string]DataMap
}

// limits are the limits of one connector's entry in the connectors file.
type limits struct {
	concurrency int
	rate        Rate
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]Connector{}, limits: map[string]limits{}, types: map[string]string{}, dataMaps: map[string]DataMap{}}
}

// MaxConcurrency returns how many jobs of the connector called name may run
// at once in one worker process, as its entry's max_concurrency says; 0
// when it says nothing (the worker's default applies).
func (r *Registry) MaxConcurrency(name string) int {
	return r.limits[name].concurrency
}

// MaxRate returns how many jobs of the connector called name may start per
// period, across every worker process, as its entry's max_rate says; the
// zero Rate (no limit) when it says nothing.
func (r *Registry) MaxRate(name string) Rate {
	return r.limits[name].rate
}

// Type returns the type of the connector called name as its entry in the
// connectors file gives it ("mongodb"); "" for a connector added in Go.
func (r *Registry) Type(name string) string {
	return r.types[name]
}

// DataMap returns what the entry of the connector called name declares
// under data_map, and false when it declares nothing (the access package
// and the record of processing activities then say "not declared").
func (r *Registry) DataMap(name string) (DataMap, bool) {
	dm, ok := r.dataMaps[name]
	return dm, ok
}

// SetDataMap declares the data map of the connector called name, as its
// entry's data_map does; it is an error when no such connector is
// registered.
func (r *Registry) SetDataMap(name string, dm DataMap) error {
	if _, ok := r.byName[name]; !ok {
		return fmt.Errorf("data map: no connector %q", name)
	}
	r.dataMaps[name] = dm
	return nil
}

// Add registers c. A second connector with the same name is an error.
func (r *Registry) Add(c Connector) error {
	name := c.Name()
	if name == "" {
		return errors.New("add connector: empty name")
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("add connector: duplicate name %q", name)
	}
	r.byName[name] = c
	r.order = append(r.order, name)
	return nil
}

// Lookup returns the connector called name.
func (r *Registry) Lookup(name string) (Connector, bool) {
	c, ok := r.byName[name]
	return c, ok
}

// Names returns every connector name, sorted.
func (r *Registry) Names() []string {
	out := append([]string(nil), r.order...)
	sort.Strings(out)
	return out
}

// For returns, sorted by name, the connectors that can perform a, judged by
// the interface they implement and, for [Scoped] ones, by Handles.
func (r *Registry) For(a Action) []Connector {
	var out []Connector
	for _, name := range r.Names() {
		c := r.byName[name]
		if !Supports(c, a) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// CorrectFields returns, sorted and without duplicates, every field some
// connector of r can correct (see [Owns]).
func (r *Registry) CorrectFields() []string {
	var out []string
	for _, c := range r.For(ActionCorrect) {
		out = append(out, c.(Corrector).CorrectFields()...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Resolvers returns the connectors that resolve identities, sorted by name.
func (r *Registry) Resolvers() []Resolver {
	var out []Resolver
	for _, name := range r.Names() {
		if res, ok := r.byName[name].(Resolver); ok {
			out = append(out, res)
		}
	}
	return out
}

// Close closes every connector that holds resources (implements io.Closer)
// and returns their errors joined.
func (r *Registry) Close() error {
	var errs []error
	for _, name := range r.order {
		if c, ok := r.byName[name].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close connector %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
