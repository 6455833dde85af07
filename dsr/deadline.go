package dsr

import "time"

// Due is what the deadline checks read of a request: they filter in the
// query, so a run with nothing to do reads nothing.
type Due struct {
	ID    string    `bson:"_id"`
	DueAt time.Time `bson:"due_at"`
}
