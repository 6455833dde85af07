package connectors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// named is a connector that can do nothing.
type named string

func (n named) Name() string { return string(n) }

// exporter can only export.
type exporter struct{ named }

func (exporter) Export(context.Context, connectors.Subject, connectors.RecordWriter) (connectors.Result, error) {
	return connectors.Result{}, nil
}

// full can do everything and resolve.
type full struct{ exporter }

func (full) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{}, nil
}

func (full) OptOut(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{}, nil
}

func (full) CorrectFields() []string { return []string{"name"} }

func (full) Correct(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{}, nil
}

func (full) Resolve(context.Context, connectors.Subject) ([]connectors.Identity, error) {
	return nil, nil
}

// scoped can do everything but handles only the actions it lists.
type scoped struct {
	full
	handles []connectors.Action
}

func (s scoped) Handles(a connectors.Action) bool {
	for _, h := range s.handles {
		if h == a {
			return true
		}
	}
	return false
}

// scopedPlain says it handles everything but implements no action.
type scopedPlain struct{ named }

func (scopedPlain) Handles(connectors.Action) bool { return true }

// closer records its Close and returns err.
type closer struct {
	named
	err    error
	closed *[]string
}

func (c closer) Close() error {
	*c.closed = append(*c.closed, c.Name())
	return c.err
}

func TestRegistryAdd(t *testing.T) {
	t.Parallel()
	r := connectors.NewRegistry()
	for _, n := range []string{"shop", "crm", "billing"} {
		if err := r.Add(named(n)); err != nil {
			t.Fatalf("Add(%s): %v", n, err)
		}
	}

	err := r.Add(exporter{"crm"})
	if got, want := errorString(err), `add connector: duplicate name "crm"`; got != want {
		t.Errorf("Add of a duplicate: error %q; want %q", got, want)
	}
	if c, _ := r.Lookup("crm"); c != named("crm") {
		t.Errorf("Lookup(crm) = %#v after a refused duplicate; want the first one", c)
	}
	err = r.Add(named(""))
	if got, want := errorString(err), "add connector: empty name"; got != want {
		t.Errorf("Add of an empty name: error %q; want %q", got, want)
	}

	if diff := cmp.Diff([]string{"billing", "crm", "shop"}, r.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Error("Lookup(nope) found a connector")
	}
	if c, ok := r.Lookup("shop"); !ok || c.Name() != "shop" {
		t.Errorf("Lookup(shop) = %v, %v", c, ok)
	}
}

func TestRegistryFor(t *testing.T) {
	t.Parallel()
	r := connectors.NewRegistry()
	for _, c := range []connectors.Connector{
		named("plain"),
		exporter{"export-only"},
		full{exporter{"full"}},
		scoped{full: full{exporter{"no-opt-out"}}, handles: []connectors.Action{connectors.ActionExport, connectors.ActionErase}},
		scoped{full: full{exporter{"opt-out-only"}}, handles: []connectors.Action{connectors.ActionOptOut}},
		scopedPlain{"claims-all"},
	} {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	names := func(cs []connectors.Connector) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.Name())
		}
		return out
	}
	tests := []struct {
		action connectors.Action
		want   []string
	}{
		{connectors.ActionExport, []string{"export-only", "full", "no-opt-out"}},
		{connectors.ActionErase, []string{"full", "no-opt-out"}},
		{connectors.ActionOptOut, []string{"full", "opt-out-only"}},
		{"sell", []string{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.action), func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, names(r.For(tt.action))); diff != "" {
				t.Errorf("For(%s) (-want +got):\n%s", tt.action, diff)
			}
		})
	}

	var resolvers []string
	for _, res := range r.Resolvers() {
		resolvers = append(resolvers, res.(connectors.Connector).Name())
	}
	// Resolving is not an action: Scoped does not limit it.
	if diff := cmp.Diff([]string{"full", "no-opt-out", "opt-out-only"}, resolvers); diff != "" {
		t.Errorf("Resolvers (-want +got):\n%s", diff)
	}
}

func TestRegistryClose(t *testing.T) {
	t.Parallel()
	errA, errC := errors.New("a failed"), errors.New("c failed")
	var closed []string
	r := connectors.NewRegistry()
	for _, c := range []connectors.Connector{
		closer{named: "c", err: errC, closed: &closed},
		named("no-closer"),
		closer{named: "b", closed: &closed},
		closer{named: "a", err: errA, closed: &closed},
	} {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Close()
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Errorf("Close error %v; want one joining %v and %v", err, errA, errC)
	}
	if got, want := errorString(err), "close connector c: c failed\nclose connector a: a failed"; got != want {
		t.Errorf("Close error %q; want %q", got, want)
	}
	// Every closer is closed, in the order added, despite earlier failures.
	if diff := cmp.Diff([]string{"c", "b", "a"}, closed); diff != "" {
		t.Errorf("closed (-want +got):\n%s", diff)
	}

	ok := connectors.NewRegistry()
	if err := ok.Add(closer{named: "b", closed: &closed}); err != nil {
		t.Fatal(err)
	}
	if err := ok.Close(); err != nil {
		t.Errorf("Close with no failures: %v", err)
	}
}

func errorString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
