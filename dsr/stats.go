package dsr

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Statistics of the store, for the metrics (/metrics) and the compliance
// report (GET /v1/reports/summary, dsar report). They hold counts,
// durations, enums and connector names only, never a person's data.
//
// Every query is a filtered find with a projection, or a $match + $group
// ($sum) aggregate: what FerretDB v1 runs too. Each is served by an index of
// mongostore.Indexes on MongoDB; FerretDB scans. Medians are computed in Go
// from a streamed projection ($percentile and $median are MongoDB 7 only and
// FerretDB has neither).

// RequestCount counts the requests of one status, type and regulation.
// Status is empty in counts that are not by status.
type RequestCount struct {
	Status     Status
	Type       Type
	Regulation Regulation
	N          int64
}

// JobCount counts the jobs of one connector and action.
type JobCount struct {
	Connector string
	Action    Action
	N         int64
}

// Completion is when a completed request was received and closed.
type Completion struct {
	ID         string     `bson:"_id"`
	Type       Type       `bson:"type"`
	Regulation Regulation `bson:"regulation"`
	ReceivedAt time.Time  `bson:"received_at"`
	ClosedAt   time.Time  `bson:"closed_at"`
}

// Days is the time from receipt to completion, in days: the
// [Request.DaysToRespond] of a completed request.
func (c Completion) Days() float64 { return days(c.ClosedAt.Sub(c.ReceivedAt)) }

// JobOutcome is how a job ended, and when.
type JobOutcome struct {
	ID         string    `bson:"_id"`
	Connector  string    `bson:"connector"`
	Action     Action    `bson:"action"`
	Status     JobStatus `bson:"status"`
	CreatedAt  time.Time `bson:"created_at"`
	FinishedAt time.Time `bson:"finished_at"`
}

// SummaryWindow parses the dates of a summary's window, YYYY-MM-DD each (UTC
// midnight): from inclusive, to exclusive. It reports every problem as a
// *ValidationError naming "from" or "to": a missing or malformed date, from
// not before to, or a window over two years.
func SummaryWindow(from, to string) (time.Time, time.Time, error) {
	var ve ValidationError
	parse := func(name, s string) (time.Time, bool) {
		if s == "" {
			ve.Add(name, "required: a date, YYYY-MM-DD (UTC)")
			return time.Time{}, false
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			ve.Add(name, "must be a date, YYYY-MM-DD (UTC), e.g. 2026-01-01")
			return time.Time{}, false
		}
		return t, true
	}
	f, okFrom := parse("from", from)
	t, okTo := parse("to", to)
	if okFrom && okTo {
		switch {
		case !f.Before(t):
			ve.Add("to", "must be after from: the window is [from, to), to excluded")
		case t.After(f.AddDate(2, 0, 0)):
			ve.Add("to", "must be at most 2 years after from")
		}
	}
	return f, t, ve.Err()
}

// Summary is the compliance report of the requests received in a window: per
// type and regulation, how many were received and how they were answered
// (CCPA 11 CCR 7102(a)). Requests are counted by their received_at, in
// [From, To), in the status they have when the summary is made.
type Summary struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Rows has one entry per type and regulation with requests, by type
	// (access, deletion, opt_out) then regulation, in the order of [Types]
	// and [Regulations].
	Rows []SummaryRow `json:"rows"`
	// Total sums every row; its medians and means are over all requests.
	Total       SummaryRow `json:"total"`
	GeneratedAt time.Time  `json:"generated_at"`
}

// SummaryRow holds the figures of one type and regulation (both empty in
// the total).
type SummaryRow struct {
	Type       Type       `json:"type,omitempty"`
	Regulation Regulation `json:"regulation,omitempty"`
	// Received counts every request received in the window; it is the sum
	// of Completed, Denied, Open, Cancelled and Expired.
	Received  int `json:"received"`
	Completed int `json:"completed"`
	Denied    int `json:"denied"`
	// DeniedByBasis counts the denied requests by the basis of their
	// denial, every basis of [DenialBases] present (11 CCR
	// 7102(a)(1)(D)); a denial recorded without one counts as other.
	DeniedByBasis map[DenialBasis]int `json:"denied_by_basis"`
	// Open counts the requests still to be answered, duplicates included,
	// and Overdue those of them past their due date when the summary is
	// made, their clock running.
	Open      int `json:"open"`
	Overdue   int `json:"overdue"`
	Cancelled int `json:"cancelled"`
	Expired   int `json:"expired"`
	// Responded counts the requests answered (completed or denied), and
	// OnTime those of them closed no later than their (extended) due date.
	Responded int `json:"responded"`
	OnTime    int `json:"on_time"`
	// MedianDays and MeanDays are the days from receipt to response of the
	// requests answered, to 0.01 day; OnTimeRate is OnTime / Responded, to
	// 0.0001. Each is nil when none was answered.
	MedianDays *float64 `json:"median_days"`
	MeanDays   *float64 `json:"mean_days"`
	OnTimeRate *float64 `json:"on_time_rate"`

	days []float64
}

// order is the place of v in list, or past its end when v is unknown.
func order[T comparable](list []T, v T) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return len(list)
}

// add counts one request, as it is at now. It reads r's Type,
// Regulation, Status, ReceivedAt, DueAt, ClosedAt, DenialBasis and
// PausedAt only.
func (r *SummaryRow) add(d *Request, now time.Time) {
	r.Received++
	switch d.Status {
	case StatusCompleted:
		r.Completed++
	case StatusDenied:
		r.Denied++
		basis := d.DenialBasis
		if !slices.Contains(DenialBases, basis) {
			basis = DeniedOther // recorded before bases were, or unknown to this version
		}
		if r.DeniedByBasis == nil {
			r.DeniedByBasis = map[DenialBasis]int{}
		}
		r.DeniedByBasis[basis]++
	case StatusCancelled:
		r.Cancelled++
	case StatusExpired:
		r.Expired++
	default: // open, duplicate, or a status this version does not know
		r.Open++
		if d.PastDue(now) {
			r.Overdue++
		}
	}
	if d.Responded() {
		r.Responded++
		if d.OnTime() {
			r.OnTime++
		}
		r.days = append(r.days, d.DaysToRespond())
	}
}

// SummaryBuilder makes a [Summary] from the requests received in its
// window, added one by one in any order: Start, then Add for each request,
// then Finish. Add reads only a request's Type, Regulation, Status,
// ReceivedAt, DueAt, ClosedAt, DenialBasis and PausedAt, so a store may read
// only those fields.
type SummaryBuilder struct {
	sum   *Summary
	rows  map[[2]string]*SummaryRow // by type and regulation
	total SummaryRow
}

// Start begins the summary of [from, to), made at now.
func (b *SummaryBuilder) Start(from, to, now time.Time) {
	b.sum = &Summary{From: from.UTC(), To: to.UTC(), Rows: []SummaryRow{}, GeneratedAt: now}
	b.rows = map[[2]string]*SummaryRow{}
}

// Add counts one request in its row and in the total. An opt-in is left
// out: it is the service's record of consent given again, not a request
// a law has the business count and disclose (11 CCR 7102 counts requests
// to know, delete, correct and opt out).
func (b *SummaryBuilder) Add(r *Request) {
	if r.Type == TypeOptIn {
		return
	}
	k := [2]string{string(r.Type), string(r.Regulation)}
	row := b.rows[k]
	if row == nil {
		row = &SummaryRow{Type: r.Type, Regulation: r.Regulation}
		b.rows[k] = row
	}
	row.add(r, b.sum.GeneratedAt)
	b.total.add(r, b.sum.GeneratedAt)
}

// Finish computes the rows' figures and orders them (see [Summary.Rows]),
// and returns the summary.
func (b *SummaryBuilder) Finish() *Summary {
	sum := b.sum
	for _, row := range b.rows {
		row.finish()
		sum.Rows = append(sum.Rows, *row)
	}
	slices.SortFunc(sum.Rows, func(a, b SummaryRow) int {
		if c := order(Types, a.Type) - order(Types, b.Type); c != 0 {
			return c
		}
		if c := order(Regulations, a.Regulation) - order(Regulations, b.Regulation); c != 0 {
			return c
		}
		return cmp.Compare(string(a.Type)+" "+string(a.Regulation), string(b.Type)+" "+string(b.Regulation))
	})
	b.total.finish()
	sum.Total = b.total
	return sum
}

// finish computes the median, the mean and the on-time rate.
func (r *SummaryRow) finish() {
	if r.DeniedByBasis == nil {
		r.DeniedByBasis = map[DenialBasis]int{}
	}
	for _, b := range DenialBases {
		r.DeniedByBasis[b] += 0 // every basis present, zero or not
	}
	if len(r.days) == 0 {
		return
	}
	median, mean := Median(r.days), 0.0
	for _, d := range r.days {
		mean += d
	}
	mean /= float64(len(r.days))
	rate := float64(r.OnTime) / float64(r.Responded)
	median, mean, rate = round(median, 100), round(mean, 100), round(rate, 10000)
	r.MedianDays, r.MeanDays, r.OnTimeRate = &median, &mean, &rate
	r.days = nil
}

// Median returns the median of xs (the mean of the middle two of an even
// count), sorting xs in place; 0 for none.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	slices.Sort(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func round(x, scale float64) float64 { return math.Round(x*scale) / scale }
