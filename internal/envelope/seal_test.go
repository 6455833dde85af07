package envelope_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/internal/envelope"
)

func TestSealOpenRoundTrip(t *testing.T) {
	dk := envelope.NewDataKey()
	for _, n := range []int{0, 1, 15, 16, 17, 1000, envelope.SegmentSize, 1 << 20} {
		pt := bytes.Repeat([]byte{'x'}, n)
		for _, aad := range [][]byte{nil, {}, []byte("req_1\x00subject.email")} {
			sealed, err := envelope.Seal(dk, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != n+envelope.SealOverhead {
				t.Fatalf("%d bytes sealed to %d, want %d", n, len(sealed), n+envelope.SealOverhead)
			}
			if n >= 8 && bytes.Contains(sealed, pt[:8]) {
				t.Fatalf("%d bytes: plaintext visible in the sealed value", n)
			}
			got, err := envelope.Open(dk, sealed, aad)
			if err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
			if !bytes.Equal(got, pt) || got == nil {
				t.Fatalf("%d bytes: round trip gave %d bytes (nil %v)", n, len(got), got == nil)
			}
		}
	}
	// Two seals of one value differ (random nonce).
	a, _ := envelope.Seal(dk, []byte("same"), nil)
	b, _ := envelope.Seal(dk, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are identical")
	}
}

func TestOpenRejects(t *testing.T) {
	dk, other := envelope.NewDataKey(), envelope.NewDataKey()
	const secret = "alice@example.com"
	aad := []byte("req_1\x00subject.email")
	sealed, err := envelope.Seal(dk, []byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { c := bytes.Clone(sealed); c[i] ^= 0x80; return c }
	tagStart := len(sealed) - 16
	cases := []struct {
		name   string
		key    *envelope.DataKey
		sealed []byte
		aad    []byte
		want   error
	}{
		{"wrong aad: other request", dk, sealed, []byte("req_2\x00subject.email"), envelope.ErrAuth},
		{"wrong aad: other field", dk, sealed, []byte("req_1\x00subject.phone"), envelope.ErrAuth},
		{"wrong aad: none", dk, sealed, nil, envelope.ErrAuth},
		{"wrong aad: prefix", dk, sealed, aad[:len(aad)-1], envelope.ErrAuth},
		{"wrong key", other, sealed, aad, envelope.ErrAuth},
		{"version byte", dk, flip(0), aad, envelope.ErrVersion},
		{"empty", dk, nil, aad, envelope.ErrTruncated},
		{"overhead minus one", dk, sealed[:envelope.SealOverhead-1], aad, envelope.ErrTruncated},
		{"tag cut", dk, sealed[:len(sealed)-1], aad, envelope.ErrAuth},
		{"appended byte", dk, append(bytes.Clone(sealed), 0), aad, envelope.ErrAuth},
		{"header only and tag", dk, append(bytes.Clone(sealed[:13]), sealed[tagStart:]...), aad, envelope.ErrAuth},
	}
	// Every byte position: nonce (1..12), ciphertext, tag.
	for i := 1; i < len(sealed); i++ {
		class := "ciphertext"
		switch {
		case i <= 12:
			class = "nonce"
		case i >= tagStart:
			class = "tag"
		}
		cases = append(cases, struct {
			name   string
			key    *envelope.DataKey
			sealed []byte
			aad    []byte
			want   error
		}{class + " byte flipped", dk, flip(i), aad, envelope.ErrAuth})
	}
	for _, tc := range cases {
		got, err := envelope.Open(tc.key, tc.sealed, tc.aad)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %q, %v; want %v", tc.name, got, err, tc.want)
		}
		if got != nil {
			t.Fatalf("%s: plaintext returned with the error", tc.name)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "req_") {
			t.Fatalf("%s: error reveals plaintext or aad: %v", tc.name, err)
		}
	}
}

func TestDestroyedKey(t *testing.T) {
	dk := envelope.NewDataKey()
	sealed, err := envelope.Seal(dk, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dk.Destroy()
	dk.Destroy() // twice is harmless
	if _, err := envelope.Seal(dk, []byte("x"), nil); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("seal: %v", err)
	}
	if _, err := envelope.Open(dk, sealed, nil); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("open: %v", err)
	}
	if _, err := envelope.NewWriter(&bytes.Buffer{}, dk, nil); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("writer: %v", err)
	}
	if _, err := envelope.NewReader(bytes.NewReader(make([]byte, 100)), dk, nil); !errors.Is(err, envelope.ErrDestroyed) {
		t.Fatalf("reader: %v", err)
	}
}
