package consolepage

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/app"
)

// dashboardData is the dashboard page's.
type dashboardData struct {
	app.Dashboard
	// Rate is the on-time rate in whole percent; HasRate false when no
	// request of the weeks was answered.
	Rate    int
	HasRate bool
	// Last is the last day of the weeks (To less a day).
	Last      time.Time
	Chart     chart
	NWeeks    int
	Completed int
}

// The chart's drawing area, in the SVG's user units (it scales to the
// page's width).
const (
	chartW, chartH                       = 640, 260
	padLeft, padRight, padTop, padBottom = 44, 8, 12, 44
)

// chart is the weekly bar chart, drawn on the server: every coordinate is
// computed here, the template only writes the elements.
type chart struct {
	W, H   int
	Bars   []bar
	Ticks  []tick
	Labels []label
	// Axis is the x axis's line: from (X1, Y) to (X2, Y).
	X1, X2, Y float64
}

// bar is one bar: received or completed, of one week.
type bar struct {
	Class      string
	X, Y, W, H float64
	Title      string
}

// tick is a line of the y axis's grid with its value.
type tick struct {
	Y     float64
	Value int
}

// label is a week's label under the x axis.
type label struct {
	X    float64
	Text string
}

// dashboard shows the counts by status, the on-time rate of the requests
// received in the last 12 weeks, and the chart of requests received and
// completed per week, with a table of the same figures.
func (c *console) dashboard(ctx *gin.Context) {
	dash, err := c.app.Dashboard(ctx.Request.Context())
	if err != nil {
		c.fail(ctx, err)
		return
	}
	d := dashboardData{Dashboard: dash, Last: dash.To.AddDate(0, 0, -1), NWeeks: app.DashboardWeeks}
	if rate, ok := dash.OnTimeRate(); ok {
		d.Rate, d.HasRate = int(math.Round(rate*100)), true
	}
	for _, w := range dash.Weeks {
		d.Completed += w.Completed
	}
	d.Chart = c.draw(ctx, dash.Weeks)
	c.pages.Render(ctx, http.StatusOK, "dashboard", d)
}

// draw lays out the chart of weeks: per week a bar of the requests
// received and one of those completed, on a y axis from 0 to a round
// maximum in four steps.
func (c *console) draw(ctx *gin.Context, weeks []app.WeekFigures) chart {
	top := 0
	for _, w := range weeks {
		top = max(top, w.Received, w.Completed)
	}
	step := max(1, (top+3)/4)
	top = 4 * step
	ch := chart{W: chartW, H: chartH, X1: padLeft, X2: chartW - padRight, Y: chartH - padBottom}
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBottom)
	y := func(v int) float64 { return round1(ch.Y - plotH*float64(v)/float64(top)) }
	for i := 0; i <= 4; i++ {
		ch.Ticks = append(ch.Ticks, tick{Y: y(i * step), Value: i * step})
	}
	group := plotW / float64(len(weeks))
	bw := round1(group * 0.36)
	for i, w := range weeks {
		x := padLeft + group*float64(i) + group*0.12
		week := c.short(ctx, w.Start)
		for j, v := range []struct {
			class, key string
			n          int
		}{{"bar-received", "console.chart.bar_received", w.Received}, {"bar-completed", "console.chart.bar_completed", w.Completed}} {
			ch.Bars = append(ch.Bars, bar{Class: v.class, X: round1(x + float64(j)*bw), Y: y(v.n), W: bw, H: round1(ch.Y - y(v.n)),
				Title: c.pages.T(ctx, v.key, week, v.n)})
		}
		if i%2 == 0 {
			ch.Labels = append(ch.Labels, label{X: round1(x + bw), Text: week})
		}
	}
	return ch
}

// short is a day as "2 Mar" in the page's language.
func (c *console) short(ctx *gin.Context, t time.Time) string {
	return fmt.Sprintf("%d %s", t.Day(), c.pages.T(ctx, fmt.Sprintf("console.month.%d", int(t.Month()))))
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// queuesData is the queues page's.
type queuesData struct {
	Queues []*asynq.QueueInfo
	// Unavailable: the console has no access to the queues; Failed: they
	// could not be read now.
	Unavailable, Failed bool
}

// queuesPage shows the job queues (admins only): their sizes by state and
// what they processed and failed today.
func (c *console) queuesPage(ctx *gin.Context) {
	if c.queues == nil {
		c.pages.Render(ctx, http.StatusOK, "queues", queuesData{Unavailable: true})
		return
	}
	names, err := c.queues.Queues()
	var d queuesData
	for _, n := range names {
		if err != nil {
			break
		}
		var info *asynq.QueueInfo
		if info, err = c.queues.GetQueueInfo(n); err == nil {
			d.Queues = append(d.Queues, info)
		}
	}
	if err != nil {
		c.log.ErrorContext(ctx.Request.Context(), "queues not read", "error", err)
		c.pages.Render(ctx, http.StatusServiceUnavailable, "queues", queuesData{Failed: true})
		return
	}
	c.pages.Render(ctx, http.StatusOK, "queues", d)
}
