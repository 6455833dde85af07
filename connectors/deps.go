package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/connectors/mask"
)

// Deps are what the service shares with every connector type. Each type
// package exports a factory taking Deps (mongodb.Factory(deps)), and one
// place, package catalog, lists every type; a type takes what it needs and
// ignores the rest. Fields may be nil: a type that needs one that is nil
// says so when a connector of it is configured.
type Deps struct {
	// Mongo is the service's own MongoDB connection, for mongodb
	// connectors configured without a uri of their own.
	Mongo *mongo.Client
	// HTTP is the client for connectors that call web APIs; nil means
	// http.DefaultClient. See [Deps.HTTPClient].
	HTTP *http.Client
	// Log is the service's logger; a connector names itself in what it
	// logs (Log.With("connector", name)) and never logs personal data.
	// nil: discard. See [Deps.Logger].
	Log *slog.Logger
	// Limiter paces a connector's own calls to its system across every
	// worker process (an API allowing 100 calls a minute per account). nil:
	// no pacing. The worker paces whole jobs itself (max_rate); this is for
	// a connector that makes many calls per job.
	Limiter Limiter
	// Mask masks fields for connectors that erase by masking, under the
	// service's mask key (mask.KeyFrom the blind-index key). nil: the
	// keyed strategies (hmac, email_format) are refused when a connector
	// that names them is configured.
	Mask *mask.Masker
	// PublicURL is the base URL at which dsar's API is reached
	// (DSAR_PUBLIC_URL), for connectors whose systems call back (POST
	// PublicURL/v1/callbacks/{job}); empty: they offer no callback unless
	// their settings name one.
	PublicURL string
	// Tasks hands work to people, for connectors whose system has no API
	// (the manual type). nil: such connectors are refused when configured.
	Tasks Tasks
	// Now is the clock of connectors that keep time (a manual task's
	// reminders); nil: time.Now. See [Deps.Clock].
	Now func() time.Time
}

// Clock returns d.Now, or time.Now when it is nil.
func (d Deps) Clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}

// HTTPClient returns d.HTTP, or http.DefaultClient when it is nil.
func (d Deps) HTTPClient() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return http.DefaultClient
}

// NoRedirects returns a copy of hc (http.DefaultClient when nil) that
// follows no redirect: the 3xx itself is returned as the response, for the
// caller to treat as the error it is. Every connector calling a SaaS API
// uses it: none of those APIs answers a redirect, and a followed one turns
// a POST or DELETE into a GET to a host of the redirect's choosing, whose
// 2xx would pass for the vendor's (a subject counted erased who was not).
// hc itself is not changed.
func NoRedirects(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Logger returns d.Log, or a logger that discards when it is nil.
func (d Deps) Logger() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Limiter counts events against rates shared by every worker process.
type Limiter interface {
	// Take counts one event of key against r. It returns 0 when the event
	// may go now, or, when r is spent, how long until it may be asked
	// again (the event is then not counted). Keys of one connector start
	// with its name ("crm/api").
	Take(ctx context.Context, key string, r Rate) (wait time.Duration, err error)
}

// Rate is at most N events per period Per. The zero Rate is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports whether r sets no limit.
func (r Rate) IsZero() bool { return r.N <= 0 || r.Per <= 0 }

// String writes r as the connectors file does: "10/s", "600/m", "5000/h".
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	for _, u := range rateUnits {
		if r.Per == u.per {
			return strconv.Itoa(r.N) + "/" + u.name
		}
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

var rateUnits = []struct {
	name string
	per  time.Duration
}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}

var ratePattern = regexp.MustCompile(`^([0-9]{1,7})/(s|m|h)$`)

// maxRateN bounds N in a Rate read from the file.
const maxRateN = 1_000_000

// ParseRate reads a rate as the connectors file writes it: N/s, N/m or N/h,
// N from 1 to 1,000,000 ("10/s", "600/m").
func ParseRate(s string) (Rate, error) {
	m := ratePattern.FindStringSubmatch(s)
	if m == nil {
		return Rate{}, fmt.Errorf("want N/s, N/m or N/h with N from 1 to %d, not %q", maxRateN, s)
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > maxRateN {
		return Rate{}, fmt.Errorf("want N/s, N/m or N/h with N from 1 to %d, not %q", maxRateN, s)
	}
	for _, u := range rateUnits {
		if u.name == m[2] {
			return Rate{N: n, Per: u.per}, nil
		}
	}
	return Rate{}, fmt.Errorf("unknown unit in %q", s) // unreachable: the pattern lists the units
}
