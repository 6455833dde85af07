package sqlitestore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestVerificationRounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	if _, err := f.store.ReserveTry(ctx, r.ID, 5); !errors.Is(err, dsr.ErrNoCode) {
		t.Errorf("a try before any code: %v, want ErrNoCode", err)
	}
	expires := f.clock.Now().Add(15*time.Minute + 123456*time.Nanosecond)
	if err := f.store.IssueVerification(ctx, r.ID, "code1", "token1", expires); err != nil {
		t.Fatal(err)
	}
	if err := f.store.VerificationSent(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ReserveTry(ctx, r.ID, 5); err != nil {
		t.Fatal(err)
	}
	// A new code replaces the first; the try made still counts.
	f.clock.Add(time.Minute)
	if err := f.store.IssueVerification(ctx, r.ID, "code2", "token2", expires); err != nil {
		t.Fatal(err)
	}
	if err := f.store.VerificationSent(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := dsr.Verification{Round: 2, CodeHash: "code2", TokenHash: "token2", ExpiresAt: expires.Truncate(time.Millisecond), SentAt: f.clock.Now(), Tries: 1}
	if v := got.Verification; v == nil || *v != want || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("verification %+v, want %+v", got.Verification, want)
	}

	verified := f.verified(t, dsr.TypeAccess, "grace@example.com")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"issue for a verified request", f.store.IssueVerification(ctx, verified.ID, "c", "t", expires), dsr.ErrConflict},
		{"issue for none", f.store.IssueVerification(ctx, "nope", "c", "t", expires), dsr.ErrNotFound},
		{"sent for a verified request", f.store.VerificationSent(ctx, verified.ID), nil},
		{"sent for none", f.store.VerificationSent(ctx, "nope"), nil},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || (tt.want == nil && tt.err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if got, err := f.store.Request(ctx, verified.ID); err != nil || got.Verification != nil {
		t.Errorf("a verified request got a verification: %+v, %v", got.Verification, err)
	}
	if _, err := f.store.ReserveTry(ctx, verified.ID, 5); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("a try on a verified request: %v, want ErrConflict", err)
	}
	if _, err := f.store.ReserveTry(ctx, "nope", 5); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("a try on no request: %v, want ErrNotFound", err)
	}
}

// TestReserveTryCountsToMax: however many tries arrive at once, max are
// reserved, each with its own count; the rest get ErrLocked with the
// request.
func TestReserveTryCountsToMax(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	if err := f.store.IssueVerification(ctx, r.ID, "code", "token", f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const max, tries = 5, 24
	var (
		mu     sync.Mutex
		counts []int
		locked int
		wg     sync.WaitGroup
	)
	for range tries {
		wg.Go(func() {
			got, err := f.store.ReserveTry(ctx, r.ID, max)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				counts = append(counts, got.Verification.Tries)
			case errors.Is(err, dsr.ErrLocked):
				locked++
				if got == nil || got.Verification == nil || got.Verification.Tries != max {
					t.Errorf("locked: request %+v, want it with %d tries", got, max)
				}
			default:
				t.Errorf("reserve: %v", err)
			}
		})
	}
	wg.Wait()
	slices.Sort(counts)
	if !slices.Equal(counts, []int{1, 2, 3, 4, 5}) || locked != tries-max {
		t.Errorf("reserved %v, %d locked; want 1..%d and %d", counts, locked, max, tries-max)
	}
}

// TestConcurrentAppeals: of several appeals of one denied request at once,
// one is stored.
func TestConcurrentAppeals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	va := f.file(t, dsr.RegulationVCDPA, dsr.TypeDeletion, dsr.StatusVerified, "ada@example.com")
	f.move(t, va.ID, dsr.StatusVerified, dsr.StatusDenied)
	var wins, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			_, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent", Reason: "proof"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, dsr.ErrNotAppealable):
				refused++
			default:
				t.Errorf("appeal: %v", err)
			}
		})
	}
	wg.Wait()
	page, _, err := f.store.ListRequests(ctx, dsr.ListFilter{Source: "appeal", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || refused != 5 || len(page) != 1 {
		t.Errorf("%d won, %d refused, %d appeals stored; want 1, 5, 1", wins, refused, len(page))
	}
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	since := f.clock.Now()
	first := f.verified(t, dsr.TypeAccess, "ada@example.com")
	f.clock.Add(time.Minute)
	second := f.verified(t, dsr.TypeAccess, "ada@example.com")
	deletion := f.verified(t, dsr.TypeDeletion, "ada@example.com")
	unverified := f.verifying(t, "ada@example.com") // its identity not established
	closed := f.verified(t, dsr.TypeAccess, "ada@example.com")
	f.move(t, closed.ID, dsr.StatusVerified, dsr.StatusCancelled)
	other := f.verified(t, dsr.TypeAccess, "grace@example.com")
	hashes := first.ProvenHashes
	// The application's rule (app's filing) over the store's candidates.
	findDuplicate := func(hashes []string, since time.Time) (*dsr.Request, error) {
		cands, err := f.store.OpenDuplicates(ctx, hashes, []dsr.Type{dsr.TypeAccess}, since)
		return dsr.PickDuplicate(cands, hashes, dsr.TypeAccess, since), err
	}

	got, err := findDuplicate(hashes, since)
	if err != nil || got == nil || got.ID != second.ID {
		t.Fatalf("duplicate: %+v, %v; want the newest, %s", got, err, second.ID)
	}
	if got, err := findDuplicate(hashes, since.Add(2*time.Minute)); err != nil || got != nil {
		t.Errorf("received since later: %+v, %v; want none", got, err)
	}
	if got, err := findDuplicate([]string{"email:nobody"}, since); err != nil || got != nil {
		t.Errorf("no such identity: %+v, %v; want none", got, err)
	}
	// Several hashes of one request, several types: each request once.
	all := append(slices.Clone(hashes), other.ProvenHashes...)
	all = append(all, hashes...)
	cands, err := f.store.OpenDuplicates(ctx, all, []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion}, since)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cands {
		ids = append(ids, c.ID)
		if len(c.ProvenHashes) == 0 || c.ReceivedAt.IsZero() || c.Type == "" || c.Status == "" {
			t.Errorf("candidate %+v lacks what PickDuplicate reads", c)
		}
	}
	slices.Sort(ids)
	want := []string{first.ID, second.ID, deletion.ID, other.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("candidates %v, want %v (not %s unverified, not %s closed)", ids, want, unverified.ID, closed.ID)
	}
	if got, err := f.store.OpenDuplicates(ctx, nil, []dsr.Type{dsr.TypeAccess}, since); err != nil || got != nil {
		t.Errorf("no hashes: %v, %v", got, err)
	}
	// An appeal is never a duplicate.
	va := f.file(t, dsr.RegulationVCDPA, dsr.TypeDeletion, dsr.StatusVerified, "alan@example.com")
	f.move(t, va.ID, dsr.StatusVerified, dsr.StatusDenied)
	a, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent", Reason: "proof"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ProvenHashes) == 0 {
		t.Fatal("the appeal has no proven hashes to look it up by")
	}
	if got, err := f.store.OpenDuplicates(ctx, a.ProvenHashes, []dsr.Type{dsr.TypeDeletion}, since); err != nil || len(got) != 0 {
		t.Errorf("an appeal among the candidates: %+v, %v", got, err)
	}
}
