package main

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// TestKeysRotate seals requests under one master key, rotates to a new one
// with `dsar keys rotate` while the store stays open in this process (as
// the service's would), and checks that the requests then open under the
// new key alone, that a second run has nothing to do, and that a run
// missing a key in use says which and exits 1.
func TestKeysRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lite, err := sqlitestore.Open(ctx, filepath.Join(dir, embeddedStoreFile), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	if err := lite.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	oldKey, newKey := envelope.GenerateMasterKey(), envelope.GenerateMasterKey()
	keyring := func(entries ...string) *envelope.Keyring {
		kr, err := envelope.ParseKeyring(strings.Join(entries, ","))
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	oldID, newID, _ := strings.Cut(oldKey, ":")
	newID, _, _ = strings.Cut(newKey, ":")
	index, err := dsr.NewBlindIndex([]byte(testBlindIndexKey))
	if err != nil {
		t.Fatal(err)
	}
	sealed := sealedstore.New(lite, keyring(oldKey), sealedstore.Options{})
	var ids []string
	for _, email := range []string{"ada@example.com", "bob@example.com", "cy@example.com"} {
		r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "t",
			Status: dsr.StatusVerified, Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}}, index)
		if err != nil {
			t.Fatal(err)
		}
		if err := sealed.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}

	env := func(keys ...string) []string { return []string{"DSAR_MASTER_KEYS=" + strings.Join(keys, ",")} }
	checkRuns(t, []cliRun{
		{args: []string{"keys", "rotate", "--data-dir", dir}, env: env(newKey), code: 1,
			stderr: "data keys under master keys not in DSAR_MASTER_KEYS: " + oldID + " (6 keys)"},
		{args: []string{"keys", "rotate", "--data-dir", dir}, env: env(newKey, oldKey), code: 0,
			stderr: "3 re-wrapped, 0 under"},
		{args: []string{"keys", "rotate", "--data-dir", dir}, env: env(newKey, oldKey), code: 0,
			stderr: "0 re-wrapped, 3 under " + newID + " already"},
		{args: []string{"keys", "rotate"}, env: nil, code: 2, stderr: "no master keys"},
		{args: []string{"keys", "new", "extra"}, code: 2, stderr: "unexpected argument"},
	})
	if t.Failed() {
		return
	}

	// The new key alone opens every request; the old alone none.
	for _, id := range ids {
		r, err := sealedstore.New(lite, keyring(newKey), sealedstore.Options{}).Request(ctx, id)
		if err != nil || len(r.Identities) != 1 || !strings.HasSuffix(r.Identities[0].Value, "@example.com") {
			t.Fatalf("request %s under the new key: %+v, %v", id, r, err)
		}
		if _, err := sealedstore.New(lite, keyring(oldKey), sealedstore.Options{}).Request(ctx, id); !errors.Is(err, envelope.ErrUnknownKey) {
			t.Errorf("request %s under the old key alone: %v; want ErrUnknownKey", id, err)
		}
	}

	out, _, code := runOnce(t, nil, "keys", "new")
	if _, err := envelope.ParseKeyring(strings.TrimSpace(out)); code != 0 || err != nil {
		t.Errorf("dsar keys new: %q (exit %d) does not parse as DSAR_MASTER_KEYS: %v", out, code, err)
	}
}

// filingKeys is a store's wrapped keys into which another process, still
// running with the old key active, files a request under it while a
// rotation reads: after the rotation's first pass.
type filingKeys struct {
	keys   map[string][2]string
	passes int
	late   [2]string // filed at the end of the first pass
}

func (f *filingKeys) EachWrappedKeys(_ context.Context, after string, fn func(id, data, export string) error) error {
	f.passes++
	ids := make([]string, 0, len(f.keys))
	for id := range f.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id > after {
			if err := fn(id, f.keys[id][0], f.keys[id][1]); err != nil {
				return err
			}
		}
	}
	if f.passes == 2 { // the pass that re-wraps (the first counts)
		f.keys["r9"] = f.late
	}
	return nil
}

func (f *filingKeys) SwapWrappedKeys(_ context.Context, id, oldData, newData, oldExport, newExport string) (bool, error) {
	if f.keys[id] != [2]string{oldData, oldExport} {
		return false, nil
	}
	f.keys[id] = [2]string{newData, newExport}
	return true, nil
}

// TestKeysRotateFindsLateFilings: a request filed under the old key while
// the rotation ran (a process not restarted with the new key first) makes
// it exit 1 saying so, rather than report every key re-wrapped.
func TestKeysRotateFindsLateFilings(t *testing.T) {
	oldKey, newKey := envelope.GenerateMasterKey(), envelope.GenerateMasterKey()
	oldRing, err := envelope.ParseKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.ParseKeyring(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	wrap := func() string {
		w, err := oldRing.Wrap(envelope.NewDataKey())
		if err != nil {
			t.Fatal(err)
		}
		return w.Encode()
	}
	keys := &filingKeys{keys: map[string][2]string{"r1": {wrap(), wrap()}, "r2": {wrap(), wrap()}}, late: [2]string{wrap(), wrap()}}
	var out strings.Builder
	r := rotation{ring: ring, keys: keys, out: &out}
	err = r.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 requests were filed under another key while it ran") {
		t.Fatalf("rotate: %v; want it to find the late filing\n%s", err, out.String())
	}
	if r.rewrapped != 2 {
		t.Errorf("re-wrapped %d; want 2", r.rewrapped)
	}
}
