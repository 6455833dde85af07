// Package suppression keeps the suppression list in memory, so that a check
// of ten thousand identities costs their keyed hashes and a map lookup
// each, never a store query per identity. A [Set] is loaded from the
// store's change feed and kept fresh by it; see [Set.Refresh] for what a
// refresh promises.
package suppression

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// Feed is the store's change feed of the suppression list
// (store.Suppressions.EachSuppressionChange): every entry whose UpdatedAt
// is at or after since, in UpdatedAt order; since zero, every entry.
type Feed interface {
	EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error
}

// Overlap is how far back of the latest change it has read a refresh
// reads again: a writer whose clock is behind the others' by up to this,
// or whose write became visible up to this late, is still seen by the
// next refresh. Entries read twice are applied twice, harmlessly. Once
// Overlap has passed on the set's clock since it read a new latest
// change, refreshes read only what follows that change, so a burst of
// writes (an import) is not read again by every refresh after it.
const Overlap = 2 * time.Second

// ReloadEvery is how often the set reads the whole list again (in the
// background; see Set.Refresh): an entry missed by every overlapping read
// (a writer more than Overlap late) stays unseen until the first reload
// that starts after it became visible completes, within ReloadEvery plus
// the time between refreshes plus one reload's duration.
const ReloadEvery = 10 * time.Minute

// ID is a suppression hash ("kind:hex") in the set's own form: one byte
// for the kind (its place in dsr.Kinds, plus one) and the 32 bytes of the
// HMAC. A zero ID is no hash.
type ID [33]byte

// ParseID returns the ID of a suppression hash, and false when hash is
// not one (dsr.ValidSuppressionHash). It does not allocate.
func ParseID(hash string) (ID, bool) {
	var id ID
	i := 0
	for i < len(hash) && hash[i] != ':' {
		i++
	}
	if i == len(hash) || len(hash)-i-1 != 2*sha256.Size {
		return ID{}, false
	}
	k := kindByte(hash[:i])
	if k == 0 {
		return ID{}, false
	}
	id[0] = k
	h := hash[i+1:]
	for j := range sha256.Size {
		hi, ok1 := fromHex(h[2*j])
		lo, ok2 := fromHex(h[2*j+1])
		if !ok1 || !ok2 {
			return ID{}, false
		}
		id[1+j] = hi<<4 | lo
	}
	return id, true
}

// fromHex decodes one lower-case hex digit, as suppression hashes are
// written.
func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// kindByte is the ID byte of kind, 0 for an unknown kind.
func kindByte(kind string) byte {
	for i, k := range dsr.Kinds {
		if string(k) == kind {
			return byte(i + 1)
		}
	}
	return 0
}

// Kind is the identity kind of id.
func (id ID) Kind() dsr.Kind {
	if id[0] == 0 || int(id[0]) > len(dsr.Kinds) {
		return ""
	}
	return dsr.Kinds[id[0]-1]
}

// String is id as a suppression hash, "kind:hex"; "" for the zero ID.
func (id ID) String() string {
	k := id.Kind()
	if k == "" {
		return ""
	}
	return string(k) + ":" + hex.EncodeToString(id[1:])
}

// Hasher computes the IDs of normalised identities under a suppression
// key, as [dsr.SuppressionKey.Hash] does, reusing one HMAC state and one
// buffer: no allocation per identity. A Hasher is not safe for concurrent
// use; give each goroutine its own.
type Hasher struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher under key.
func NewHasher(key dsr.SuppressionKey) *Hasher {
	return &Hasher{mac: hmac.New(sha256.New, key[:]), buf: make([]byte, 0, 256)}
}

// ID returns the ID of the normalised identity value of kind: the ID of
// key.Hash(kind, value). It returns the zero ID for an unknown kind.
func (h *Hasher) ID(kind dsr.Kind, value string) ID {
	var id ID
	if id[0] = kindByte(string(kind)); id[0] == 0 {
		return ID{}
	}
	h.buf = append(append(append(h.buf[:0], kind...), 0), value...)
	h.mac.Reset()
	h.mac.Write(h.buf)
	h.mac.Sum(h.sum[:0])
	copy(id[1:], h.sum[:])
	return id
}

// scopeBit is the bit of scope in an entry's mask, 0 for an unknown
// scope.
func scopeBit(scope dsr.Scope) uint8 {
	for i, s := range dsr.Scopes {
		if s == scope {
			return 1 << i
		}
	}
	return 0
}

// wantBits is the mask of the entries that suppress an identity for a
// check under scope: for a purpose, an entry under it or under
// dsr.ScopeAll; for dsr.ScopeAll ("may I use this person for every
// purpose?"), an entry under any scope; for an unknown scope, as for a
// use no purpose names, an entry under dsr.ScopeAll.
func wantBits(scope dsr.Scope) uint8 {
	switch bit := scopeBit(scope); bit {
	case allBit:
		return ^uint8(0)
	default:
		return bit | allBit
	}
}

var allBit = scopeBit(dsr.ScopeAll)

// Set is the active part of the suppression list in memory: for each
// suppressed identity (by its hash), the scopes it is suppressed under. It
// holds no identity in clear, and about 50 bytes per suppressed identity.
// Its methods are safe for concurrent use.
type Set struct {
	feed Feed
	key  dsr.SuppressionKey
	now  func() time.Time

	mu      sync.RWMutex
	entries entries

	// sem is held by the one refresh running; next is the refresh that
	// starts after it, which callers arriving meanwhile wait for.
	sem  chan struct{}
	fmu  sync.Mutex
	next *flight

	// Owned by the refresh holding sem.
	seen     time.Time // the latest UpdatedAt read (the writers' clocks)
	seenAt   time.Time // when the refresh that read it started (the set's clock)
	reloaded time.Time // when the last full read that was swapped in started (the set's clock)

	reloading atomic.Bool    // a full reload runs in the background
	reloads   sync.WaitGroup // the background reloads running

	// Guarded by mu.
	refreshed time.Time // when the last successful refresh started
}

// flight is one refresh, which the callers that wait for it share.
type flight struct {
	done chan struct{}
	err  error
}

// NewSet returns an empty set over feed, whose hashes are under key. It
// reads nothing until its first refresh.
func NewSet(feed Feed, key dsr.SuppressionKey) *Set {
	return &Set{feed: feed, key: key, now: time.Now, entries: entries{}, sem: make(chan struct{}, 1)}
}

// Key is the suppression key the set's hashes are under.
func (s *Set) Key() dsr.SuppressionKey { return s.key }

// Len is how many identities (hashes) are suppressed under some scope.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Refreshed is when the last successful refresh started: the set holds
// every change the store had made visible by then (see Refresh). Zero
// before the first.
func (s *Set) Refreshed() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.refreshed
}

// Suppressed reports whether the identity of hash is suppressed under
// scope: for a purpose (marketing, profiling, sale_share), it has an
// active entry under scope or under dsr.ScopeAll; for dsr.ScopeAll, the
// strictest check ("may I use this person for every purpose?"), it has an
// active entry under any scope. A hash that is not a suppression hash is
// not suppressed.
func (s *Set) Suppressed(hash string, scope dsr.Scope) bool {
	id, ok := ParseID(hash)
	return ok && s.SuppressedID(id, scope)
}

// SuppressedID is Suppressed for an ID.
func (s *Set) SuppressedID(id ID, scope dsr.Scope) bool {
	want := wantBits(scope)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[id]&want != 0
}

// Check sets hit[i] when ids[i] is suppressed under scope (as Suppressed
// reads scope), for every i (hit is at least as long as ids), under one
// read lock: the form a batch takes. Zero IDs are not suppressed.
func (s *Set) Check(ids []ID, scope dsr.Scope, hit []bool) {
	want := wantBits(scope)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, id := range ids {
		hit[i] = s.entries[id]&want != 0
	}
}

// Scopes returns the scopes hash is actively suppressed under, in
// dsr.Scopes order; none for a hash that is not suppressed (or not a
// suppression hash).
func (s *Set) Scopes(hash string) []dsr.Scope {
	id, ok := ParseID(hash)
	if !ok {
		return nil
	}
	s.mu.RLock()
	bits := s.entries[id]
	s.mu.RUnlock()
	var out []dsr.Scope
	for i, sc := range dsr.Scopes {
		if bits&(1<<i) != 0 {
			out = append(out, sc)
		}
	}
	return out
}

// RefreshWithin refreshes the set unless a refresh that started within
// maxAge succeeded: how single checks keep to one store query per maxAge
// (100 ms) however often they come.
func (s *Set) RefreshWithin(ctx context.Context, maxAge time.Duration) error {
	if last := s.Refreshed(); !last.IsZero() && s.now().Sub(last) < maxAge {
		return nil
	}
	return s.Refresh(ctx)
}

// Refresh catches the set up with the feed: one store query returning the
// entries changed since Overlap before the latest change it has read, or
// after that change once Overlap has passed (all of them on the first
// refresh, which its callers wait for). When it returns nil, the set holds
// every entry written before Refresh was called, unless that write's
// UpdatedAt is more than Overlap behind a change the set read earlier (a
// writer's clock that far behind), or the write became visible more than
// Overlap after the set read such a change; the next full reload brings
// those in.
//
// The first refresh at least ReloadEvery after the last full reload began
// starts another in the background and returns as any refresh does: the
// reload reads the whole list into a new map while checks and refreshes
// go on against the current one, then, in turn with refreshes, reads the
// changes since it began into the new map and swaps it in. A reload that
// fails leaves the set as it was; the next refresh starts another.
//
// Concurrent refreshes coalesce: a call waits for the refresh running, if
// any, and then shares the one that starts after it with every other call
// that arrived meanwhile, so at most one refresh query runs per set (and
// at most one full reload beside it), and never more than two refreshes'
// worth of them for any burst of calls.
func (s *Set) Refresh(ctx context.Context) error {
	for {
		s.fmu.Lock()
		if s.next == nil {
			s.next = &flight{done: make(chan struct{})}
		}
		f := s.next
		s.fmu.Unlock()

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
		case s.sem <- struct{}{}:
			s.fmu.Lock()
			run := s.next == f
			if run {
				s.next = nil // later callers wait for the refresh after this one
			}
			s.fmu.Unlock()
			if run {
				f.err = s.refresh(ctx)
				close(f.done)
			}
			<-s.sem
			<-f.done
		}
		// A refresh that failed because its runner's context ended is
		// not this caller's failure: take part in the next.
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue
		}
		return f.err
	}
}

// change is one entry read from the feed, in the set's form.
type change struct {
	id     ID
	bit    uint8
	active bool
}

// refresh reads the feed once (holding sem) and applies what it read. The
// first load reads every entry and blocks its callers; a full reload
// (every ReloadEvery) runs in the background (see reload), and this
// refresh reads the changes as any other does meanwhile.
func (s *Set) refresh(ctx context.Context) error {
	start := s.now()
	if s.reloaded.IsZero() {
		fresh := entries{}
		seen, err := s.read(ctx, time.Time{}, time.Time{}, fresh.apply)
		if err != nil {
			return fmt.Errorf("load suppressions: %w", err)
		}
		s.swap(fresh, start, seen)
		s.reloaded = start
		return nil
	}
	if start.Sub(s.reloaded) >= ReloadEvery && s.reloading.CompareAndSwap(false, true) {
		from := s.seen
		s.reloads.Add(1)
		go func() {
			defer s.reloads.Done()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReloadEvery)
			defer cancel()
			_ = s.reload(rctx, start, from) // on failure, the next refresh starts another
		}()
	}
	since := s.seen.Add(-Overlap)
	if start.Sub(s.seenAt) > Overlap {
		// A write stamped before the latest change and not visible yet
		// would be more than Overlap late: read only what follows. The
		// stores keep milliseconds.
		since = s.seen.Add(time.Millisecond)
	}
	if s.seen.IsZero() {
		since = time.Time{} // nothing read yet: read everything
	}
	var changes []change
	seen, err := s.read(ctx, since, s.seen, func(c change) { changes = append(changes, c) })
	if err != nil {
		return fmt.Errorf("refresh suppressions: %w", err)
	}
	s.mu.Lock()
	for _, c := range changes {
		s.entries.apply(c)
	}
	s.refreshed = start
	s.mu.Unlock()
	if !seen.Equal(s.seen) {
		s.seen, s.seenAt = seen, start
	}
	return nil
}

// reload rebuilds the set from scratch without holding sem while it reads
// the whole list, so checks and refreshes go on meanwhile. It reads every
// entry into a new map, then, holding sem, reads the changes since Overlap
// before from (the latest change the set had read when the reload began:
// every incremental refresh since then read no earlier) into it, as a
// refresh would, and swaps it in. started is when the reload began (the
// set's clock). It runs in its own goroutine, one at a time (reloading).
func (s *Set) reload(ctx context.Context, started, from time.Time) error {
	defer s.reloading.Store(false)
	fresh := make(entries, s.Len())
	seen, err := s.read(ctx, time.Time{}, time.Time{}, fresh.apply)
	if err != nil {
		return fmt.Errorf("reload suppressions: %w", err)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("reload suppressions: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	start := s.now()
	var since time.Time
	if !from.IsZero() {
		since = from.Add(-Overlap)
	}
	if seen, err = s.read(ctx, since, seen, fresh.apply); err != nil {
		return fmt.Errorf("reload suppressions: catch up: %w", err)
	}
	s.swap(fresh, start, seen)
	s.reloaded = started
	return nil
}

// read reads the feed's entries changed at or after since, passing to fn
// each the set can match, and returns the latest UpdatedAt read, or seen
// when it is later.
func (s *Set) read(ctx context.Context, since, seen time.Time, fn func(change)) (time.Time, error) {
	err := s.feed.EachSuppressionChange(ctx, since, func(e *dsr.Suppression) error {
		if e.UpdatedAt.After(seen) {
			seen = e.UpdatedAt
		}
		id, ok := ParseID(e.Hash)
		bit := scopeBit(e.Scope)
		if !ok || bit == 0 {
			return nil // not an entry any check can match
		}
		fn(change{id: id, bit: bit, active: e.Active()})
		return nil
	})
	return seen, err
}

// swap makes fresh, read by a full read that caught up as of start (the
// set's clock) and saw changes up to seen, the set's entries. The caller
// holds sem.
func (s *Set) swap(fresh entries, start, seen time.Time) {
	s.mu.Lock()
	s.entries = fresh
	s.refreshed = start
	s.mu.Unlock()
	if !seen.Equal(s.seen) {
		s.seen, s.seenAt = seen, start
	}
}

// entries are the scope bits of each suppressed identity; no zero values.
type entries map[ID]uint8

// apply records one entry's state.
func (m entries) apply(c change) {
	bits := m[c.id]
	if c.active {
		bits |= c.bit
	} else {
		bits &^= c.bit
	}
	if bits == 0 {
		delete(m, c.id)
		return
	}
	m[c.id] = bits
}
