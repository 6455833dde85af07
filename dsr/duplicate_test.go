package dsr_test

import (
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestPickDuplicate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	cand := func(id string, typ dsr.Type, st dsr.Status, received time.Time, hashes ...string) dsr.Request {
		return dsr.Request{ID: id, Type: typ, Status: st, ReceivedAt: received, ProvenHashes: hashes}
	}
	cands := []dsr.Request{
		cand("a", dsr.TypeAccess, dsr.StatusVerified, at.Add(-2*time.Hour), "h1"),
		cand("b", dsr.TypeAccess, dsr.StatusInProgress, at.Add(-time.Hour), "h1", "h2"),
		cand("c", dsr.TypeDeletion, dsr.StatusVerified, at, "h1"),
		cand("d", dsr.TypeAccess, dsr.StatusVerifying, at, "h3"),
		cand("e", dsr.TypeAccess, dsr.StatusDuplicate, at, "h4"),
		cand("f", dsr.TypeAccess, dsr.StatusVerified, at, "h5"),
		cand("g", dsr.TypeAccess, dsr.StatusVerified, at, "h5"),
		{ID: "h", Type: dsr.TypeAccess, Status: dsr.StatusAwaitingApproval, ReceivedAt: at, ProvenHashes: []string{"h6"}, AppealOf: "a"},
	}
	for _, tc := range []struct {
		name   string
		hashes []string
		typ    dsr.Type
		since  time.Time
		want   string
	}{
		{"the newest sharing a hash", []string{"h1"}, dsr.TypeAccess, at.Add(-24 * time.Hour), "b"},
		{"by any hash", []string{"hx", "h2"}, dsr.TypeAccess, at.Add(-24 * time.Hour), "b"},
		{"of the same type", []string{"h1"}, dsr.TypeDeletion, at.Add(-24 * time.Hour), "c"},
		{"within the window", []string{"h1"}, dsr.TypeAccess, at.Add(-90 * time.Minute), "b"},
		{"none in the window", []string{"h1"}, dsr.TypeAccess, at.Add(-time.Minute), ""},
		{"not an unverified one", []string{"h3"}, dsr.TypeAccess, at.Add(-time.Hour), ""},
		{"not a duplicate", []string{"h4"}, dsr.TypeAccess, at.Add(-time.Hour), ""},
		{"of two at once, the later id", []string{"h5"}, dsr.TypeAccess, at.Add(-time.Hour), "g"},
		{"no hash", nil, dsr.TypeAccess, at.Add(-time.Hour), ""},
		{"not an appeal", []string{"h6"}, dsr.TypeAccess, at.Add(-time.Hour), ""},
	} {
		got := ""
		if d := dsr.PickDuplicate(cands, tc.hashes, tc.typ, tc.since); d != nil {
			got = d.ID
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
