package consolepage

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// fieldError is a problem with one field of a form: Field is the input's
// name, For the id of the element it is about, Text what is wrong.
type fieldError struct {
	Field, For, Text string
}

// queueData is the queue page's.
type queueData struct {
	Rows []queueRow
	// Status, Type, Regulation, Mine and Overdue are the filters asked for.
	Status, Type, Regulation string
	Mine, Overdue            bool
	Statuses                 []dsr.Status
	Types                    []dsr.Type
	Regulations              []dsr.Regulation
	// Errors are the filters refused (the list is then empty); Field
	// maps a field's name to its message.
	Errors []fieldError
	Field  map[string]string
	// Next is the next page's URL, "" on the last; First the first
	// page's, "" on it.
	Next, First string
}

// queueRow is one request of the queue.
type queueRow struct {
	ID         string
	Type       dsr.Type
	Regulation dsr.Regulation
	Status     dsr.Status
	AssignedTo string
	ReceivedAt time.Time
	DueAt      time.Time
	// Countdown says in words how far the due date is; Overdue marks an
	// open request past it; Live, for an open request whose clock runs,
	// lets console.js refresh the countdown.
	Countdown string
	Overdue   bool
	Live      bool
}

// queue lists the requests, most urgent first (app.Service.List sorted by
// due date), with the filters of its GET form and a cursor to the next
// page.
func (c *console) queue(ctx *gin.Context) {
	q := ctx.Request.URL.Query()
	d := queueData{Status: q.Get("status"), Type: q.Get("type"), Regulation: q.Get("regulation"), Mine: q.Get("mine") == "1",
		Overdue: q.Get("overdue") == "1", Statuses: dsr.Statuses, Types: dsr.Types, Regulations: dsr.Regulations, Field: map[string]string{}}
	lq := app.ListQuery{Status: d.Status, Type: d.Type, Regulation: d.Regulation, Sort: string(dsr.SortDue), Cursor: q.Get("cursor")}
	if d.Mine {
		lq.AssignedTo = httpkit.PrincipalOf(ctx).Name
	}
	if d.Overdue {
		lq.Overdue = "true"
	}
	f, err := c.app.ListFilter(lq)
	if ve := (*dsr.ValidationError)(nil); errors.As(err, &ve) {
		for _, fe := range ve.Fields {
			d.Errors = append(d.Errors, fieldError{Field: fe.Field, For: "filter-" + fe.Field, Text: fe.Field + ": " + fe.Message})
			d.Field[fe.Field] = fe.Message
		}
		c.pages.Render(ctx, http.StatusBadRequest, "queue", d)
		return
	}
	if err != nil {
		c.fail(ctx, err)
		return
	}
	page, err := c.app.List(ctx.Request.Context(), f)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	for i := range page.Requests {
		r := &page.Requests[i]
		key, n := countdown(r, page.Now)
		row := queueRow{ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status, AssignedTo: r.AssignedTo,
			ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Overdue: r.Overdue(page.Now), Live: r.Status.Open() && r.PausedAt == nil}
		if n != 0 {
			row.Countdown = c.pages.T(ctx, key, n)
		} else {
			row.Countdown = c.pages.T(ctx, key)
		}
		d.Rows = append(d.Rows, row)
	}
	keep := url.Values{}
	for _, k := range []string{"status", "type", "regulation", "mine", "overdue"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	if lq.Cursor != "" {
		d.First = "/console"
		if len(keep) > 0 {
			d.First += "?" + keep.Encode()
		}
	}
	if page.NextCursor != "" {
		keep.Set("cursor", page.NextCursor)
		d.Next = "/console?" + keep.Encode()
	}
	c.pages.Render(ctx, http.StatusOK, "queue", d)
}

// countdown says how far r's due date is from now, in whole calendar days
// (UTC), as a message key and, for the keys that count, the number of
// days (0 otherwise): "due in 3 days", "due today", "overdue by 2 days".
// A closed request, or one whose clock is stopped, has no countdown.
func countdown(r *dsr.Request, now time.Time) (key string, n int) {
	switch {
	case !r.Status.Open():
		return "console.countdown.closed", 0
	case r.PausedAt != nil:
		return "console.countdown.paused", 0
	}
	days := dayOf(r.DueAt).Sub(dayOf(now)) / (24 * time.Hour)
	if r.Overdue(now) {
		switch late := int(-days); {
		case late <= 0:
			return "console.countdown.overdue_today", 0
		case late == 1:
			return "console.countdown.overdue_one", 0
		default:
			return "console.countdown.overdue_many", late
		}
	}
	switch {
	case days <= 0:
		return "console.countdown.today", 0
	case days == 1:
		return "console.countdown.tomorrow", 0
	default:
		return "console.countdown.days", int(days)
	}
}

// dayOf is t's date at 00:00 UTC.
func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
