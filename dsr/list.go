package dsr

import "time"

// ListSort orders a list of requests.
type ListSort string

// The orders.
const (
	// SortDue lists the most urgent first: by due date, then id.
	SortDue ListSort = "due"
	// SortNewest lists the newest first.
	SortNewest ListSort = "newest"
)

// ListFilter selects a page of requests. Every field is optional.
type ListFilter struct {
	Status     Status
	Type       Type
	Regulation Regulation
	Source     string
	AssignedTo string
	DueBefore  *time.Time
	DueAfter   *time.Time
	// Overdue keeps the requests overdue at Now ([Request.Overdue]): open,
	// their clock running, past their due date.
	Overdue bool
	Now     time.Time
	Sort    ListSort // default SortDue
	// After is where the previous page ended; nil for the first page.
	After *Cursor
	Limit int // 1..100
}

// Cursor is the position of a request in a list.
type Cursor struct {
	Due time.Time `json:"due"`
	ID  string    `json:"id"`
}
