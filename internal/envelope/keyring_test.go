package envelope_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dsar-project/dsar/internal/envelope"
)

// testKey returns 32 distinct bytes starting at seed.
func testKey(seed byte) []byte {
	k := make([]byte, envelope.KeySize)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

func entry(id string, key []byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

func mustRing(t *testing.T, s string) *envelope.Keyring {
	t.Helper()
	kr, err := envelope.ParseKeyring(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestParseKeyring(t *testing.T) {
	k1, k2 := testKey(1), testKey(100)
	std := base64.StdEncoding.EncodeToString(k1)
	url := base64.URLEncoding.EncodeToString(testKey(200)) // testKey(200) has bytes that differ in the two alphabets
	if url == base64.StdEncoding.EncodeToString(testKey(200)) {
		t.Fatal("test key does not exercise the URL alphabet")
	}
	ok := []struct {
		name   string
		in     string
		active string
		ids    []string
	}{
		{"one", "k1:" + std, "k1", []string{"k1"}},
		{"two, first active", entry("new", k2) + "," + entry("old", k1), "new", []string{"new", "old"}},
		{"spaces", "  a-1:" + std + " , b_2:" + base64.StdEncoding.EncodeToString(k2) + " ", "a-1", []string{"a-1", "b_2"}},
		{"unpadded std", "k:" + strings.TrimRight(std, "="), "k", []string{"k"}},
		{"url alphabet", "k:" + url, "k", []string{"k"}},
		{"unpadded url", "k:" + strings.TrimRight(url, "="), "k", []string{"k"}},
		{"id of 32", strings.Repeat("z", 32) + ":" + std, strings.Repeat("z", 32), []string{strings.Repeat("z", 32)}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			kr := mustRing(t, tc.in)
			if kr.Active() != tc.active || fmt.Sprint(kr.IDs()) != fmt.Sprint(tc.ids) {
				t.Fatalf("active %q ids %v, want %q %v", kr.Active(), kr.IDs(), tc.active, tc.ids)
			}
		})
	}

	short := base64.StdEncoding.EncodeToString(k1[:16])
	long := base64.StdEncoding.EncodeToString(append(append([]byte{}, k1...), 0))
	bad := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "none given"},
		{"blank", "   ", "none given"},
		{"trailing comma", "k1:" + std + ",", "entry 2: empty"},
		{"no colon", std, "entry 1: no ':'"},
		{"empty id", ":" + std, "entry 1: the id (0 characters)"},
		{"uppercase id", "K1:" + std, "entry 1: the id (2 characters)"},
		{"id of 33", strings.Repeat("a", 33) + ":" + std, "entry 1: the id (33 characters)"},
		{"key and id swapped", std + ":k1", "entry 1: the id (44 characters)"},
		{"duplicate", "k1:" + std + ",k2:" + std + ",k1:" + std, `entry 3: id "k1" already names entry 1`},
		{"not base64", "k1:" + std + ",k2:%%%", `entry 2 (id "k2"): the key is not base64`},
		{"mixed alphabets", "k1:" + strings.ReplaceAll(url, "_", "/"), `entry 1 (id "k1"): the key is not base64`},
		{"16 bytes", "k1:" + short, `entry 1 (id "k1"): the key is 16 bytes, want 32 (AES-256)`},
		{"33 bytes", "k1:" + long, `entry 1 (id "k1"): the key is 33 bytes, want 32`},
		{"empty key", "k1:", `entry 1 (id "k1"): the key is 0 bytes`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := envelope.ParseKeyring(tc.in)
			if err == nil {
				t.Fatalf("parsed %v", kr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
			assertNoKeyMaterial(t, err.Error(), k1, k1[:16], testKey(200))
		})
	}
}

// assertNoKeyMaterial fails if s contains any of the keys in base64 (std,
// URL, raw), hex, fmt's decimal list, or raw bytes.
func assertNoKeyMaterial(t *testing.T, s string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		forms := []string{
			base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k),
			base64.URLEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
			hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
			strings.Trim(fmt.Sprint(k), "[]"), string(k),
			// The AES key schedule starts with the key as 32-bit words.
			fmt.Sprint(binary.BigEndian.Uint32(k)), fmt.Sprint(binary.LittleEndian.Uint32(k)),
		}
		for _, f := range forms {
			// 12 characters of any form are enough to identify a key.
			if len(f) > 12 {
				f = f[:12]
			}
			if strings.Contains(s, f) {
				t.Fatalf("output contains key material (%q): %s", f, s)
			}
		}
	}
}

func TestPrintingShowsNoKeyMaterial(t *testing.T) {
	k1, k2 := testKey(1), testKey(100)
	kr := mustRing(t, entry("k1", k1)+","+entry("k2", k2))
	dk := envelope.NewDataKey()
	w, err := kr.Wrap(dk)
	if err != nil {
		t.Fatal(err)
	}
	// The master keys' bytes must not appear; the data key's own bytes are
	// checked by TestDataKeyPrintsNoBytes (internal, where they are visible).
	type holder struct {
		K    envelope.Keyring
		P    *envelope.Keyring
		D    envelope.DataKey
		DP   *envelope.DataKey
		k    envelope.Keyring
		p    *envelope.Keyring
		d    envelope.DataKey
		Ks   []*envelope.Keyring
		Maps map[string]*envelope.DataKey
	}
	h := holder{K: *kr, P: kr, D: *dk, DP: dk, k: *kr, p: kr, d: *dk, Ks: []*envelope.Keyring{kr}, Maps: map[string]*envelope.DataKey{"a": dk}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T"} {
		for _, v := range []any{kr, *kr, dk, *dk, h, &h, w} {
			out := fmt.Sprintf(verb, v)
			assertNoKeyMaterial(t, out, k1, k2)
		}
	}
	if got := fmt.Sprintf("%+v", kr); got != "envelope.Keyring{active: k1, keys: [k1 k2]}" {
		t.Fatalf("%%+v of a keyring: %s", got)
	}
	if got := fmt.Sprintf("%d", *dk); got != "envelope.DataKey{…}" {
		t.Fatalf("%%d of a data key: %s", got)
	}
	dk.Destroy()
	if got := fmt.Sprint(dk); got != "envelope.DataKey{destroyed}" {
		t.Fatalf("destroyed data key prints %s", got)
	}
}

func TestWrapUnwrapRotation(t *testing.T) {
	k1, k2, k3 := testKey(1), testKey(100), testKey(50)
	old := mustRing(t, entry("k1", k1))
	rotated := mustRing(t, entry("k2", k2)+","+entry("k1", k1)) // k2 active, k1 unwraps only
	retired := mustRing(t, entry("k2", k2))                     // k1 removed
	other := mustRing(t, entry("k1", k3))                       // same id, another key

	dk := envelope.NewDataKey()
	aad := []byte("req_1\x00subject.email")
	sealed, err := envelope.Seal(dk, []byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	opens := func(t *testing.T, kr *envelope.Keyring, w envelope.Wrapped) {
		t.Helper()
		got, err := kr.Unwrap(w)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := envelope.Open(got, sealed, aad)
		if err != nil || string(pt) != "secret" {
			t.Fatalf("open with the unwrapped key: %q, %v", pt, err)
		}
	}

	w1, err := old.Wrap(dk)
	if err != nil {
		t.Fatal(err)
	}
	if w1.KeyID != "k1" || len(w1.Ciphertext) != 61 {
		t.Fatalf("wrapped: id %q, %d bytes", w1.KeyID, len(w1.Ciphertext))
	}
	opens(t, old, w1)
	opens(t, rotated, w1) // the old key still unwraps after rotation

	// Two wraps of one key differ (random nonce).
	if w1b, _ := old.Wrap(dk); bytes.Equal(w1b.Ciphertext, w1.Ciphertext) {
		t.Fatal("two wraps are identical")
	}

	// Rewrap moves k1's wrap under k2, and leaves k2's alone.
	w2, changed, err := rotated.Rewrap(w1)
	if err != nil || !changed || w2.KeyID != "k2" {
		t.Fatalf("rewrap: %+v changed %v err %v", w2, changed, err)
	}
	opens(t, rotated, w2)
	opens(t, retired, w2)
	if w3, changed, err := rotated.Rewrap(w2); err != nil || changed || w3.KeyID != "k2" || !bytes.Equal(w3.Ciphertext, w2.Ciphertext) {
		t.Fatalf("rewrap of an up-to-date wrap: %+v changed %v err %v", w3, changed, err)
	}

	// The removed key: ErrUnknownKey naming it, from Unwrap and Rewrap.
	for name, f := range map[string]func() error{
		"unwrap": func() error { _, err := retired.Unwrap(w1); return err },
		"rewrap": func() error { _, _, err := retired.Rewrap(w1); return err },
	} {
		err := f()
		if !errors.Is(err, envelope.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
			t.Fatalf("%s under a removed key: %v", name, err)
		}
	}

	// Same id, another key: authentication fails, naming the id.
	if _, err := other.Unwrap(w1); !errors.Is(err, envelope.ErrAuth) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("unwrap with another key of the same id: %v", err)
	}

	// A wrap relabelled with another id in the ring fails: the id is in the AAD.
	relabelled := envelope.Wrapped{KeyID: "k2", Ciphertext: w1.Ciphertext}
	if _, err := rotated.Unwrap(relabelled); !errors.Is(err, envelope.ErrAuth) {
		t.Fatalf("relabelled wrap: %v", err)
	}

	// Every byte of the wrapped key is authenticated.
	for i := range w1.Ciphertext {
		c := bytes.Clone(w1.Ciphertext)
		c[i] ^= 0x01
		if _, err := old.Unwrap(envelope.Wrapped{KeyID: "k1", Ciphertext: c}); err == nil {
			t.Fatalf("byte %d flipped: unwrapped", i)
		}
	}
	for _, n := range []int{0, 1, 60, 62} {
		c := make([]byte, n)
		copy(c, w1.Ciphertext)
		if _, err := old.Unwrap(envelope.Wrapped{KeyID: "k1", Ciphertext: c}); !errors.Is(err, envelope.ErrTruncated) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}

	// Encode / ParseWrapped round trip.
	back, err := envelope.ParseWrapped(w1.Encode())
	if err != nil || back.KeyID != w1.KeyID || !bytes.Equal(back.Ciphertext, w1.Ciphertext) {
		t.Fatalf("ParseWrapped(Encode()): %+v, %v", back, err)
	}
	for _, s := range []string{"", "k1", "K1:AAAA", "k1:AA==", "k1:A+A"} {
		if _, err := envelope.ParseWrapped(s); err == nil {
			t.Fatalf("ParseWrapped(%q) succeeded", s)
		}
	}

	// A destroyed key cannot be wrapped or used.
	dk.Destroy()
	if !dk.Destroyed() {
		t.Fatal("Destroyed false after Destroy")
	}
	if _, err := old.Wrap(dk); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("wrap of a destroyed key: %v", err)
	}
	if _, err := envelope.Open(dk, sealed, aad); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("open with a destroyed key: %v", err)
	}
	// ... while the key unwrapped again from its Wrapped still opens: the
	// Wrapped, not Destroy, is what crypto-shredding deletes.
	opens(t, old, w1)
}

func TestZeroKeyring(t *testing.T) {
	var kr envelope.Keyring
	if kr.Active() != "" || len(kr.IDs()) != 0 || kr.Has("") {
		t.Fatalf("zero keyring: active %q ids %v", kr.Active(), kr.IDs())
	}
	if _, err := kr.Wrap(envelope.NewDataKey()); err == nil {
		t.Fatal("wrap with an empty keyring succeeded")
	}
	if _, err := kr.Unwrap(envelope.Wrapped{KeyID: "k1"}); !errors.Is(err, envelope.ErrUnknownKey) {
		t.Fatalf("unwrap with an empty keyring: %v", err)
	}
}

func TestGenerateMasterKey(t *testing.T) {
	a, b := envelope.GenerateMasterKey(), envelope.GenerateMasterKey()
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	if !regexp.MustCompile(`^k\d{8}-[0-9a-f]{6}:[A-Za-z0-9+/]{43}=$`).MatchString(a) {
		t.Fatalf("generated entry %q has an unexpected shape", a)
	}
	kr := mustRing(t, a+","+b)
	if kr.Active() != strings.Split(a, ":")[0] {
		t.Fatalf("active %q", kr.Active())
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	kr, created, err := envelope.LoadOrCreateKeyFile(dir)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	path := filepath.Join(dir, envelope.KeyFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %04o", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want the key file only", len(ents))
	}

	// The second start reads the same key: a wrap from the first unwraps.
	dk := envelope.NewDataKey()
	w, err := kr.Wrap(dk)
	if err != nil {
		t.Fatal(err)
	}
	kr2, created, err := envelope.LoadOrCreateKeyFile(dir)
	if err != nil || created {
		t.Fatalf("second start: created %v, %v", created, err)
	}
	if _, err := kr2.Unwrap(w); err != nil || kr2.Active() != kr.Active() {
		t.Fatalf("second start's ring (%v) does not unwrap the first's: %v", kr2, err)
	}

	// Looser modes are refused, naming the file and the fix; 0400 is fine.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666, 0o700, 0o400} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := envelope.LoadOrCreateKeyFile(dir)
		if mode&0o077 == 0 {
			if err != nil {
				t.Fatalf("mode %04o refused: %v", mode, err)
			}
			continue
		}
		want := fmt.Sprintf("key file %s has mode %04o, looser than 0600", path, mode)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	// A hand-edited file: comments, blank lines, a rotated key first.
	content := "# rotated\n\n" + entry("k2", testKey(100)) + "\n" + entry("k1", testKey(1)) + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	kr3, _, err := envelope.LoadOrCreateKeyFile(dir)
	if err != nil || fmt.Sprint(kr3.IDs()) != "[k2 k1]" {
		t.Fatalf("edited file: %v, %v", kr3, err)
	}

	// A broken file is an error naming the file and the entry, not a new key.
	if err := os.WriteFile(path, []byte("# only a comment\nk1:"+base64.StdEncoding.EncodeToString(testKey(1)[:16])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = envelope.LoadOrCreateKeyFile(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `entry 1 (id "k1"): the key is 16 bytes`) {
		t.Fatalf("broken file: %v", err)
	}
	assertNoKeyMaterial(t, err.Error(), testKey(1)[:16])
	if err := os.WriteFile(path, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := envelope.LoadOrCreateKeyFile(dir); err == nil || !strings.Contains(err.Error(), "none given") {
		t.Fatalf("empty file: %v", err)
	}
}

// TestLoadOrCreateKeyFileConcurrent: starts racing on an empty directory
// all end with the same key, and exactly one reports creating it.
func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	actives := make([]string, n)
	createds := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr, created, err := envelope.LoadOrCreateKeyFile(dir)
			errs[i], createds[i] = err, created
			if err == nil {
				actives[i] = kr.Active()
			}
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if actives[i] != actives[0] {
			t.Fatalf("start %d has key %q, start 0 %q", i, actives[i], actives[0])
		}
		if createds[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d starts report creating the file, want 1", nCreated)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want the key file only", len(ents))
	}
}
