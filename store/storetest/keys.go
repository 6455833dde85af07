package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// testWrappedKeys: the wrapped data keys are listed in id order, by
// request, and swapped only while they are the ones read (a rotation
// racing a purge or another rotation loses).
func testWrappedKeys(t *testing.T, f fixture) {
	ctx := context.Background()
	given := map[string][2]string{}
	var ids []string
	for _, email := range []string{"ada@example.com", "bob@example.com", "cy@example.com"} {
		r := f.requestValue(t, dsr.TypeAccess, email)
		// A store that seals (store/sealedstore) gives a request keys of
		// its own; a driver stores these.
		r.DataKey, r.ExportKey = "k1:data-"+email, "k1:export-"+email
		if err := f.store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	list := func(after string) []string {
		var got []string
		err := f.store.EachWrappedKeys(ctx, after, func(id, data, export string) error {
			if data == "" || export == "" {
				t.Errorf("request %s listed with a key missing: %q, %q", id, data, export)
			}
			given[id] = [2]string{data, export}
			got = append(got, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := list(""); !slices.Equal(got, ids) {
		t.Fatalf("listed %v; want %v, in id order", got, ids)
	}
	if got := list(ids[0]); !slices.Equal(got, ids[1:]) {
		t.Fatalf("listed after %s: %v; want %v", ids[0], got, ids[1:])
	}

	first := given[ids[0]]
	if ok, err := f.store.SwapWrappedKeys(ctx, ids[0], "k1:not-the-key", "k2:new-data", first[1], "k2:new-export"); err != nil || ok {
		t.Fatalf("swap from keys that are not stored: %v, %v; want false", ok, err)
	}
	if ok, err := f.store.SwapWrappedKeys(ctx, ids[0], first[0], "k2:new-data", first[1], "k2:new-export"); err != nil || !ok {
		t.Fatalf("swap: %v, %v; want true", ok, err)
	}
	if ok, err := f.store.SwapWrappedKeys(ctx, ids[0], first[0], "k3:data", first[1], "k3:export"); err != nil || ok {
		t.Fatalf("a second swap from the same keys: %v, %v; want false", ok, err)
	}
	if ok, err := f.store.SwapWrappedKeys(ctx, "01a20d27-0000-7000-8000-00000000dead", "a", "b", "c", "d"); err != nil || ok {
		t.Fatalf("swap of no request: %v, %v; want false", ok, err)
	}
	list("")
	if got := given[ids[0]]; got != [2]string{"k2:new-data", "k2:new-export"} {
		t.Fatalf("after the swap the keys are %q; want the new ones", got)
	}
}

// testSwapHashes: a request's blind-index hashes are swapped only while
// they are the ones read, and every lookup by hash follows at once.
func testSwapHashes(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	other := f.newRequest(t, dsr.TypeAccess, "bob@example.com")
	newIndex, err := dsr.NewBlindIndex([]byte("another key, 32 bytes or more..."), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	from := store.Hashes{Identity: r.IdentityHashes, Proven: r.ProvenHashes}
	if len(from.Identity) == 0 || len(from.Proven) == 0 {
		t.Fatalf("the request holds hashes %+v; want identity and proven ones", from)
	}
	to := store.Hashes{Identity: newIndex.HashAll(r.Identities), Proven: newIndex.HashAll(r.Identities)}
	since := r.ReceivedAt.Add(-time.Hour)
	found := func(hash string) []string {
		t.Helper()
		var got []string
		dups, err := f.store.OpenDuplicates(ctx, []string{hash}, []dsr.Type{dsr.TypeAccess}, since)
		if err != nil {
			t.Fatal(err)
		}
		same, err := f.store.OpenIdentical(ctx, hash, dsr.TypeAccess, dsr.VerifiedOpenStatuses, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append(dups, same...) {
			got = append(got, d.ID)
		}
		return got
	}

	if ok, err := f.store.SwapHashes(ctx, r.ID, store.Hashes{Identity: to.Identity, Proven: from.Proven}, to); err != nil || ok {
		t.Fatalf("swap from hashes that are not stored: %v, %v; want false", ok, err)
	}
	if ok, err := f.store.SwapHashes(ctx, r.ID, from, to); err != nil || !ok {
		t.Fatalf("swap: %v, %v; want true", ok, err)
	}
	if ok, err := f.store.SwapHashes(ctx, r.ID, from, store.Hashes{Identity: []string{"email:x"}}); err != nil || ok {
		t.Fatalf("a second swap from the same hashes: %v, %v; want false", ok, err)
	}
	if ok, err := f.store.SwapHashes(ctx, "01a20d27-0000-7000-8000-00000000dead", from, to); err != nil || ok {
		t.Fatalf("swap of no request: %v, %v; want false", ok, err)
	}
	if got := found(to.Proven[0]); !slices.Equal(got, []string{r.ID, r.ID}) {
		t.Fatalf("by the new hash, duplicates and identical requests are %v; want the request in both", got)
	}
	if got := found(from.Proven[0]); len(got) != 0 {
		t.Fatalf("by the old hash, found %v; want nothing", got)
	}
	if got := found(other.ProvenHashes[0]); !slices.Equal(got, []string{other.ID, other.ID}) {
		t.Fatalf("another request's lookups: %v; want it, untouched", got)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IdentityHashes, to.Identity) || !slices.Equal(got.ProvenHashes, to.Proven) {
		t.Fatalf("stored hashes %v, %v; want %v", got.IdentityHashes, got.ProvenHashes, to)
	}
}
