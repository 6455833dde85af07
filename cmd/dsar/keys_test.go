package main

import (
	"context"
	"errors"
	"path/filepath"
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

// filedDuring is the store of a rotation during which a process still on
// the old master key files a request once the rotation's pass has read
// every request: as a process not yet restarted with the new key first
// would.
type filedDuring struct {
	wrappedKeys
	scans int
	file  func()
}

func (f *filedDuring) EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error {
	err := f.wrappedKeys.EachWrappedKeys(ctx, after, fn)
	if f.scans++; f.scans == 2 && f.file != nil {
		f.file()
	}
	return err
}

// TestKeysRotateFiledDuring: a request filed under the old key while the
// rotation ran, behind its pass, must be reported (exit 1, run again), not
// left under the old key with "every data key is under the new one": it
// would be lost with the old key.
func TestKeysRotateFiledDuring(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), embeddedStoreFile), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	if err := lite.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	oldKey, newKey := envelope.GenerateMasterKey(), envelope.GenerateMasterKey()
	oldRing, err := envelope.ParseKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.ParseKeyring(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	index, err := dsr.NewBlindIndex([]byte(testBlindIndexKey))
	if err != nil {
		t.Fatal(err)
	}
	stale := sealedstore.New(lite, oldRing, sealedstore.Options{})
	file := func() {
		r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "t",
			Status: dsr.StatusVerified, Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, index)
		if err != nil {
			t.Fatal(err)
		}
		if err := stale.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	file()
	var out strings.Builder
	r := rotation{ring: ring, keys: &filedDuring{wrappedKeys: lite, file: file}, out: &out}
	err = r.run(ctx)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitBroken {
		t.Fatalf("rotation with a request filed under the old key behind it: %v (want exit %d)\n%s", err, exitBroken, out.String())
	}
	if !strings.Contains(err.Error(), "1 request") {
		t.Errorf("the error does not count the request left behind: %v", err)
	}
	// Run again: nothing filed behind it, all under the new key.
	out.Reset()
	r = rotation{ring: ring, keys: lite, out: &out}
	if err := r.run(ctx); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

// TestKeysRotateWrongOrder: a rotation whose active key is older than
// another (made later by dsar keys new, so probably the new one put
// second) warns that the order looks wrong: the key it then says may
// leave is the one a person following the steps keeps.
func TestKeysRotateWrongOrder(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), embeddedStoreFile), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	if err := lite.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	_, oldSecret, _ := strings.Cut(envelope.GenerateMasterKey(), ":")
	_, newSecret, _ := strings.Cut(envelope.GenerateMasterKey(), ":")
	for _, tt := range []struct {
		keys string
		warn bool
	}{
		{"k20260101-aaaaaa:" + oldSecret + ",k20261130-bbbbbb:" + newSecret, true},
		{"k20261130-bbbbbb:" + newSecret + ",k20260101-aaaaaa:" + oldSecret, false},
		{"ops-2:" + newSecret + ",ops-1:" + oldSecret, false},
	} {
		ring, err := envelope.ParseKeyring(tt.keys)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		r := rotation{ring: ring, keys: lite, out: &out}
		if err := r.run(ctx); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "order is wrong"); got != tt.warn {
			t.Errorf("keys %s: warned %v, want %v\n%s", ring.IDs(), got, tt.warn, out.String())
		}
	}
}
