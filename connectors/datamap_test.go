package connectors_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// dataMapFile declares a data map on one connector of two, the other
// declaring none.
const dataMapFile = `
connectors:
  - name: shop
    type: fake
    uri: mongodb://${SHOP_HOST}/
    data_map:
      purpose: Order fulfilment and customer support
      categories: [contact details, order history]
      recipients: [payment processor, parcel carrier]
      retention: 6 years after the last order (tax law)
      source: the person, at checkout
      legal_basis: contract
      scopes: [marketing, profiling]
  - {name: crm, type: fake}
`

// TestParseDataMap checks that data_map, common to every type, reaches the
// registry and not the type's own settings, and that a connector without
// one has none.
func TestParseDataMap(t *testing.T) {
	t.Parallel()
	types, built := fakeTypes()
	reg, err := connectors.Parse(t.Context(), []byte(dataMapFile), types, testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	want := connectors.DataMap{
		Purpose:    "Order fulfilment and customer support",
		Categories: []string{"contact details", "order history"},
		Recipients: []string{"payment processor", "parcel carrier"},
		Retention:  "6 years after the last order (tax law)",
		Source:     "the person, at checkout",
		LegalBasis: "contract",
		Scopes:     []connectors.Scope{connectors.ScopeMarketing, connectors.ScopeProfiling},
	}
	got, ok := reg.DataMap("shop")
	if !ok {
		t.Fatal("DataMap(shop): none")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DataMap(shop) (-want +got):\n%s", diff)
	}
	if dm, ok := reg.DataMap("crm"); ok {
		t.Errorf("DataMap(crm) = %+v; want none declared", dm)
	}
	if got := built()[0].spec.URI; got != "mongodb://db.example.com/" {
		t.Errorf("the type's own settings: uri = %q", got)
	}
}

func TestParseDataMapErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dataMap, want string
	}{
		{"unknown key", "{purpose: x, purpsoe: y}", `line 3: connector "shop": data_map: unknown setting "purpsoe" (known: purpose, categories, recipients, retention, source, legal_basis, scopes)`},
		{"unknown legal basis", "{legal_basis: because}", `line 3: connector "shop": data_map: legal_basis "because": want one of the bases of GDPR Art. 6(1): consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests`},
		{"legal basis by letter", "{legal_basis: f}", `line 3: connector "shop": data_map: legal_basis "f": want one of the bases of GDPR Art. 6(1): consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests`},
		{"categories not a list", "{categories: contact details}", "line 3: connector \"shop\": data_map: cannot unmarshal !!str `contact...` into []string"},
		{"empty recipient", `{recipients: [carrier, ""]}`, `line 3: connector "shop": data_map: recipients: an entry is empty`},
		{"not a mapping", "[purpose]", `line 3: connector "shop": data_map: want a mapping of purpose, categories, recipients, retention, source, legal_basis and scopes`},
		{"unknown scope", "{scopes: [marketing, spam]}", `line 3: connector "shop": data_map: scopes: unknown scope "spam": want marketing, profiling or sale_share`},
		{"scope all", "{scopes: [all]}", `line 3: connector "shop": data_map: scopes: "all" is what a deletion suppresses, not a use a system serves; a system that serves every opt-out declares no scopes`},
		{"scope twice", "{scopes: [profiling, profiling]}", `line 3: connector "shop": data_map: scopes: "profiling" given twice`},
		{"scope on its line", "\n      purpose: x\n      scopes:\n        - marketing\n        - sale-share", `line 7: connector "shop": data_map: scopes: unknown scope "sale-share": want marketing, profiling or sale_share`},
		{"scopes not a list", "{scopes: marketing}", "line 3: connector \"shop\": data_map: cannot unmarshal !!str `marketing` into []connectors.Scope"},
		{"empty", `""`, `line 3: connector "shop": data_map: want a mapping of purpose, categories, recipients, retention, source, legal_basis and scopes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			types, _ := fakeTypes()
			file := "connectors:\n  - name: shop\n    data_map: " + tt.dataMap + "\n    type: fake\n"
			reg, err := connectors.Parse(t.Context(), []byte(file), types, testEnv)
			if err == nil {
				_ = reg.Close()
				t.Fatal("Parse succeeded")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
			// ReadDataMaps makes the same checks.
			_, err = readDataMaps(t, file)
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("ReadDataMaps error = %v; want it to end with %q", err, tt.want)
			}
		})
	}
}

func TestLegalBasisArticle(t *testing.T) {
	t.Parallel()
	got := map[string]string{}
	for _, b := range []string{"consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests", "Consent", ""} {
		got[b] = connectors.LegalBasisArticle(b)
	}
	want := map[string]string{"consent": "GDPR Art. 6(1)(a)", "contract": "GDPR Art. 6(1)(b)", "legal_obligation": "GDPR Art. 6(1)(c)",
		"vital_interests": "GDPR Art. 6(1)(d)", "public_task": "GDPR Art. 6(1)(e)", "legitimate_interests": "GDPR Art. 6(1)(f)", "Consent": "", "": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LegalBasisArticle (-want +got):\n%s", diff)
	}
}

func readDataMaps(t *testing.T, file string) ([]connectors.Declared, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "connectors.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return connectors.ReadDataMaps(path, testEnv)
}

// TestReadDataMaps reads the data maps without building a connector: an
// unknown type and a variable unset outside the data maps do not matter.
func TestReadDataMaps(t *testing.T) {
	t.Parallel()
	file := strings.Replace(dataMapFile, "${SHOP_HOST}", "${NOT_SET_HERE}", 1) + "  - {name: erp, type: not_built, data_map: {purpose: Invoicing, legal_basis: legal_obligation}}\n"
	got, err := readDataMaps(t, file)
	if err != nil {
		t.Fatalf("ReadDataMaps: %v", err)
	}
	want := []connectors.Declared{
		{Name: "shop", Type: "fake", DataMap: &connectors.DataMap{
			Purpose: "Order fulfilment and customer support", Categories: []string{"contact details", "order history"},
			Recipients: []string{"payment processor", "parcel carrier"}, Retention: "6 years after the last order (tax law)",
			Source: "the person, at checkout", LegalBasis: "contract", Scopes: []connectors.Scope{"marketing", "profiling"}}},
		{Name: "crm", Type: "fake"},
		{Name: "erp", Type: "not_built", DataMap: &connectors.DataMap{Purpose: "Invoicing", LegalBasis: "legal_obligation"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadDataMaps (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, file, want string }{
		{"duplicate name", "connectors:\n  - {name: a, type: x}\n  - {name: a, type: y}\n", `line 3: add connector: duplicate name "a"`},
		{"no type", "connectors:\n  - {name: a}\n", `line 2: connector "a": type: required`},
		{"variable in a data map", "connectors:\n  - {name: a, type: x, data_map: {purpose: \"${NOPE}\"}}\n", "line 2: environment variable NOPE is not set"},
		{"literal secret", "connectors:\n  - {name: a, type: x, password: hunter2}\n", "line 2: password must come from the environment, e.g. ${SHOP_PASSWORD}, never be written in the file"},
	} {
		_, err := readDataMaps(t, tt.file)
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("%s: ReadDataMaps error = %v; want it to end with %q", tt.name, err, tt.want)
		}
	}
}

// TestServes: a system that declares no scopes serves every opt-out; one
// that declares some serves an opt-out of any of them, and no other.
func TestServes(t *testing.T) {
	t.Parallel()
	m, p, s := connectors.ScopeMarketing, connectors.ScopeProfiling, connectors.ScopeSaleShare
	for _, tt := range []struct {
		declared, want []connectors.Scope
		serves         bool
	}{
		{nil, []connectors.Scope{s}, true},
		{nil, nil, true},
		{[]connectors.Scope{m, p}, []connectors.Scope{p}, true},
		{[]connectors.Scope{m, p}, []connectors.Scope{s, m}, true},
		{[]connectors.Scope{m, p}, []connectors.Scope{s}, false},
		{[]connectors.Scope{m}, nil, false},
	} {
		if got := connectors.Serves(tt.declared, tt.want); got != tt.serves {
			t.Errorf("Serves(%v, %v) = %v; want %v", tt.declared, tt.want, got, tt.serves)
		}
	}
}
