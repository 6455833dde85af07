package dsr_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{9, 1, 4}, 4},
		{[]float64{9, 1, 4, 2}, 3},
		{[]float64{0.5, 0.25}, 0.375},
		{[]float64{7, 7, 7, 70}, 7},
	} {
		if got := dsr.Median(slices.Clone(c.in)); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSummaryWindow(t *testing.T) {
	t.Parallel()
	from, to, err := dsr.SummaryWindow("2026-01-01", "2028-01-01")
	if err != nil || !from.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("two years exactly: %s %s %v", from, to, err)
	}
	for _, c := range []struct {
		from, to string
		want     string // the fields named, in order
	}{
		{"", "", "from to"},
		{"2026-1-1", "2026-02-01", "from"},
		{"2026-01-01", "tomorrow", "to"},
		{"2026-01-01T00:00:00Z", "2026-02-30", "from to"},
		{"2026-02-01", "2026-02-01", "to"},
		{"2026-03-01", "2026-02-01", "to"},
		{"2026-01-01", "2028-01-02", "to"},
	} {
		_, _, err := dsr.SummaryWindow(c.from, c.to)
		var ve *dsr.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%q %q: err = %v, want a validation error", c.from, c.to, err)
			continue
		}
		var fields []string
		for _, fe := range ve.Fields {
			fields = append(fields, fe.Field)
		}
		if got := strings.Join(fields, " "); got != c.want {
			t.Errorf("%q %q: fields %q, want %q (%v)", c.from, c.to, got, c.want, err)
		}
	}
}

// TestSummaryLeavesOutOptIns: an opt-in is neither a row nor in the total;
// the requests beside it are counted as before.
func TestSummaryLeavesOutOptIns(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var b dsr.SummaryBuilder
	b.Start(at.AddDate(0, -1, 0), at.AddDate(0, 1, 0), at)
	for _, typ := range []dsr.Type{dsr.TypeOptOut, dsr.TypeOptIn, dsr.TypeOptIn} {
		b.Add(&dsr.Request{Type: typ, Regulation: dsr.RegulationCCPA, Status: dsr.StatusInProgress, ReceivedAt: at, DueAt: at.AddDate(0, 0, 21)})
	}
	sum := b.Finish()
	if len(sum.Rows) != 1 || sum.Rows[0].Type != dsr.TypeOptOut || sum.Total.Received != 1 {
		t.Errorf("rows %+v, total received %d; want the opt-out's row only, 1 received", sum.Rows, sum.Total.Received)
	}
}
