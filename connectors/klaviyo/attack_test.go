package klaviyo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// TestEraseManyProfiles: a person with more profiles than a page, and
// than a handle can name, is erased whole: one deletion job for the
// identifier that matched them all (Klaviyo deletes "all profiles that
// match"), a handle within the worker's 512 bytes, polls until the
// profiles it names are gone, and a result that counts every profile.
func TestEraseManyProfiles(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	const n = 45
	f.set(func(f *fake) {
		f.pageSize = 7
		for i := range n {
			f.add(&fakeProfile{id: fmt.Sprintf("01HADAMORE%016d", i), email: adaEmail}, 1)
		}
	})
	c := f.connector(t, Spec{})
	res, err := c.Erase(t.Context(), ada)
	if err != nil || res.Pending == nil {
		t.Fatalf("Erase: %+v, %v; want Pending", res, err)
	}
	if len(res.Pending.Handle) > 512 || !strings.HasPrefix(res.Pending.Handle, "erase:46*:") {
		t.Errorf("handle %q (%d bytes); want erase:46*:... within 512 bytes", res.Pending.Handle, len(res.Pending.Handle))
	}
	if strings.Contains(res.Pending.Handle, "@") || strings.Contains(res.Pending.Unanswered, adaEmail) {
		t.Errorf("handle or Unanswered names the subject: %+v", res.Pending)
	}
	f.set(func(f *fake) {
		if fmt.Sprint(f.deletedBy) != "[email]" {
			t.Errorf("deletion jobs by %v; want one, by email (the phone matched only profiles the email did)", f.deletedBy)
		}
		for _, q := range f.filters {
			if strings.Contains(q, "email") && !strings.Contains(q, `"`+adaEmail+`"`) {
				t.Errorf("filter %q", q)
			}
		}
	})
	h := res.Pending.Handle
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("still pending after %d polls: %s", i, h)
		}
		res, err = c.Poll(t.Context(), connectors.ActionErase, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pending == nil {
			break
		}
		if len(res.Pending.Handle) > 512 {
			t.Fatalf("poll handle of %d bytes", len(res.Pending.Handle))
		}
		h = res.Pending.Handle
	}
	if res.Records != n+1 || !strings.Contains(res.Collections[0].Note, "identifier-wide") {
		t.Errorf("result %+v; want %d profiles deleted, the note saying not all were looked up", res, n+1)
	}
	f.set(func(f *fake) {
		for id, p := range f.profiles {
			if p.email == adaEmail {
				t.Errorf("profile %s of the subject left", id)
			}
		}
		if _, ok := f.profiles[bobID]; !ok {
			t.Error("bob deleted")
		}
	})
}

// TestBulkJobsBatched: suppression and unsubscribe jobs carry at most 100
// profiles each, as Klaviyo documents.
func TestBulkJobsBatched(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	c := f.connector(t, Spec{})
	var emails []string
	for i := range 250 {
		emails = append(emails, fmt.Sprintf("p%d@example.com", i))
	}
	if err := c.client.Suppress(t.Context(), emails); err != nil {
		t.Fatal(err)
	}
	if err := c.client.Unsubscribe(t.Context(), emails, listID); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fake) {
		if fmt.Sprint(f.jobSizes) != "[100 100 50 100 100 50]" {
			t.Errorf("job sizes %v; want 100, 100, 50 for each", f.jobSizes)
		}
		if len(f.suppressed) != 250 {
			t.Errorf("%d suppressed; want 250", len(f.suppressed))
		}
	})
}

// stepLimiter answers Take with the waits in waits[key] one after the
// other, then 0; it records every key and rate asked.
type stepLimiter struct {
	mu    sync.Mutex
	waits map[string][]time.Duration
	taken []string
}

func (l *stepLimiter) Take(_ context.Context, key string, r connectors.Rate) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.taken = append(l.taken, key+"="+r.String())
	if w := l.waits[key]; len(w) > 0 {
		l.waits[key] = w[1:]
		return w[0], nil
	}
	return 0, nil
}

// TestPacing: every call is counted against its endpoint's documented
// burst and steady limits through Deps.Limiter; a short wait is slept,
// a long one (the steady window) is a RetryAfter before any call is made;
// a 429 is still a RetryAfter.
func TestPacing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	l := &stepLimiter{waits: map[string][]time.Duration{
		"marketing/profiles/s": {300 * time.Millisecond},
		"marketing/deletion/m": {40 * time.Second},
	}}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("api_key: "+fakeKey), &node); err != nil {
		t.Fatal(err)
	}
	conn, err := Factory(connectors.Deps{HTTP: f.srv.Client(), Limiter: l})(t.Context(), "marketing", node.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*Connector)
	c.client.Base = f.srv.URL
	var slept []time.Duration
	c.client.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }

	if _, err := c.Export(t.Context(), ada, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(slept) != "[300ms]" {
		t.Errorf("slept %v; want the burst wait of 300ms once", slept)
	}
	want := []string{"marketing/profiles/s=75/s", "marketing/profiles/m=700/m", "marketing/events/s=350/s", "marketing/events/m=3500/m"}
	for _, w := range want {
		if !strings.Contains(strings.Join(l.taken, " "), w) {
			t.Errorf("limiter asked %v; want %s among them", l.taken, w)
		}
	}
	_, err = c.Erase(t.Context(), ada)
	if d, ok := connectors.RetryDelay(err); !ok || d != 40*time.Second || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Erase with the deletion's steady window spent: %v; want RetryAfter 40s", err)
	}
	if f.deletions != 0 {
		t.Errorf("%d deletion jobs filed past the limiter", f.deletions)
	}
	if !strings.Contains(strings.Join(l.taken, " "), "marketing/deletion/s=3/s") {
		t.Errorf("limiter asked %v; want the deletion's 3/s", l.taken)
	}
	f.set(func(f *fake) { f.limited = true })
	if _, err := c.Export(t.Context(), ada, &recorder{}); !isRetry(err, 7*time.Second) {
		t.Errorf("429 under pacing: %v; want RetryAfter 7s", err)
	}
}

func isRetry(err error, d time.Duration) bool {
	got, ok := connectors.RetryDelay(err)
	return ok && got == d && !errors.Is(err, connectors.ErrPermanent)
}

// TestAttacks: what a hostile or broken answer can make the connector do.
func TestAttacks(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a call reached another host: %s %s (authorization %q)", r.Method, r.URL, r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	secret := "ada@example.com"
	for _, tc := range []struct {
		name   string
		hook   func(f *fake, w http.ResponseWriter, r *http.Request) bool
		action connectors.Action
		check  func(t *testing.T, f *fake, err error)
	}{
		{"next to another path on the host", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/api/profiles" {
				fmt.Fprintf(w, `{"data":[],"links":{"next":%q}}`, f.srv.URL+"/api/profiles/../data-privacy-deletion-jobs?page%5Bcursor%5D=1")
				return true
			}
			if r.URL.Path != "/api/profiles" {
				t.Errorf("followed a next link to %s", r.URL.Path)
			}
			return false
		}, connectors.ActionExport, permanentSaying("links.next")},
		{"next to another host", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			fmt.Fprintf(w, `{"data":[],"links":{"next":%q}}`, other.URL+"/api/profiles?page%5Bcursor%5D=1")
			return true
		}, connectors.ActionExport, permanentSaying("links.next")},
		{"next that repeats itself", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			fmt.Fprintf(w, `{"data":[],"links":{"next":%q}}`, f.srv.URL+r.URL.String())
			return true
		}, connectors.ActionExport, permanentSaying("links.next")},
		{"redirect on a write", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return true
			}
			return false
		}, connectors.ActionErase, permanentSaying("307")},
		{"redirect on a read", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
			return true
		}, connectors.ActionExport, permanentSaying("302")},
		{"huge body", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"data":[` + strings.Repeat(`{"type":"profile","id":"x"},`, maxBody/27+10) + `{}]}`))
			return true
		}, connectors.ActionExport, permanentSaying("over")},
		{"non-JSON 200", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte("<html>sign in, " + secret + "</html>"))
			return true
		}, connectors.ActionExport, permanentSaying("not the documented JSON:API")},
		{"profile id with a path", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/api/profiles" {
				_, _ = w.Write([]byte(`{"data":[{"type":"profile","id":"../lists?x=1","attributes":{"email":"ada@example.com"}}],"links":{"next":null}}`))
				return true
			}
			t.Errorf("a call after a bad id: %s %s", r.Method, r.URL)
			return false
		}, connectors.ActionErase, permanentSaying("valid id")},
		{"error quoting the subject", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "The profile "+secret+" is invalid.")
			return true
		}, connectors.ActionOptOut, permanentSaying("invalid Invalid input.")},
		{"429 without Retry-After", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			writeErrors(w, http.StatusTooManyRequests, "throttled", "Request was throttled.", "")
			return true
		}, connectors.ActionExport, func(t *testing.T, _ *fake, err error) {
			if !isRetry(err, time.Second) {
				t.Errorf("err = %v; want RetryAfter 1s", err)
			}
		}},
		{"429 with a Retry-After of a year", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "31536000")
			writeErrors(w, http.StatusTooManyRequests, "throttled", "Request was throttled.", "")
			return true
		}, connectors.ActionExport, func(t *testing.T, _ *fake, err error) {
			if !isRetry(err, time.Hour) {
				t.Errorf("err = %v; want RetryAfter bounded to 1h", err)
			}
		}},
		{"429 with a garbage Retry-After", func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "-5, soon")
			writeErrors(w, http.StatusTooManyRequests, "throttled", "Request was throttled.", "")
			return true
		}, connectors.ActionExport, func(t *testing.T, _ *fake, err error) {
			if !isRetry(err, time.Second) {
				t.Errorf("err = %v; want RetryAfter 1s", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.seed()
			f.set(func(ff *fake) {
				ff.hook = func(w http.ResponseWriter, r *http.Request) bool { return tc.hook(f, w, r) }
			})
			logs := &bytes.Buffer{}
			c := f.connector(t, Spec{})
			c.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, err := connectors.Run(t.Context(), c, tc.action, ada, &recorder{})
			if err == nil {
				t.Fatal("no error")
			}
			tc.check(t, f, err)
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), "@") {
				t.Errorf("the subject's email in the error or the logs: %v\n%s", err, logs.String())
			}
		})
	}
}

func permanentSaying(s string) func(t *testing.T, _ *fake, err error) {
	return func(t *testing.T, _ *fake, err error) {
		t.Helper()
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v; want a permanent error saying %q", err, s)
		}
	}
}

// TestOddEmails: an email with a plus or percent sign is searched as it
// is, URL-encoded only by the query; one with a double quote, backslash
// or control character is not searched (Klaviyo documents no escape), so
// it cannot change the filter.
func TestOddEmails(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	odd := "a+b%41c@example.com"
	f.set(func(f *fake) { f.add(&fakeProfile{id: "01HODDPROFILE0000000000000", email: odd}, 1) })
	c := f.connector(t, Spec{})
	res, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: odd}}}, &recorder{})
	if err != nil || res.Records != 2 {
		t.Errorf("export of %s: %+v, %v; want its profile and event", odd, res, err)
	}
	for _, bad := range []string{`x"),equals(email,"ada@example.com`, `x\"@example.com`, "x\n@example.com", "x\t@example.com"} {
		f.set(func(f *fake) { f.filters = nil })
		res, err := c.Erase(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: bad}}})
		if err != nil || len(res.Collections) != 1 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
			t.Errorf("erase of %q: %+v, %v; want not searched", bad, res, err)
		}
		f.set(func(f *fake) {
			if len(f.filters) != 0 || f.deletions != 0 {
				t.Errorf("%q reached Klaviyo: filters %v, %d deletions", bad, f.filters, f.deletions)
			}
		})
	}
}

// TestJobNeverFinishes: a deletion Klaviyo never completes keeps the job
// waiting, poll after poll, on the same handle; what the job says at its
// deadline names profile ids, never the subject.
func TestJobNeverFinishes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.lag = 1 << 30 })
	c := f.connector(t, Spec{})
	res, err := c.Erase(t.Context(), ada)
	if err != nil || res.Pending == nil {
		t.Fatalf("Erase: %+v, %v", res, err)
	}
	for range 20 {
		res, err = c.Poll(t.Context(), connectors.ActionErase, res.Pending.Handle, nil)
		if err != nil || res.Pending == nil || res.Pending.Handle != "erase:"+adaID {
			t.Fatalf("poll: %+v, %v; want still waiting on erase:%s", res, err, adaID)
		}
	}
	if !strings.Contains(res.Pending.Unanswered, adaID) || strings.Contains(res.Pending.Unanswered, "@") {
		t.Errorf("Unanswered = %q", res.Pending.Unanswered)
	}
}

// TestHugeErrorBody: a 429 with a body over the bound is still a
// RetryAfter, not a permanent failure.
func TestHugeErrorBody(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) {
		f.hook = func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write(bytes.Repeat([]byte("x"), maxBody+100))
			return true
		}
	})
	if _, err := f.connector(t, Spec{}).Export(t.Context(), ada, &recorder{}); !isRetry(err, 3*time.Second) {
		t.Errorf("err = %v; want RetryAfter 3s", err)
	}
}

// TestPacingShared: two connectors of the same name (two worker
// processes) on the service's Redis limiter together stay within the
// deletion endpoint's burst of 3 a second: eight deletion jobs filed at
// once take at least two seconds.
func TestPacingShared(t *testing.T) {
	t.Parallel()
	rd := testenv.RedisServer(t)
	prefix := testenv.Name("dsar_test_limit") + ":"
	f := newFake(t)
	f.seed()
	var mu sync.Mutex
	var at []time.Time
	f.set(func(f *fake) {
		f.hook = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
			}
			return false
		}
	})
	var wg sync.WaitGroup
	start := time.Now()
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: rd.Addr})
		t.Cleanup(func() { _ = rdb.Close() })
		c := f.connector(t, Spec{})
		c.client.Limiter = workers.NewRateLimiter(rdb, prefix)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.client.RequestDeletion(t.Context(), "email", adaEmail); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if len(at) != 8 || time.Since(start) < 2*time.Second-100*time.Millisecond {
		t.Fatalf("%d deletion jobs in %v; want 8 in at least 2s (3 a second)", len(at), time.Since(start))
	}
	// Three fixed one-second windows at least: 3, 3 and 2 calls.
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	if got := at[7].Sub(at[0]); got < 2*time.Second-100*time.Millisecond {
		t.Errorf("first to last deletion job %v apart; want about 2s or more", got)
	}
}
