package envelope_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/dsar-project/dsar/internal/envelope"
)

const (
	seg   = envelope.SegmentSize
	segCT = seg + 16
	hdr   = envelope.StreamHeaderSize
)

// encrypt streams pt through a Writer, in writes of the given size (0: one
// write).
func encrypt(t testing.TB, dk *envelope.DataKey, pt, aad []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := envelope.NewWriter(&out, dk, aad)
	if err != nil {
		t.Fatal(err)
	}
	if chunk <= 0 {
		chunk = len(pt) + 1
	}
	for p := pt; len(p) > 0; {
		n := min(chunk, len(p))
		if m, err := w.Write(p[:n]); err != nil || m != n {
			t.Fatalf("write: %d, %v", m, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// decrypt reads a whole stream.
func decrypt(dk *envelope.DataKey, ct, aad []byte) ([]byte, error) {
	r, err := envelope.NewReader(bytes.NewReader(ct), dk, aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// ctSize is the stream size for n plaintext bytes.
func ctSize(n int) int {
	segs := max(1, (n+seg-1)/seg)
	return hdr + n + 16*segs
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStreamRoundTrip(t *testing.T) {
	dk := envelope.NewDataKey()
	aad := []byte("req_1\x00export_1")
	sizes := []struct {
		name string
		n    int
	}{
		{"empty", 0}, {"1 byte", 1}, {"segment-1", seg - 1}, {"one segment", seg},
		{"segment+1", seg + 1}, {"two segments", 2 * seg}, {"10 MiB", 10 << 20}, {"10 MiB+7", 10<<20 + 7},
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			pt := randBytes(sz.n)
			for _, chunk := range []int{0, 1000, seg, seg + 1} {
				if chunk == 1000 && sz.n > 4*seg {
					continue // small writes on big inputs add time, not coverage
				}
				ct := encrypt(t, dk, pt, aad, chunk)
				if len(ct) != ctSize(sz.n) {
					t.Fatalf("chunk %d: %d bytes of stream, want %d", chunk, len(ct), ctSize(sz.n))
				}
				got, err := decrypt(dk, ct, aad)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("chunk %d: round trip differs", chunk)
				}
			}
			// A reader that returns one byte at a time, and one that returns
			// data with io.EOF, read the same.
			ct := encrypt(t, dk, pt, aad, 0)
			if sz.n <= 2*seg+1 {
				for name, src := range map[string]io.Reader{
					"one byte": iotest.OneByteReader(bytes.NewReader(ct)),
					"data+EOF": iotest.DataErrReader(bytes.NewReader(ct)),
					"half":     iotest.HalfReader(bytes.NewReader(ct)),
				} {
					r, err := envelope.NewReader(src, dk, aad)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(iotest.OneByteReader(r))
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("%s reader: %d bytes, %v", name, len(got), err)
					}
				}
			}
		})
	}
}

func TestStreamWriterMisuse(t *testing.T) {
	dk := envelope.NewDataKey()
	var out bytes.Buffer
	w, err := envelope.NewWriter(&out, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := out.Len()
	if err := w.Close(); err != nil || out.Len() != n {
		t.Fatalf("second Close: %v, wrote %d more bytes", err, out.Len()-n)
	}
	if _, err := w.Write([]byte("b")); err == nil {
		t.Fatal("write after Close succeeded")
	}
	// A failing destination is reported, and sticks.
	fw, err := envelope.NewWriter(&failAfter{n: hdr + 10}, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fw.Write(make([]byte, 3*seg))
	if err == nil {
		t.Fatal("write to a failing destination succeeded")
	}
	if _, err2 := fw.Write([]byte("x")); err2 == nil {
		t.Fatal("write after a failure succeeded")
	}
	if err := fw.Close(); err == nil {
		t.Fatal("close after a failure succeeded")
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

// TestStreamRejects: every alteration of a stream fails, with no silent
// EOF, and no plaintext of an altered segment is returned.
func TestStreamRejects(t *testing.T) {
	dk, other := envelope.NewDataKey(), envelope.NewDataKey()
	aad := []byte("req_1\x00export_1")
	pt := randBytes(4*seg + 100) // segments 0..3 full, 4 the last (100 bytes)
	ct := encrypt(t, dk, pt, aad, 0)
	segAt := func(i int) []byte { return ct[hdr+i*segCT : min(hdr+(i+1)*segCT, len(ct))] }
	other2 := encrypt(t, dk, pt, aad, 0) // same key, same aad, another stream
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 0x01; return c }

	type tc struct {
		name string
		key  *envelope.DataKey
		ct   []byte
		aad  []byte
		want error // nil: ErrAuth or ErrTruncated
	}
	cases := []tc{
		{"wrong aad", dk, ct, []byte("req_2\x00export_1"), envelope.ErrAuth},
		{"no aad", dk, ct, nil, envelope.ErrAuth},
		{"wrong key", other, ct, aad, envelope.ErrAuth},
		{"version byte", dk, flip(0), aad, envelope.ErrVersion},
		{"reordered 1 and 2", dk, join(ct[:hdr], segAt(0), segAt(2), segAt(1), segAt(3), segAt(4)), aad, envelope.ErrAuth},
		{"duplicated 1", dk, join(ct[:hdr], segAt(0), segAt(1), segAt(1), segAt(2), segAt(3), segAt(4)), aad, envelope.ErrAuth},
		{"dropped middle 2", dk, join(ct[:hdr], segAt(0), segAt(1), segAt(3), segAt(4)), aad, envelope.ErrAuth},
		{"dropped final", dk, ct[:hdr+4*segCT], aad, envelope.ErrTruncated},
		{"final moved first", dk, join(ct[:hdr], segAt(4)), aad, envelope.ErrAuth},
		{"appended byte", dk, join(ct, []byte{0}), aad, envelope.ErrAuth},
		{"appended final again", dk, join(ct, segAt(4)), aad, envelope.ErrAuth},
		{"appended full segment", dk, join(ct, segAt(1)), aad, envelope.ErrAuth},
		{"segment from another stream", dk, join(ct[:hdr], segAt(0), other2[hdr+segCT:hdr+2*segCT], segAt(2), segAt(3), segAt(4)), aad, envelope.ErrAuth},
		{"other stream's header", dk, join(other2[:hdr], ct[hdr:]), aad, envelope.ErrAuth},
	}
	// Byte classes: every header byte after the version (salt, nonce
	// prefix), the first segment's first ciphertext byte and every tag
	// byte, bytes of a middle segment, the last segment and its tag.
	for i := 1; i < hdr; i++ {
		cases = append(cases, tc{"header byte", dk, flip(i), aad, envelope.ErrAuth})
	}
	for i := hdr + seg; i < hdr+segCT; i++ {
		cases = append(cases, tc{"first tag byte", dk, flip(i), aad, envelope.ErrAuth})
	}
	for _, i := range []int{hdr, hdr + 1, hdr + seg - 1, hdr + 2*segCT, hdr + 2*segCT + seg/2, hdr + 3*segCT - 1, hdr + 4*segCT, len(ct) - 17, len(ct) - 16, len(ct) - 1} {
		cases = append(cases, tc{"segment byte", dk, flip(i), aad, envelope.ErrAuth})
	}
	// Truncation at every segment boundary and around it, and inside the
	// header.
	for _, n := range []int{0, 1, hdr - 1, hdr} {
		cases = append(cases, tc{"cut in or at the header", dk, ct[:n], aad, envelope.ErrTruncated})
	}
	for i := 1; i <= 4; i++ {
		b := hdr + i*segCT
		cases = append(cases,
			tc{"cut at a segment boundary", dk, ct[:b], aad, envelope.ErrTruncated},
			tc{"cut one after a boundary", dk, ct[:b+1], aad, envelope.ErrTruncated},
			tc{"cut one before a boundary", dk, ct[:b-1], aad, envelope.ErrAuth},
			tc{"cut inside a tag", dk, ct[:b-8], aad, nil},
		)
	}
	cases = append(cases, tc{"cut one before the end", dk, ct[:len(ct)-1], aad, envelope.ErrAuth})

	for _, c := range cases {
		r, err := envelope.NewReader(bytes.NewReader(c.ct), c.key, c.aad)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(r)
		}
		if err == nil {
			t.Fatalf("%s (%d bytes): read %d bytes without an error", c.name, len(c.ct), len(got))
		}
		ok := errors.Is(err, c.want)
		if c.want == nil {
			ok = errors.Is(err, envelope.ErrAuth) || errors.Is(err, envelope.ErrTruncated)
		}
		if !ok {
			t.Fatalf("%s (%d bytes): %v, want %v", c.name, len(c.ct), err, c.want)
		}
		// Only whole authenticated segments of the original come out.
		if len(got)%seg != 0 || !bytes.Equal(got, pt[:len(got)]) {
			t.Fatalf("%s: returned %d bytes that are not authenticated segments", c.name, len(got))
		}
		if r != nil {
			// Errors are sticky.
			if _, err2 := r.Read(make([]byte, 10)); err2 == nil || err2 == io.EOF {
				t.Fatalf("%s: read after the error: %v", c.name, err2)
			}
		}
	}

	// An empty stream cut after its header, or with its only segment cut.
	empty := encrypt(t, dk, nil, aad, 0)
	for n := range len(empty) {
		if _, err := decrypt(dk, empty[:n], aad); err == nil {
			t.Fatalf("empty stream cut to %d bytes read without an error", n)
		}
	}
}

// TestStreamConstantMemory: 32 MiB through a Writer and a Reader allocate
// a few buffers, not the data's size.
func TestStreamConstantMemory(t *testing.T) {
	dk := envelope.NewDataKey()
	const size = 32 << 20
	src := &patternReader{n: size}
	pr, pw := io.Pipe()
	go func() {
		w, err := envelope.NewWriter(pw, dk, nil)
		if err == nil {
			_, err = io.CopyBuffer(w, src, make([]byte, 8<<10))
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := envelope.NewReader(pr, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 8<<10))
	if err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("streaming %d MiB allocated %d KiB", size>>20, alloc>>10)
	}
	want := sha256.New()
	_, _ = io.Copy(want, &patternReader{n: size})
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("streamed data differs")
	}
}

// patternReader yields n bytes of a fixed pattern.
type patternReader struct{ n, off int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(len(b), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + i) * 31 >> 3)
	}
	p.off += len(b)
	return len(b), nil
}
