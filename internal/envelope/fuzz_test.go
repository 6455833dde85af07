package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// fuzzKey is the fixed data key of the fuzz targets and of the committed
// corpus in testdata/fuzz (its valid seeds were sealed under it).
func fuzzKey() *DataKey {
	var k [KeySize]byte
	for i := range k {
		k[i] = byte(i)
	}
	return dataKeyFrom(k[:])
}

// FuzzOpen: Open never panics on any input, never opens anything but a
// Seal of its key and aad, and Seal then Open round-trips any plaintext.
func FuzzOpen(f *testing.F) {
	dk := fuzzKey()
	valid, _ := Seal(dk, []byte("hello"), []byte("req_1\x00f"))
	f.Add(valid, []byte("req_1\x00f"))
	f.Add(valid[:len(valid)-1], []byte("req_1\x00f"))
	f.Add([]byte{fieldVersion}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := Open(dk, sealed, aad)
		if err == nil {
			// Opened: it must be a real seal, whose re-seal opens the same.
			again, err := Seal(dk, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := Open(dk, again, aad); err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("re-seal of an opened value: %v", err)
			}
		} else if pt != nil {
			t.Fatal("plaintext returned with an error")
		}
		// The fuzz input as plaintext round-trips.
		s, err := Seal(dk, sealed, aad)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Open(dk, s, aad); err != nil || !bytes.Equal(back, sealed) {
			t.Fatalf("round trip of %d bytes: %v", len(sealed), err)
		}
	})
}

// FuzzStreamReader: the Reader never panics, returns only whole
// authenticated segments before an error, and a Writer's output of the
// fuzz input reads back.
func FuzzStreamReader(f *testing.F) {
	dk := fuzzKey()
	aad := []byte("req_1\x00export_1")
	for _, pt := range [][]byte{nil, []byte("hello")} {
		var b bytes.Buffer
		w, _ := NewWriter(&b, dk, aad)
		_, _ = w.Write(pt)
		_ = w.Close()
		f.Add(b.Bytes(), aad)
		f.Add(b.Bytes()[:b.Len()-1], aad)
	}
	f.Fuzz(func(t *testing.T, stream, aad []byte) {
		r, err := NewReader(bytes.NewReader(stream), dk, aad)
		if err == nil {
			got, err := io.ReadAll(r)
			if err != nil && len(got)%SegmentSize != 0 {
				t.Fatalf("%d bytes returned before the error %v: not whole segments", len(got), err)
			}
			if err == nil && len(stream) != StreamHeaderSize+len(got)+tagSize*max(1, (len(got)+SegmentSize-1)/SegmentSize) {
				t.Fatalf("a %d-byte stream read as %d bytes", len(stream), len(got))
			}
		}
		var b bytes.Buffer
		w, err := NewWriter(&b, dk, aad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(stream); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err = NewReader(&b, dk, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, stream) {
			t.Fatalf("round trip of %d bytes: %v", len(stream), err)
		}
	})
}

// TestFuzzCorpusSeeds: the committed corpus still holds what its names say
// (valid-* open under fuzzKey; the others fail), so a format change that
// would leave it stale is noticed.
func TestFuzzCorpusSeeds(t *testing.T) {
	dk := fuzzKey()
	for _, target := range []string{"FuzzOpen", "FuzzStreamReader"} {
		seeds := readCorpus(t, "testdata/fuzz/"+target)
		if len(seeds) < 3 {
			t.Fatalf("%s: %d committed seeds", target, len(seeds))
		}
		for name, args := range seeds {
			var err error
			if target == "FuzzOpen" {
				_, err = Open(dk, args[0], args[1])
			} else {
				var r *Reader
				if r, err = NewReader(bytes.NewReader(args[0]), dk, args[1]); err == nil {
					_, err = io.ReadAll(r)
				}
			}
			if valid := strings.HasPrefix(name, "valid"); valid != (err == nil) {
				t.Errorf("%s/%s: %v", target, name, err)
			}
		}
	}
}

// TestDataKeyPrintsNoBytes: no fmt verb shows a data key's or a master
// key's bytes, whether printed directly or inside another value (fmt walks
// into unexported fields and, for verbs like %s, dereferences pointers).
func TestDataKeyPrintsNoBytes(t *testing.T) {
	dk := NewDataKey()
	k := bytes.Clone(dk.s().k[:])
	// A master key with the same bytes, so the same forms find it too.
	kr, err := ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(k))
	if err != nil {
		t.Fatal(err)
	}
	var sink bytes.Buffer
	sw, err := NewWriter(&sink, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		D  DataKey
		P  *DataKey
		d  DataKey
		ds []DataKey
		kr Keyring
		mk *masterKey
		sw *Writer
	}
	h := holder{D: *dk, P: dk, d: *dk, ds: []DataKey{*dk}, kr: *kr, mk: kr.keys[0], sw: sw}
	forms := []string{
		base64.StdEncoding.EncodeToString(k)[:12], base64.RawURLEncoding.EncodeToString(k)[:12],
		hex.EncodeToString(k)[:12], strings.ToUpper(hex.EncodeToString(k)[:12]),
		strings.Trim(fmt.Sprint(k[:4]), "[]"), string(k[:6]),
		// The AES key schedule starts with the key as 32-bit words.
		fmt.Sprint(binary.BigEndian.Uint32(k)), fmt.Sprint(binary.LittleEndian.Uint32(k)),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b"} {
		for _, v := range []any{dk, *dk, h, &h} {
			out := fmt.Sprintf(verb, v)
			for _, f := range forms {
				if strings.Contains(out, f) {
					t.Fatalf("%s of %T shows key bytes (%q): %s", verb, v, f, out)
				}
			}
		}
	}
}

// readCorpus reads the "go test fuzz v1" files of a directory.
func readCorpus(t *testing.T, dir string) map[string][][]byte {
	t.Helper()
	entries, err := fsReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]byte{}
	for name, content := range entries {
		lines := strings.Split(strings.TrimSpace(content), "\n")
		if len(lines) != 3 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s/%s: not a two-argument corpus file", dir, name)
		}
		var args [][]byte
		for _, l := range lines[1:] {
			var s string
			if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(l, "[]byte("), ")"), "%q", &s); err != nil {
				t.Fatalf("%s/%s: %v", dir, name, err)
			}
			args = append(args, []byte(s))
		}
		out[name] = args
	}
	if len(out) == 0 {
		t.Fatal(errors.New("no corpus in " + dir))
	}
	return out
}
