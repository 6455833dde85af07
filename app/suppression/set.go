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

// ReloadEvery is how often a refresh reads the whole list again instead of
// its changes: the bound on how long an entry missed by every overlapping
// read (a writer more than Overlap late) stays unseen.
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
	entries map[ID]uint8 // scope bits; no zero values

	// sem is held by the one refresh running; next is the refresh that
	// starts after it, which callers arriving meanwhile wait for.
	sem  chan struct{}
	fmu  sync.Mutex
	next *flight

	// Owned by the refresh holding sem.
	seen     time.Time // the latest UpdatedAt read (the writers' clocks)
	seenAt   time.Time // when the refresh that read it started (the set's clock)
	reloaded time.Time // when the last full read started (the set's clock)

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
	return &Set{feed: feed, key: key, now: time.Now, entries: map[ID]uint8{}, sem: make(chan struct{}, 1)}
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
// scope: it has an active entry under scope or under dsr.ScopeAll. A hash
// that is not a suppression hash is not suppressed.
func (s *Set) Suppressed(hash string, scope dsr.Scope) bool {
	id, ok := ParseID(hash)
	return ok && s.SuppressedID(id, scope)
}

// SuppressedID is Suppressed for an ID.
func (s *Set) SuppressedID(id ID, scope dsr.Scope) bool {
	want := scopeBit(scope) | allBit
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[id]&want != 0
}

// Check sets hit[i] when ids[i] is suppressed under scope, for every i
// (hit is at least as long as ids), under one read lock: the form a batch
// takes. Zero IDs are not suppressed.
func (s *Set) Check(ids []ID, scope dsr.Scope, hit []bool) {
	want := scopeBit(scope) | allBit
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
// refresh, and every ReloadEvery, when it rebuilds the set). When it
// returns nil, the set holds every entry written before Refresh was
// called, unless that write's UpdatedAt is more than Overlap behind a
// change the set read earlier (a writer's clock that far behind), or the
// write became visible more than Overlap after the set read such a change;
// the next full reload brings those in.
//
// Concurrent refreshes coalesce: a call waits for the refresh running, if
// any, and then shares the one that starts after it with every other call
// that arrived meanwhile, so at most one store query runs per set, and
// never more than two refreshes' worth of them for any burst of calls.
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

// refresh reads the feed once (holding sem) and applies what it read.
func (s *Set) refresh(ctx context.Context) error {
	start := s.now()
	full := s.reloaded.IsZero() || start.Sub(s.reloaded) >= ReloadEvery
	var since time.Time
	if !full && !s.seen.IsZero() {
		since = s.seen.Add(-Overlap)
		if start.Sub(s.seenAt) > Overlap {
			// A write stamped before the latest change and not visible
			// yet would be more than Overlap late: read only what
			// follows. The stores keep milliseconds.
			since = s.seen.Add(time.Millisecond)
		}
	}
	seen := s.seen
	if full {
		seen = time.Time{}
	}
	var changes []change
	var fresh map[ID]uint8
	if full {
		fresh = make(map[ID]uint8, s.Len())
	}
	err := s.feed.EachSuppressionChange(ctx, since, func(e *dsr.Suppression) error {
		if e.UpdatedAt.After(seen) {
			seen = e.UpdatedAt
		}
		id, ok := ParseID(e.Hash)
		bit := scopeBit(e.Scope)
		if !ok || bit == 0 {
			return nil // not an entry any check can match
		}
		if full {
			apply(fresh, change{id: id, bit: bit, active: e.Active()})
			return nil
		}
		changes = append(changes, change{id: id, bit: bit, active: e.Active()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("refresh suppressions: %w", err)
	}
	s.mu.Lock()
	if full {
		s.entries = fresh
	}
	for _, c := range changes {
		apply(s.entries, c)
	}
	s.refreshed = start
	s.mu.Unlock()
	if !seen.Equal(s.seen) {
		s.seen, s.seenAt = seen, start
	}
	if full {
		s.reloaded = start
	}
	return nil
}

// apply records one entry's state in entries.
func apply(entries map[ID]uint8, c change) {
	bits := entries[c.id]
	if c.active {
		bits |= c.bit
	} else {
		bits &^= c.bit
	}
	if bits == 0 {
		delete(entries, c.id)
		return
	}
	entries[c.id] = bits
}
