package catalog_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
)

// TestTypes: every type is listed once, by the name its package exports,
// with a factory.
func TestTypes(t *testing.T) {
	t.Parallel()
	types := catalog.Types(connectors.Deps{})
	var names []string
	for name, f := range types {
		if f == nil {
			t.Errorf("type %s has no factory", name)
		}
		names = append(names, name)
	}
	if len(names) != len(catalog.Names()) {
		t.Errorf("Types lists %d types, Names %d: a name is listed twice", len(names), len(catalog.Names()))
	}
	if diff := cmp.Diff([]string{"braze", "hubspot", "klaviyo", "mailchimp", "manual", "mongodb", "mysql", "opendsr", "postgres", "redis", "segment", "stripe", "webhook"}, catalog.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}

// TestCallbackTypes: the types the API loads for callbacks are those whose
// connectors check callbacks.
func TestCallbackTypes(t *testing.T) {
	t.Parallel()
	var names []string
	for name := range catalog.CallbackTypes(connectors.Deps{}) {
		names = append(names, name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"opendsr", "webhook"}, names); diff != "" {
		t.Errorf("CallbackTypes (-want +got):\n%s", diff)
	}
}
