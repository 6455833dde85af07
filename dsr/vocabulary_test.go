package dsr_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// TestConnectorVocabulary checks that a request's identities and a job's
// results carry over to and from connectors' types whole.
func TestConnectorVocabulary(t *testing.T) {
	t.Parallel()
	ids := []dsr.Identity{
		{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
		{Kind: dsr.KindCustomerID, Value: "c-1", Source: "crm/customers"},
	}
	want := connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: "ada@example.com", Source: "subject"},
		{Kind: "customer_id", Value: "c-1", Source: "crm/customers"},
	}}
	if diff := cmp.Diff(want, dsr.SubjectOf(ids)); diff != "" {
		t.Errorf("SubjectOf (-want +got):\n%s", diff)
	}
	c := connectors.CollectionResult{Name: "orders", Outcome: "masked", Records: 3, Basis: "tax law",
		MatchKinds: []string{"email"}, KindsKnown: []string{"email"}, Note: "n"}
	wantC := dsr.CollectionResult{Name: "orders", Outcome: "masked", Records: 3, Basis: "tax law",
		MatchKinds: []string{"email"}, KindsKnown: []string{"email"}, Note: "n"}
	if diff := cmp.Diff(wantC, dsr.CollectionResultOf(c)); diff != "" {
		t.Errorf("CollectionResultOf (-want +got):\n%s", diff)
	}
	dm := connectors.DataMap{Purpose: "p", Categories: []string{"c"}, Recipients: []string{"r"}, Retention: "t", Source: "s", LegalBasis: "consent"}
	wantDM := &dsr.DataMap{Purpose: "p", Categories: []string{"c"}, Recipients: []string{"r"}, Retention: "t", Source: "s", LegalBasis: "consent"}
	if diff := cmp.Diff(wantDM, dsr.DataMapOf(dm)); diff != "" {
		t.Errorf("DataMapOf (-want +got):\n%s", diff)
	}
}
