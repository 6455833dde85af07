package envelope_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/envelope"
)

// BenchmarkSeal seals and opens fields of typical sizes (an email, a note,
// a large value). MB/s is plaintext sealed (or opened) per second.
func BenchmarkSeal(b *testing.B) {
	dk := envelope.NewDataKey()
	aad := []byte("req_0123456789\x00subject.email")
	for _, n := range []int{32, 1 << 10, 64 << 10} {
		pt := bytes.Repeat([]byte{'a'}, n)
		b.Run(fmt.Sprintf("seal/%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := envelope.Seal(dk, pt, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
		sealed, _ := envelope.Seal(dk, pt, aad)
		b.Run(fmt.Sprintf("open/%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := envelope.Open(dk, sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// onlyReader and onlyWriter hide WriteTo and ReadFrom, so that every
// io.CopyBuffer below really copies through its 32 KiB buffer (bytes.Reader
// would otherwise hand io.Discard the whole slice at once, and the baseline
// would measure nothing).
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// BenchmarkStream encrypts and decrypts an 8 MiB export through the
// stream, from a bytes.Reader to io.Discard in 32 KiB copies, and reports
// beside MB/s the ratio of its time to a plain io.Copy of the same bytes
// between the same ends, measured in the same run ("x_copy": 5 means five
// times as long as copying without encryption).
func BenchmarkStream(b *testing.B) {
	const size = 8 << 20
	dk := envelope.NewDataKey()
	aad := []byte("req_0123456789\x00export_1")
	pt := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	var enc bytes.Buffer
	w, _ := envelope.NewWriter(&enc, dk, aad)
	_, _ = w.Write(pt)
	_ = w.Close()
	ct := enc.Bytes()

	// plainCopy is the baseline: copying n bytes with no encryption.
	plainCopy := func(b *testing.B, src []byte, iters int) time.Duration {
		buf := make([]byte, 32<<10)
		start := time.Now()
		for range iters {
			if _, err := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{bytes.NewReader(src)}, buf); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	run := func(name string, src []byte, op func(buf []byte) error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			buf := make([]byte, 32<<10)
			for b.Loop() {
				if err := op(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if base := plainCopy(b, src, b.N); base > 0 {
				b.ReportMetric(float64(b.Elapsed())/float64(base), "x_copy")
			}
		})
	}
	b.Run("copy", func(b *testing.B) { // the baseline alone, for its MB/s
		b.SetBytes(size)
		buf := make([]byte, 32<<10)
		for b.Loop() {
			if _, err := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{bytes.NewReader(pt)}, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("encrypt", pt, func(buf []byte) error {
		w, err := envelope.NewWriter(io.Discard, dk, aad)
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(onlyWriter{w}, onlyReader{bytes.NewReader(pt)}, buf); err != nil {
			return err
		}
		return w.Close()
	})
	run("decrypt", ct, func(buf []byte) error {
		r, err := envelope.NewReader(bytes.NewReader(ct), dk, aad)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{r}, buf)
		if err == nil && n != size {
			err = fmt.Errorf("decrypted %d bytes", n)
		}
		return err
	})
}
