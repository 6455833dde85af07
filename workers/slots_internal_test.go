package workers

import (
	"errors"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestJobConnector(t *testing.T) {
	t.Parallel()
	id := "0190c2a4-7b1e-7cc0-8f00-000000000001"
	for _, name := range []string{"shop", "crm-eu_1", "a"} {
		if got := jobConnector(dsr.JobID(id, name, dsr.ActionOptOut)); got != name {
			t.Errorf("jobConnector(JobID(%q)) = %q", name, got)
		}
	}
	if got := jobConnector("no-colon"); got != "" {
		t.Errorf("jobConnector(no-colon) = %q; want empty", got)
	}
}

// TestSlotsBusy: a connector's slots are its own; a job that finds them all
// taken gets ErrConnectorBusy after the wait, and a slot given back is taken
// again.
func TestSlotsBusy(t *testing.T) {
	t.Parallel()
	s := newLimits(limitsConfig{Local: func(name string) int {
		if name == "down" {
			return 1
		}
		return 0
	}, Wait: 50 * time.Millisecond})
	release, err := s.acquire(t.Context(), "down")
	if err != nil {
		t.Fatalf("first slot: %v", err)
	}
	if _, err := s.acquire(t.Context(), "down"); !errors.Is(err, ErrConnectorBusy) {
		t.Fatalf("second slot of a connector with one: err = %v; want ErrConnectorBusy", err)
	}
	for range 3 {
		if _, err := s.acquire(t.Context(), "shop"); err != nil {
			t.Fatalf("a connector without a cap: %v", err)
		}
	}
	release()
	if _, err := s.acquire(t.Context(), "down"); err != nil {
		t.Fatalf("slot given back: %v", err)
	}
}
