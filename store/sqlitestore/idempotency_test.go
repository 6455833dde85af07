package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

func TestClaimIdempotencyKey(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	tests := []struct {
		name, key, requestID, fingerprint string
		want                              string
		err                               error
	}{
		{"first use claims it", "k1", "r1", "fp1", "r1", nil},
		{"a retry gets the first request", "k1", "r2", "fp1", "r1", nil},
		{"another body is refused", "k1", "r3", "fp2", "", dsr.ErrIdempotencyMismatch},
		{"another key is its own", "k2", "r4", "fp2", "r4", nil},
	}
	for _, tt := range tests {
		got, err := f.store.ClaimIdempotencyKey(ctx, tt.key, tt.requestID, tt.fingerprint)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%s: ClaimIdempotencyKey = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// TestClaimIdempotencyKeyOnce: of 8 retries claiming one key at once, one
// claims it, and all get its request.
func TestClaimIdempotencyKeyOnce(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for i := range 8 {
		wg.Go(func() {
			id, err := f.store.ClaimIdempotencyKey(ctx, "k", fmt.Sprintf("r%d", i), "fp")
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
				return
			}
			mu.Lock()
			ids[id]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Errorf("the claims got requests %v; want one for all", ids)
	}
}
