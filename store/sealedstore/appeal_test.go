package sealedstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

// TestAppealAttestedHashes: an appeal filed with an agent's new proof
// stands on the blind index of the denied request's given identities, as
// in clear: the sealing store hashes them opened (the driver holds them
// sealed, and would hash the ciphertexts).
func TestAppealAttestedHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := teststore.Open(t, nil)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	ids := []dsr.Identity{{Kind: dsr.KindEmail, Value: "appeal-ada@example.net", Source: dsr.SourceSubject},
		{Kind: dsr.KindPhone, Value: "+442079460222", Source: dsr.SourceSubject}}
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationVCDPA, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: time.Now(), Identities: ids}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusDenied, dsr.Change{Actor: "t", Reason: "no match", DenialBasis: dsr.DeniedUnverifiable}); err != nil {
		t.Fatal(err)
	}
	appeal, err := s.Appeal(ctx, r.ID, dsr.AppealFiling{Actor: "t", Reason: "sent an ID", Attested: "ID document", Index: idx})
	if err != nil {
		t.Fatal(err)
	}
	want := idx.HashAll(dsr.Given(ids))
	if !slices.Equal(appeal.ProvenHashes, want) {
		t.Errorf("the attested appeal stands on %v, want the blind index of the given identities %v", appeal.ProvenHashes, want)
	}
	if !slices.Equal(appeal.Identities, ids) {
		t.Errorf("the appeal's identities: %v, want %v", appeal.Identities, ids)
	}
}
