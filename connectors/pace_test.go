package connectors_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// waits is a Limiter answering its waits in turn, then 0.
type waits struct {
	next []time.Duration
	keys []string
}

func (w *waits) Take(_ context.Context, key string, _ connectors.Rate) (time.Duration, error) {
	w.keys = append(w.keys, key)
	if len(w.next) == 0 {
		return 0, nil
	}
	d := w.next[0]
	w.next = w.next[1:]
	return d, nil
}

// TestPacer: a short wait is slept in process and the call asked again; a
// wait longer than MaxWait, or one that would outlast the deadline, is a
// RetryAfter of that wait naming the limit; no limiter or no rate paces
// nothing.
func TestPacer(t *testing.T) {
	t.Parallel()
	r := connectors.Rate{N: 3, Per: time.Second}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		waits    []time.Duration
		deadline time.Duration // 0: none
		slept    []time.Duration
		retry    time.Duration // 0: no error
	}{
		{"free", nil, 0, nil, 0},
		{"short waits slept", []time.Duration{time.Second, 2 * time.Second}, 0, []time.Duration{time.Second, 2 * time.Second}, 0},
		{"long wait to the queue", []time.Duration{time.Minute}, 0, nil, time.Minute},
		{"past the deadline", []time.Duration{3 * time.Second}, 2 * time.Second, nil, 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, now.Add(tt.deadline))
				defer cancel()
			}
			lim := &waits{next: tt.waits}
			var slept []time.Duration
			p := connectors.Pacer{Limiter: lim, MaxWait: 5 * time.Second, Now: func() time.Time { return now },
				Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
			err := p.Take(ctx, "crm/api", r, "Acme's documented limit")
			if len(slept) != len(tt.slept) {
				t.Errorf("slept %v; want %v", slept, tt.slept)
			}
			switch d, ok := connectors.RetryDelay(err); {
			case tt.retry == 0 && err != nil:
				t.Errorf("Take = %v; want nil", err)
			case tt.retry > 0 && (!ok || d != tt.retry || !strings.Contains(err.Error(), "Acme's documented limit (3/s) is spent")):
				t.Errorf("Take = %v (delay %v, %v); want a RetryAfter of %v naming the limit", err, d, ok, tt.retry)
			}
			for _, k := range lim.keys {
				if k != "crm/api" {
					t.Errorf("key %q", k)
				}
			}
		})
	}
	if err := (connectors.Pacer{}).Take(t.Context(), "k", r, "x"); err != nil {
		t.Errorf("no limiter: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := connectors.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on an ended context = %v", err)
	}
}

// TestRetext: a retexted error reads its new text and is still what it
// wrapped: permanent, or a RetryAfter with its delay.
func TestRetext(t *testing.T) {
	t.Parallel()
	perm := connectors.Retext(connectors.Permanent(errors.New("no ada@example.com")), "no [email]")
	if perm.Error() != "no [email]" || !errors.Is(perm, connectors.ErrPermanent) {
		t.Errorf("permanent: %q, permanent %v", perm, errors.Is(perm, connectors.ErrPermanent))
	}
	later := connectors.Retext(connectors.RetryAfter(time.Minute, errors.New("busy for ada@example.com")), "busy")
	if d, ok := connectors.RetryDelay(later); !ok || d != time.Minute || later.Error() != "busy" {
		t.Errorf("retry: %q, %v %v", later, d, ok)
	}
}
