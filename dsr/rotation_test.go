package dsr

import (
	"slices"
	"testing"
	"time"
)

// TestBlindIndexPreviousKeys: while the blind index key changes, writes are
// under the new key and every lookup and check accepts the old one too;
// without the old key, nothing made under it passes.
func TestBlindIndexPreviousKeys(t *testing.T) {
	t.Parallel()
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	old, err := NewBlindIndex(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	both, err := NewBlindIndex(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	only, err := NewBlindIndex(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBlindIndex(newKey, []byte("short")); err == nil {
		t.Error("a previous key of 5 bytes was taken")
	}
	if old.Rotating() || !both.Rotating() || only.Rotating() {
		t.Error("Rotating: want true only with previous keys")
	}

	ada := []Identity{{Kind: KindEmail, Value: "ada@example.com"}, {Kind: KindPhone, Value: "+442071838750"}}
	if got := both.Hash(KindEmail, "ada@example.com"); got != only.Hash(KindEmail, "ada@example.com") || got == old.Hash(KindEmail, "ada@example.com") {
		t.Error("Hash is not under the current key")
	}
	if got, want := both.Lookup(KindEmail, "ada@example.com"), []string{only.Hash(KindEmail, "ada@example.com"), old.Hash(KindEmail, "ada@example.com")}; !slices.Equal(got, want) {
		t.Errorf("Lookup = %v; want the current hash, then the old", got)
	}
	if got, want := both.LookupAll(ada), append(only.HashAll(ada), old.HashAll(ada)...); !slices.Equal(got, want) {
		t.Errorf("LookupAll = %v; want %v", got, want)
	}
	if got := both.HashAllByKey(ada); len(got) != 2 || !slices.Equal(got[0], only.HashAll(ada)) || !slices.Equal(got[1], old.HashAll(ada)) {
		t.Errorf("HashAllByKey = %v", got)
	}
	re := both.Rehash(ada)
	for _, id := range ada {
		if re[old.Hash(id.Kind, id.Value)] != only.Hash(id.Kind, id.Value) {
			t.Errorf("Rehash does not map %s's old hash to its new one: %v", id.Kind, re)
		}
	}
	if len(re) != len(ada) || len(only.Rehash(ada)) != 0 {
		t.Errorf("Rehash = %v; want one entry per identity, none without previous keys", re)
	}

	// A code sent, and a link signed, before the change.
	code := old.HashCode("req-1", "123456")
	if !both.CodeMatches("req-1", "123456", code) || only.CodeMatches("req-1", "123456", code) || both.CodeMatches("req-1", "654321", code) {
		t.Error("a code hashed under the old key: want it accepted with the old key given, only then, and only itself")
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	for _, signer := range []struct {
		name string
		make func(...[]byte) *LinkSigner
	}{{"download", NewLinkSigner}, {"task", NewTaskSigner}} {
		sig := signer.make(oldKey).Sign("req-1", exp)
		if !signer.make(newKey, oldKey).Valid("req-1", exp, sig, now) {
			t.Errorf("%s link signed under the old key refused with it given", signer.name)
		}
		if signer.make(newKey).Valid("req-1", exp, sig, now) {
			t.Errorf("%s link signed under the old key accepted without it", signer.name)
		}
		if signer.make(newKey, oldKey).Sign("req-1", exp) != signer.make(newKey).Sign("req-1", exp) {
			t.Errorf("%s links are not signed under the current key", signer.name)
		}
	}
	if NewLinkSigner(newKey).Sign("req-1", exp) == NewTaskSigner(newKey).Sign("req-1", exp) {
		t.Error("a download link's signature is a task link's")
	}

	// The suppression key, which pipelines hold, stays the old key's.
	if both.SuppressionKey() != old.SuppressionKey() || only.SuppressionKey() == old.SuppressionKey() {
		t.Error("the suppression key does not derive from the oldest key")
	}
	pinned, _ := NewBlindIndex(newKey)
	pinned.PinSuppressionKey(old.SuppressionKey())
	if pinned.SuppressionKey() != old.SuppressionKey() {
		t.Error("a pinned suppression key is not used")
	}

	// A retry of an intake whose first attempt stored its fingerprint
	// under the old key.
	in := Intake{Type: TypeAccess, Regulation: RegulationGDPR, Identities: ada}
	if fps := in.Fingerprints(both); len(fps) != 2 || fps[0] != in.Fingerprint(only) || fps[1] != in.Fingerprint(old) {
		t.Errorf("Fingerprints = %v", fps)
	}
}
