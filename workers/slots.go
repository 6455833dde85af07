package workers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrConnectorBusy is returned by a job that found every slot of its
// connector taken (the connector's max_concurrency) for Options.SlotWait.
// The job is untouched in the store (no attempt is counted) and its task is
// retried after a short delay ([BusyDelay]) without counting as a failure,
// so one slow or unreachable system holds at most its own slots, never
// every worker.
var ErrConnectorBusy = errors.New("connector busy: every slot taken")

// BusyDelay is how long a job that found its connector busy waits before
// trying again (with +-25% jitter; asynq looks for due retries every few
// seconds, see ServerOptions.PollInterval).
const BusyDelay = 2 * time.Second

// slots limits how many jobs of each connector run at once in this process.
type slots struct {
	limit func(connector string) int // <= 0: no limit
	wait  time.Duration

	mu  sync.Mutex // guards sem; held only to look up or add a semaphore
	sem map[string]chan struct{}
}

func newSlots(limit func(string) int, wait time.Duration) *slots {
	return &slots{limit: limit, wait: wait, sem: map[string]chan struct{}{}}
}

// acquire takes a slot of connector, waiting up to s.wait. It returns the
// function that gives the slot back, or an error wrapping ErrConnectorBusy
// (or ctx's error).
func (s *slots) acquire(ctx context.Context, connector string) (release func(), err error) {
	s.mu.Lock()
	sem, ok := s.sem[connector]
	if !ok {
		if n := s.limit(connector); n > 0 {
			sem = make(chan struct{}, n)
		}
		s.sem[connector] = sem
	}
	s.mu.Unlock()
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
	}
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-timer.C:
		return nil, fmt.Errorf("connector %s: all %d slots taken: %w", connector, cap(sem), ErrConnectorBusy)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// jobConnector returns the connector named in a job id, which is
// "<request id>:<connector>:<action>" (dsr.JobID): request ids and actions
// hold no colon.
func jobConnector(jobID string) string {
	_, rest, ok := strings.Cut(jobID, ":")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return rest[:i]
	}
	return ""
}
