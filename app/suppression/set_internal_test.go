package suppression

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var testKey = dsr.SuppressionKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

func TestParseID(t *testing.T) {
	// Not parallel: it counts allocations.
	for _, kind := range dsr.Kinds {
		h := testKey.Hash(kind, "someone")
		id, ok := ParseID(h)
		if !ok || id.String() != h || id.Kind() != kind {
			t.Errorf("ParseID(%s) = %v, %v; String %q", h, id, ok, id.String())
		}
	}
	good := testKey.Hash(dsr.KindEmail, "ada@example.com")
	for _, bad := range []string{
		"", "email", "email:", ":" + good[6:], "fax:" + good[6:], "EMAIL:" + good[6:],
		good[:len(good)-1], good + "0", "email:" + string(rune('A')) + good[7:], "email:" + "g" + good[7:],
	} {
		if id, ok := ParseID(bad); ok || id != (ID{}) {
			t.Errorf("ParseID(%q) = %v, %v; want not a hash", bad, id, ok)
		}
		if ok := dsr.ValidSuppressionHash(bad); ok {
			t.Errorf("dsr.ValidSuppressionHash(%q) = true; ParseID and it disagree", bad)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseID(good) }); n != 0 {
		t.Errorf("ParseID allocates %v times", n)
	}
}

func TestHasherIsTheKeysHash(t *testing.T) {
	// Not parallel: it counts allocations.
	h := NewHasher(testKey)
	for _, c := range []struct {
		kind  dsr.Kind
		value string
	}{{dsr.KindEmail, "ada@example.com"}, {dsr.KindPhone, "+442079460958"}, {dsr.KindCustomerID, "cus_1"}, {dsr.KindEmail, ""}} {
		if got, want := h.ID(c.kind, c.value).String(), testKey.Hash(c.kind, c.value); got != want {
			t.Errorf("Hasher.ID(%s, %q) = %s, want %s", c.kind, c.value, got, want)
		}
	}
	if id := h.ID("fax", "1"); id != (ID{}) {
		t.Errorf("Hasher.ID of an unknown kind = %v, want zero", id)
	}
	if n := testing.AllocsPerRun(100, func() { h.ID(dsr.KindEmail, "ada@example.com") }); n != 0 {
		t.Errorf("Hasher.ID allocates %v times", n)
	}
}

// storeFeed is a test's real store (internal/teststore) on a clock the
// test moves, seen by the set through a feed that counts its queries and,
// when gate is set, holds each until gate closes.
type storeFeed struct {
	t       testing.TB
	st      *teststore.Store
	mu      sync.Mutex
	now     time.Time
	queries atomic.Int64
	read    atomic.Int64 // entries the feed returned
	gate    chan struct{}
}

func newStoreFeed(t testing.TB) *storeFeed {
	f := &storeFeed{t: t, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.st = teststore.Open(t, f.clock)
	return f
}

func (f *storeFeed) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// tick moves the store's clock (back, for a writer whose clock is behind).
func (f *storeFeed) tick(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *storeFeed) suppress(hash string, scope dsr.Scope) {
	f.t.Helper()
	if _, err := f.st.Suppress(context.Background(), []dsr.Suppression{{Hash: hash, Scope: scope, Source: dsr.ConsentAPI, At: f.clock()}}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *storeFeed) lift(hash string, scope dsr.Scope) {
	f.t.Helper()
	if _, err := f.st.LiftSuppressions(context.Background(), []string{hash}, scope, "test", "opted in"); err != nil {
		f.t.Fatal(err)
	}
}

func (f *storeFeed) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	f.queries.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.st.EachSuppressionChange(ctx, since, func(e *dsr.Suppression) error {
		f.read.Add(1)
		return fn(e)
	})
}

func TestSetFollowsTheFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	ada, bob, cy := testKey.Hash(dsr.KindEmail, "ada@example.com"), testKey.Hash(dsr.KindPhone, "+442079460958"), testKey.Hash(dsr.KindCustomerID, "cus_cy")
	feed.suppress(ada, dsr.ScopeMarketing)
	feed.suppress(ada, dsr.ScopeProfiling)
	feed.suppress(bob, dsr.ScopeAll)
	s := NewSet(feed, testKey)
	if s.Suppressed(ada, dsr.ScopeMarketing) || s.Len() != 0 {
		t.Fatal("the set holds entries before its first refresh")
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(step string, want map[string][]dsr.Scope) {
		t.Helper()
		for _, h := range []string{ada, bob, cy} {
			if diff := cmp.Diff(want[h], s.Scopes(h)); diff != "" {
				t.Errorf("%s: Scopes(%s) (-want +got):\n%s", step, h[:12], diff)
			}
			for _, sc := range dsr.Scopes {
				want := slices.ContainsFunc(want[h], func(w dsr.Scope) bool { return w.Covers(sc) || sc == dsr.ScopeAll })
				if got := s.Suppressed(h, sc); got != want {
					t.Errorf("%s: Suppressed(%s, %s) = %v, want %v", step, h[:12], sc, got, want)
				}
			}
		}
		if s.Len() != len(want) {
			t.Errorf("%s: Len = %d, want %d", step, s.Len(), len(want))
		}
	}
	check("loaded", map[string][]dsr.Scope{ada: {dsr.ScopeMarketing, dsr.ScopeProfiling}, bob: {dsr.ScopeAll}})

	feed.tick(time.Second)
	feed.lift(ada, dsr.ScopeMarketing)
	feed.suppress(cy, dsr.ScopeSaleShare)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("changed", map[string][]dsr.Scope{ada: {dsr.ScopeProfiling}, bob: {dsr.ScopeAll}, cy: {dsr.ScopeSaleShare}})

	feed.tick(time.Second)
	feed.lift(ada, dsr.ScopeProfiling)
	feed.lift(bob, dsr.ScopeAll)
	feed.suppress(ada, dsr.ScopeMarketing) // again
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("lifted", map[string][]dsr.Scope{ada: {dsr.ScopeMarketing}, cy: {dsr.ScopeSaleShare}})
	if s.Suppressed("email:nothex", dsr.ScopeAll) || s.Scopes("nope") != nil {
		t.Error("a malformed hash is suppressed")
	}
}

// TestRefreshesCoalesce holds the feed's query while many callers refresh:
// they share the one refresh that starts after the one running, so two
// queries serve them all, and every caller sees what was written before it
// called.
func TestRefreshesCoalesce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	s := NewSet(feed, testKey)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	feed.queries.Store(0)
	feed.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() { first <- s.Refresh(ctx) }()
	for feed.queries.Load() == 0 {
		time.Sleep(time.Millisecond) // the first refresh is querying
	}
	late := testKey.Hash(dsr.KindEmail, "late@example.com")
	feed.suppress(late, dsr.ScopeMarketing) // after the running query started
	const callers = 50
	errs := make(chan error, callers)
	saw := make(chan bool, callers)
	var arrived atomic.Int32
	for range callers {
		go func() {
			arrived.Add(1)
			err := s.Refresh(ctx)
			errs <- err
			saw <- s.Suppressed(late, dsr.ScopeMarketing)
		}()
	}
	for arrived.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let them all queue
	close(feed.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if !<-saw {
			t.Error("a refresh called after a write returned without it")
		}
	}
	if n := feed.queries.Load(); n != 2 {
		t.Errorf("%d callers made %d queries, want 2 (the running one and one after it)", callers+1, n)
	}
}

func TestRefreshWithin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	s := NewSet(feed, testKey)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	for i := range 5 {
		if err := s.RefreshWithin(ctx, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Millisecond)
		if i == 0 && feed.queries.Load() != 1 {
			t.Fatal("the first RefreshWithin did not query")
		}
	}
	if n := feed.queries.Load(); n != 1 {
		t.Errorf("5 calls within 50ms made %d queries, want 1", n)
	}
	now = now.Add(100 * time.Millisecond)
	if err := s.RefreshWithin(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := feed.queries.Load(); n != 2 {
		t.Errorf("a call 150ms after the last refresh made %d queries in all, want 2", n)
	}
}

// TestFreshnessBound writes with clocks behind the latest change: up to
// Overlap behind, the next refresh sees the write; further behind, the
// next full reload (ReloadEvery) does.
func TestFreshnessBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	s := NewSet(feed, testKey)
	now := feed.now
	s.now = func() time.Time { return now }
	first := testKey.Hash(dsr.KindCustomerID, "c1")
	feed.suppress(first, dsr.ScopeMarketing)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	skewed := testKey.Hash(dsr.KindCustomerID, "c2")
	feed.tick(-Overlap) // a writer exactly Overlap behind
	feed.suppress(skewed, dsr.ScopeMarketing)
	feed.tick(Overlap)
	now = now.Add(time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Suppressed(skewed, dsr.ScopeMarketing) {
		t.Error("a write Overlap behind the latest change is not seen by the next refresh")
	}

	lost := testKey.Hash(dsr.KindCustomerID, "c3")
	feed.tick(-Overlap - time.Millisecond)
	feed.suppress(lost, dsr.ScopeMarketing)
	feed.tick(Overlap + time.Millisecond)
	now = now.Add(time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Suppressed(lost, dsr.ScopeMarketing) {
		t.Error("a write beyond Overlap is seen at once: the test does not test the overlap")
	}
	feed.lift(first, dsr.ScopeMarketing)
	now = now.Add(ReloadEvery)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s.reloads.Wait() // the reload it started in the background
	if !s.Suppressed(lost, dsr.ScopeMarketing) || s.Suppressed(first, dsr.ScopeMarketing) || s.Len() != 2 {
		t.Errorf("after a full reload: lost %v, lifted %v, Len %d; want true, false, 2",
			s.Suppressed(lost, dsr.ScopeMarketing), s.Suppressed(first, dsr.ScopeMarketing), s.Len())
	}
}

// TestChecksDuringRefresh runs lookups while refreshes apply changes (for
// the race detector).
func TestChecksDuringRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	s := NewSet(feed, testKey)
	h := NewHasher(testKey)
	ids := make([]ID, 100)
	for i := range ids {
		ids[i] = h.ID(dsr.KindCustomerID, string(rune('a'+i%26))+time.Duration(i).String())
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			feed.tick(time.Millisecond)
			feed.suppress(ids[i].String(), dsr.ScopeProfiling)
			if err := s.Refresh(ctx); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			hit := make([]bool, len(ids))
			s.Check(ids, dsr.ScopeProfiling, hit)
			_ = s.Scopes(ids[i].String())
		})
	}
	wg.Wait()
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hit := make([]bool, len(ids))
	s.Check(ids, dsr.ScopeProfiling, hit)
	for i, got := range hit {
		if got != (i < 20) {
			t.Errorf("ids[%d]: suppressed %v, want %v", i, got, i < 20)
		}
	}
}

// TestOverlapSlides writes a burst at one instant: the refreshes within
// Overlap of reading it read it again; once Overlap has passed on the
// set's clock, they read nothing but what is new.
func TestOverlapSlides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	s := NewSet(feed, testKey)
	now := feed.clock()
	s.now = func() time.Time { return now }
	h := NewHasher(testKey)
	var burst []dsr.Suppression
	for i := range 50 {
		burst = append(burst, dsr.Suppression{Hash: h.ID(dsr.KindCustomerID, fmt.Sprint("c", i)).String(), Scope: dsr.ScopeProfiling, Source: dsr.ConsentImport, At: now})
	}
	if _, err := feed.st.Suppress(ctx, burst); err != nil {
		t.Fatal(err)
	}
	reads := func() int64 {
		t.Helper()
		before := feed.read.Load()
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		return feed.read.Load() - before
	}
	if n := reads(); n != 50 {
		t.Fatalf("load read %d entries, want 50", n)
	}
	now = now.Add(Overlap)
	if n := reads(); n != 50 {
		t.Errorf("a refresh within Overlap read %d entries, want the burst again (50)", n)
	}
	now = now.Add(time.Millisecond)
	if n := reads(); n != 0 {
		t.Errorf("a refresh past Overlap read %d entries, want 0", n)
	}
	feed.tick(Overlap + time.Millisecond)
	late := h.ID(dsr.KindCustomerID, "late").String()
	feed.suppress(late, dsr.ScopeProfiling)
	if n := reads(); n != 1 || !s.Suppressed(late, dsr.ScopeProfiling) {
		t.Errorf("a refresh after a new write read %d entries (want 1); suppressed %v", n, s.Suppressed(late, dsr.ScopeProfiling))
	}
}

// TestScopeAll: a check for "all" asks whether the person may be used for
// every purpose, so any active entry suppresses them; a check for a
// purpose is suppressed by an entry under it or under "all" only.
func TestScopeAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := newStoreFeed(t)
	h := NewHasher(testKey)
	person := func(name string) ID { return h.ID(dsr.KindCustomerID, name) }
	for name, scopes := range map[string][]dsr.Scope{
		"marketing": {dsr.ScopeMarketing},
		"purposes":  {dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeSaleShare},
		"deleted":   {dsr.ScopeAll},
		"lifted":    {dsr.ScopeSaleShare},
	} {
		for _, sc := range scopes {
			feed.suppress(person(name).String(), sc)
		}
	}
	feed.lift(person("lifted").String(), dsr.ScopeSaleShare)
	s := NewSet(feed, testKey)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		person string
		scope  dsr.Scope
		want   bool
	}{
		{"marketing", dsr.ScopeAll, true},
		{"marketing", dsr.ScopeMarketing, true},
		{"marketing", dsr.ScopeProfiling, false},
		{"marketing", dsr.ScopeSaleShare, false},
		{"purposes", dsr.ScopeAll, true},
		{"purposes", dsr.ScopeProfiling, true},
		{"deleted", dsr.ScopeAll, true},
		{"deleted", dsr.ScopeProfiling, true},
		{"lifted", dsr.ScopeAll, false},
		{"lifted", dsr.ScopeSaleShare, false},
		{"nobody", dsr.ScopeAll, false},
		{"deleted", "unknown", true}, // "all" covers every use
		{"purposes", "unknown", false},
	} {
		id := person(c.person)
		hit := []bool{false}
		s.Check([]ID{id}, c.scope, hit)
		if got := s.SuppressedID(id, c.scope); got != c.want || hit[0] != c.want || s.Suppressed(id.String(), c.scope) != c.want {
			t.Errorf("%s for %s: SuppressedID %v, Check %v, want %v", c.person, c.scope, got, hit[0], c.want)
		}
	}
}

// snapshotFeed is a store's feed whose full reads (since zero) take their
// snapshot of the list when they begin and then hold until gate closes: a
// full read that takes long, during which writes go on that it does not
// see.
type snapshotFeed struct {
	*storeFeed
	gate    chan struct{}
	holding chan struct{} // closed when a full read holds
	once    sync.Once
}

func (f *snapshotFeed) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	if !since.IsZero() {
		return f.storeFeed.EachSuppressionChange(ctx, since, fn)
	}
	var all []dsr.Suppression
	if err := f.storeFeed.EachSuppressionChange(ctx, since, func(e *dsr.Suppression) error {
		all = append(all, *e)
		return nil
	}); err != nil {
		return err
	}
	f.once.Do(func() { close(f.holding) })
	select {
	case <-f.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	for i := range all {
		if err := fn(&all[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestReloadInBackground: while a full reload reads the list, refreshes
// and checks go on and see new writes; the reloaded set holds the writes
// made during the reload (a suppression, a lift) and the late entry only a
// full read finds.
func TestReloadInBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := &snapshotFeed{storeFeed: newStoreFeed(t), gate: make(chan struct{}), holding: make(chan struct{})}
	s := NewSet(feed, testKey)
	s.now = feed.clock
	h := NewHasher(testKey)
	id := func(name string) ID { return h.ID(dsr.KindCustomerID, name) }
	kept, lifted := id("kept"), id("lifted")
	feed.suppress(kept.String(), dsr.ScopeMarketing)
	feed.suppress(lifted.String(), dsr.ScopeMarketing)
	close(feed.gate) // the first load does not hold
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	feed.gate, feed.holding, feed.once = make(chan struct{}), make(chan struct{}), sync.Once{}

	late := id("late") // written with a clock more than Overlap behind: only a full read finds it
	feed.tick(-Overlap - time.Second)
	feed.suppress(late.String(), dsr.ScopeMarketing)
	feed.tick(Overlap + time.Second)
	feed.tick(ReloadEvery)
	refresh := func(step string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- s.Refresh(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: a refresh waits for the full reload", step)
		}
	}
	refresh("the refresh that starts the reload")
	<-feed.holding // the reload has read the list and holds
	if s.Suppressed(late.String(), dsr.ScopeMarketing) {
		t.Fatal("the late entry is seen without a full reload: the test does not test the reload")
	}

	feed.tick(time.Second)
	during := id("during")
	feed.suppress(during.String(), dsr.ScopeMarketing)
	feed.lift(lifted.String(), dsr.ScopeMarketing)
	refresh("a refresh during the reload")
	ids := []ID{kept, lifted, during, late}
	check := func(step string, want []bool) {
		t.Helper()
		hit := make([]bool, len(ids))
		s.Check(ids, dsr.ScopeMarketing, hit)
		if diff := cmp.Diff(want, hit); diff != "" {
			t.Errorf("%s: kept, lifted, during, late suppressed (-want +got):\n%s", step, diff)
		}
	}
	check("during the reload", []bool{true, false, true, false})

	close(feed.gate)
	s.reloads.Wait()
	check("after the reload", []bool{true, false, true, true})
	if s.Len() != 3 {
		t.Errorf("after the reload: Len %d, want 3", s.Len())
	}
	if s.reloaded != feed.clock().Add(-time.Second) {
		t.Errorf("reloaded = %v, want when the reload began", s.reloaded)
	}
	// Not due again: the next refresh reads changes only.
	queries := feed.queries.Load()
	refresh("the refresh after the reload")
	if n := feed.queries.Load() - queries; n != 1 {
		t.Errorf("the refresh after the reload made %d queries, want 1", n)
	}
}
