package connectors

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryAfterError is a connector's answer that its system refused the call
// for now and said when to come back: an HTTP 429 or 503 with Retry-After,
// an API quota spent, a lock held elsewhere. Make one with [RetryAfter].
//
// It is transient, never [ErrPermanent]. A worker that gets it changes
// nothing it stores about the system's work and runs the job again no
// sooner than Delay later; since the system asked for the pause, the attempt
// should not count towards the job's retries (see the workers package).
type RetryAfterError struct {
	// Delay is how long to wait before trying again; at least 1s.
	Delay time.Duration
	// Err is what the system answered.
	Err error
}

// MinRetryAfter is the shortest delay a RetryAfterError asks for.
const MinRetryAfter = time.Second

// RetryAfter returns an error saying the system asks to be called again no
// sooner than d (MinRetryAfter at least); err is its answer.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("rate limited")
	}
	return &RetryAfterError{Delay: max(d, MinRetryAfter), Err: err}
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay.Round(time.Second))
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryDelay reports how long err asks to wait before trying again, when it
// wraps a [RetryAfterError].
func RetryDelay(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.Delay, true
	}
	return 0, false
}

// Retext returns an error whose text is text and which unwraps to err, so
// that errors.Is (ErrPermanent) and RetryDelay still see what err was: for
// an error a connector had to scrub of a subject's identifiers.
func Retext(err error, text string) error {
	return &retexted{text: text, err: err}
}

type retexted struct {
	text string
	err  error
}

func (e *retexted) Error() string { return e.text }
func (e *retexted) Unwrap() error { return e.err }

// MaxRetryAfter bounds the pause a system may ask for in Retry-After.
const MaxRetryAfter = 24 * time.Hour

// RetryAfterHeader reads a Retry-After header's value v: seconds, or an
// HTTP date (measured from now), bounded by MaxRetryAfter. ok is false
// when v is empty or neither.
func RetryAfterHeader(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, MaxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}
