package app

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// segmentStore reads the removals the segmentation report counts.
type segmentStore interface {
	EachRemoval(ctx context.Context, from, to time.Time, fn func(*dsr.Removal) error) error
}

// SegmentReport is the segmentation report of a window: for each segment
// collection of each connector and each scope, how many people were
// removed from it by requests (opt-outs, deletions) and how many who came
// back the re-application check removed again. It holds counts only,
// never an identity.
type SegmentReport struct {
	From time.Time    `json:"from"`
	To   time.Time    `json:"to"`
	Rows []SegmentRow `json:"rows"`
	// Total sums every row (its connector, collection and scope empty).
	Total       SegmentRow `json:"total"`
	GeneratedAt time.Time  `json:"generated_at"`
}

// SegmentRow counts the removals from one collection under one scope.
type SegmentRow struct {
	Connector  string    `json:"connector,omitempty"`
	Collection string    `json:"collection,omitempty"`
	Scope      dsr.Scope `json:"scope,omitempty"`
	// Removed counts the people requests removed (one per request and
	// scope); Reappeared those who came back and were removed again.
	Removed    int64 `json:"removed"`
	Reappeared int64 `json:"reappeared"`
	// Records counts the records all of them changed.
	Records int64 `json:"records"`
}

// SegmentReport returns the segmentation report of the removals made in
// [from, to).
func (s *Service) SegmentReport(ctx context.Context, from, to time.Time) (*SegmentReport, error) {
	return BuildSegmentReport(ctx, s.store, from, to, s.now())
}

// BuildSegmentReport reads the removals of [from, to) from st, a batch at
// a time, and counts them by connector, collection and scope: it holds one
// row per such key, never the removals. Rows come by connector, collection,
// then scope in the order of dsr.Scopes.
func BuildSegmentReport(ctx context.Context, st segmentStore, from, to, now time.Time) (*SegmentReport, error) {
	type key struct {
		connector, collection string
		scope                 dsr.Scope
	}
	rows := map[key]*SegmentRow{}
	rep := &SegmentReport{From: from.UTC(), To: to.UTC(), Rows: []SegmentRow{}, GeneratedAt: now.UTC()}
	err := st.EachRemoval(ctx, from, to, func(r *dsr.Removal) error {
		k := key{r.Connector, r.Collection, r.Scope}
		row := rows[k]
		if row == nil {
			row = &SegmentRow{Connector: r.Connector, Collection: r.Collection, Scope: r.Scope}
			rows[k] = row
		}
		for _, x := range []*SegmentRow{row, &rep.Total} {
			if r.Reappeared {
				x.Reappeared++
			} else {
				x.Removed++
			}
			x.Records += r.Records
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		rep.Rows = append(rep.Rows, *row)
	}
	slices.SortFunc(rep.Rows, func(a, b SegmentRow) int {
		return cmp.Or(cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.Collection, b.Collection),
			cmp.Compare(slices.Index(dsr.Scopes, a.Scope), slices.Index(dsr.Scopes, b.Scope)), cmp.Compare(a.Scope, b.Scope))
	})
	return rep, nil
}
