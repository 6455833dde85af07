package sqlitestore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// listOracle is what ListRequests must return for f over all, every page
// together: the filters applied one by one in Go, the overdue rule being
// dsr.Request.Overdue, sorted as f.Sort says.
func listOracle(all []*dsr.Request, f dsr.ListFilter) []string {
	var out []*dsr.Request
	for _, r := range all {
		switch {
		case f.Status != "" && r.Status != f.Status,
			f.Type != "" && r.Type != f.Type,
			f.Regulation != "" && r.Regulation != f.Regulation,
			f.Source != "" && r.Source != f.Source,
			f.AssignedTo != "" && r.AssignedTo != f.AssignedTo,
			f.DueBefore != nil && !r.DueAt.Before(*f.DueBefore),
			f.DueAfter != nil && r.DueAt.Before(*f.DueAfter),
			f.Overdue && !r.Overdue(f.Now):
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *dsr.Request) int {
		if f.Sort == dsr.SortNewest {
			return strings.Compare(b.ID, a.ID)
		}
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var ids []string
	for _, r := range out {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestListRequestsPages pages through 250 requests under every filter, in
// both orders, several page sizes, and compares with the filters applied
// in Go.
func TestListRequestsPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	base := f.clock.Now()
	statuses := []dsr.Status{dsr.StatusVerified, dsr.StatusInProgress, dsr.StatusVerifying, dsr.StatusDenied, dsr.StatusCompleted, dsr.StatusDuplicate}
	var all []*dsr.Request
	for i := range 250 {
		r := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("p%d@example.com", i))
		r.Regulation = []dsr.Regulation{dsr.RegulationGDPR, dsr.RegulationCCPA, dsr.RegulationLGPD}[i%3]
		r.Type = []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut}[(i/3)%3]
		r.Source = []string{"portal", "agent_api"}[i%2]
		r.AssignedTo = []string{"", "desk", "ops", ""}[i%4]
		r.Status = statuses[i%len(statuses)]
		// 17 due dates, so many requests share one: the id breaks the tie.
		r.DueAt = base.AddDate(0, 0, i%17)
		if r.Status.Closed() {
			closed := base
			r.ClosedAt = &closed
		}
		if r.Status == dsr.StatusVerifying && i%5 == 0 {
			paused := base
			r.PausedAt = &paused
		}
		all = append(all, r)
	}
	for i, err := range f.store.CreateRequests(ctx, all) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	now := base.AddDate(0, 0, 8)
	day := func(n int) *time.Time { d := base.AddDate(0, 0, n); return &d }
	filters := []struct {
		name string
		f    dsr.ListFilter
	}{
		{"all", dsr.ListFilter{}},
		{"status", dsr.ListFilter{Status: dsr.StatusInProgress}},
		{"type", dsr.ListFilter{Type: dsr.TypeDeletion}},
		{"regulation", dsr.ListFilter{Regulation: dsr.RegulationCCPA}},
		{"source", dsr.ListFilter{Source: "agent_api"}},
		{"assignee", dsr.ListFilter{AssignedTo: "desk"}},
		{"due before", dsr.ListFilter{DueBefore: day(5)}},
		{"due after", dsr.ListFilter{DueAfter: day(12)}},
		{"due window", dsr.ListFilter{DueAfter: day(3), DueBefore: day(9)}},
		{"overdue", dsr.ListFilter{Overdue: true, Now: now}},
		{"overdue, an open status", dsr.ListFilter{Overdue: true, Now: now, Status: dsr.StatusVerifying}},
		{"overdue, a closed status", dsr.ListFilter{Overdue: true, Now: now, Status: dsr.StatusCompleted}},
		{"overdue before an earlier date", dsr.ListFilter{Overdue: true, Now: now, DueBefore: day(4)}},
		{"overdue before a later date", dsr.ListFilter{Overdue: true, Now: now, DueBefore: day(14)}},
		{"overdue after", dsr.ListFilter{Overdue: true, Now: now, DueAfter: day(2), Type: dsr.TypeAccess}},
		{"status and type", dsr.ListFilter{Status: dsr.StatusVerified, Type: dsr.TypeOptOut}},
		{"type, regulation, source", dsr.ListFilter{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "portal"}},
		{"assignee in a window", dsr.ListFilter{AssignedTo: "ops", DueAfter: day(1), DueBefore: day(16)}},
		{"nobody's", dsr.ListFilter{AssignedTo: "nobody"}},
	}
	for _, tt := range filters {
		for _, sort := range []dsr.ListSort{dsr.SortDue, dsr.SortNewest} {
			l := tt.f
			l.Sort = sort
			want := listOracle(all, l)
			if tt.name == "all" && len(want) != 250 || tt.name == "overdue" && len(want) == 0 {
				t.Fatalf("%s: the oracle finds %d", tt.name, len(want))
			}
			sizes := []int{7, 100}
			if len(want) > 0 {
				sizes = append(sizes, len(want)) // exactly one full page: no cursor
			}
			for _, size := range sizes {
				l.Limit, l.After = size, nil
				var got []string
				pages := 0
				for {
					page, next, err := f.store.ListRequests(ctx, l)
					if err != nil {
						t.Fatalf("%s %s by %d: %v", tt.name, sort, size, err)
					}
					pages++
					if len(page) > size || (next != nil && len(page) != size) {
						t.Fatalf("%s %s by %d: page of %d, cursor %v", tt.name, sort, size, len(page), next)
					}
					for _, r := range page {
						got = append(got, r.ID)
					}
					if next == nil {
						break
					}
					if last := page[len(page)-1]; next.ID != last.ID || !next.Due.Equal(last.DueAt) {
						t.Fatalf("%s %s by %d: cursor %+v, last %s due %s", tt.name, sort, size, next, last.ID, last.DueAt)
					}
					l.After = next
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s by %d (-want +got):\n%s", tt.name, sort, size, diff)
				}
				if wantPages := max(1, (len(want)+size-1)/size); pages != wantPages {
					t.Errorf("%s %s by %d: %d pages for %d requests, want %d", tt.name, sort, size, pages, len(want), wantPages)
				}
			}
		}
	}
}

// TestListRequestsReadsWholeRequests: a listed request is the request as
// stored.
func TestListRequestsReadsWholeRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.verified(t, dsr.TypeAccess, "ada@example.com")
	page, next, err := f.store.ListRequests(ctx, dsr.ListFilter{Limit: 10})
	if err != nil || next != nil || len(page) != 1 {
		t.Fatalf("list: %d, %v, %v", len(page), next, err)
	}
	stored, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*stored, page[0]); diff != "" {
		t.Errorf("listed vs read (-read +listed):\n%s", diff)
	}
}
