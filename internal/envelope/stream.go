package envelope

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// SegmentSize is the plaintext size of every stream segment but the last.
const SegmentSize = 64 << 10

const (
	saltSize   = 32
	prefixSize = 7
	// StreamHeaderSize is the size of a stream's header: version (1), salt
	// (32), nonce prefix (7).
	StreamHeaderSize = 1 + saltSize + prefixSize
	segCTSize        = SegmentSize + tagSize
	// streamInfo starts the HKDF info of a stream's segment key, followed
	// by the aad.
	streamInfo = "dsar/envelope/v1/stream\x00"
	// minBuf is the first size of a Writer's or Reader's buffers; they grow
	// to a segment as the data does.
	minBuf = 4 << 10
	// maxSegments: the counter is 32 bits (256 TiB of plaintext).
	maxSegments = math.MaxUint32
)

// errClosed is returned by Write after Close.
var errClosed = errors.New("envelope: write to a closed stream writer")

// Writer encrypts a stream in segments, in constant memory (two buffers of
// about SegmentSize). Close must be called: it writes the final segment,
// without which a Reader reports the stream truncated.
//
// Format: header = version (0x02) | salt (32 random bytes) | nonce prefix
// (7 random bytes); then segments, each AES-256-GCM of SegmentSize
// plaintext bytes (the last: 0 to SegmentSize) with its 16-byte tag, under
// the segment key HKDF-SHA256(data key, salt, "dsar/envelope/v1/stream\x00"
// | aad), with nonce = prefix | segment number (uint32, big-endian) | 0x01
// for the last segment, 0x00 for the others (the STREAM construction).
// Each stream has its own segment key, so its nonces never meet another
// stream's or Seal's; a segment moved, repeated, dropped or taken from
// another stream, or data added after the last segment, fails to
// authenticate.
type Writer struct {
	w      io.Writer
	aead   hiddenAEAD // the stream's segment key
	prefix [prefixSize]byte
	nonce  [nonceSize]byte // the current segment's
	ctr    uint64
	buf    []byte // plaintext of the pending segment, cap SegmentSize
	out    []byte // cap segCTSize
	err    error
	closed bool
}

// NewWriter writes a stream header to w and returns a Writer that
// encrypts what is written to it with dk, bound to aad (NewReader must be
// given the same aad).
func NewWriter(w io.Writer, dk *DataKey, aad []byte) (*Writer, error) {
	k, _, err := dk.get()
	if err != nil {
		return nil, err
	}
	var hdr [StreamHeaderSize]byte
	hdr[0] = streamVersion
	rand.Read(hdr[1:])
	aead, err := segmentAEAD(k, hdr[1:1+saltSize], aad)
	if err != nil {
		return nil, err
	}
	sw := &Writer{w: w, aead: hide(aead)}
	copy(sw.prefix[:], hdr[1+saltSize:])
	if _, err := w.Write(hdr[:]); err != nil {
		return nil, fmt.Errorf("envelope: writing the stream header: %w", err)
	}
	return sw, nil
}

// segmentAEAD derives a stream's segment key and makes its AEAD.
func segmentAEAD(k *[KeySize]byte, salt, aad []byte) (cipher.AEAD, error) {
	sk, err := hkdf.Key(sha256.New, k[:], salt, streamInfo+string(aad), KeySize)
	if err != nil {
		return nil, fmt.Errorf("envelope: deriving the stream key: %w", err)
	}
	aead := newGCM(sk)
	clear(sk)
	return aead, nil
}

// segmentNonce sets n to prefix | ctr (big-endian uint32) | last and
// returns it as a slice.
func segmentNonce(n *[nonceSize]byte, prefix *[prefixSize]byte, ctr uint64, last bool) []byte {
	copy(n[:], prefix[:])
	binary.BigEndian.PutUint32(n[prefixSize:], uint32(ctr))
	n[nonceSize-1] = 0
	if last {
		n[nonceSize-1] = 1
	}
	return n[:]
}

// Write encrypts p. A full segment is written out only once more data
// follows it (the final segment is written by Close).
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.closed {
		return 0, errClosed
	}
	if sw.err != nil {
		return 0, sw.err
	}
	n := 0
	for len(p) > 0 {
		if len(sw.buf) == SegmentSize {
			if err := sw.flush(false); err != nil {
				sw.err = err
				return n, err
			}
		}
		c := min(len(p), SegmentSize-len(sw.buf))
		if len(sw.buf)+c > cap(sw.buf) { // grow: a small stream keeps small buffers
			nb := make([]byte, len(sw.buf), min(SegmentSize, max(4*cap(sw.buf), len(sw.buf)+c, minBuf)))
			copy(nb, sw.buf)
			clear(sw.buf)
			sw.buf = nb
		}
		sw.buf = append(sw.buf, p[:c]...)
		p = p[c:]
		n += c
	}
	return n, nil
}

// flush encrypts and writes the pending segment.
func (sw *Writer) flush(last bool) error {
	if sw.ctr > maxSegments {
		return errors.New("envelope: stream too long (2^32 segments)")
	}
	sw.out = sw.aead().Seal(sw.out[:0], segmentNonce(&sw.nonce, &sw.prefix, sw.ctr, last), sw.buf, nil)
	sw.ctr++
	clear(sw.buf)
	sw.buf = sw.buf[:0]
	if _, err := sw.w.Write(sw.out); err != nil {
		return fmt.Errorf("envelope: writing stream segment %d: %w", sw.ctr-1, err)
	}
	return nil
}

// Close writes the final segment. It does not close the underlying writer.
// Calling it again does nothing.
func (sw *Writer) Close() error {
	if sw.closed {
		return sw.err
	}
	sw.closed = true
	if sw.err != nil {
		return sw.err
	}
	sw.err = sw.flush(true)
	return sw.err
}

// Reader decrypts a stream written by Writer, in constant memory. Read
// returns plaintext only after its segment authenticated, and io.EOF only
// after the final segment did: a stream cut anywhere fails with
// ErrTruncated or ErrAuth, never a silent EOF. Errors are sticky.
type Reader struct {
	r      io.Reader
	aead   hiddenAEAD // the stream's segment key
	prefix [prefixSize]byte
	nonce  [nonceSize]byte // the current segment's
	ctr    uint64
	buf    []byte // ciphertext read ahead, cap segCTSize+1
	plain  []byte // cap SegmentSize
	pend   []byte // plaintext not yet returned
	done   bool
	err    error
}

// NewReader reads the stream header from r and returns a Reader that
// decrypts the rest with dk, given the aad the stream was written with.
func NewReader(r io.Reader, dk *DataKey, aad []byte) (*Reader, error) {
	k, _, err := dk.get()
	if err != nil {
		return nil, err
	}
	var hdr [StreamHeaderSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("envelope: stream header of %d bytes, %d expected: %w", n, StreamHeaderSize, ErrTruncated)
		}
		return nil, fmt.Errorf("envelope: reading the stream header: %w", err)
	}
	if hdr[0] != streamVersion {
		return nil, fmt.Errorf("envelope: stream of version %d: %w", hdr[0], ErrVersion)
	}
	aead, err := segmentAEAD(k, hdr[1:1+saltSize], aad)
	if err != nil {
		return nil, err
	}
	sr := &Reader{r: r, aead: hide(aead)}
	copy(sr.prefix[:], hdr[1+saltSize:])
	return sr, nil
}

// Read returns decrypted plaintext.
func (sr *Reader) Read(p []byte) (int, error) {
	for len(sr.pend) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			return 0, io.EOF
		}
		if err := sr.next(); err != nil {
			sr.err = err
			clear(sr.plain[:cap(sr.plain)])
		}
	}
	n := copy(p, sr.pend)
	sr.pend = sr.pend[n:]
	return n, nil
}

// next reads and authenticates one segment. It reads one byte past a full
// segment to know whether that segment is the last.
func (sr *Reader) next() error {
	// Read up to segCTSize+1 bytes, growing the buffer as data comes, so a
	// small stream keeps small buffers.
	last := false
	for len(sr.buf) < segCTSize+1 && !last {
		if len(sr.buf) == cap(sr.buf) {
			nb := make([]byte, len(sr.buf), min(segCTSize+1, max(4*cap(sr.buf), minBuf)))
			copy(nb, sr.buf)
			sr.buf = nb
		}
		n, err := io.ReadFull(sr.r, sr.buf[len(sr.buf):cap(sr.buf)])
		sr.buf = sr.buf[:len(sr.buf)+n]
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			last = true
		default:
			return fmt.Errorf("envelope: reading stream segment %d: %w", sr.ctr, err)
		}
	}
	if sr.ctr > maxSegments {
		return fmt.Errorf("envelope: stream segment %d: more than 2^32 segments: %w", sr.ctr, ErrAuth)
	}
	ct := sr.buf
	if !last {
		ct = sr.buf[:segCTSize]
	}
	if len(ct) < tagSize {
		if len(ct) == 0 {
			return fmt.Errorf("envelope: stream ends before segment %d without a final segment: %w", sr.ctr, ErrTruncated)
		}
		return fmt.Errorf("envelope: stream segment %d of %d bytes, shorter than a tag: %w", sr.ctr, len(ct), ErrTruncated)
	}
	pt, err := sr.aead().Open(sr.plain[:0], segmentNonce(&sr.nonce, &sr.prefix, sr.ctr, last), ct, nil)
	if err != nil {
		// A full segment that opens as a middle one means the segments
		// after it were cut off: say so rather than "altered".
		if last && len(ct) == segCTSize {
			if _, err2 := sr.aead().Open(sr.plain[:0], segmentNonce(&sr.nonce, &sr.prefix, sr.ctr, false), ct, nil); err2 == nil {
				return fmt.Errorf("envelope: stream ends after segment %d, which is not the final one: %w", sr.ctr, ErrTruncated)
			}
		}
		return fmt.Errorf("envelope: stream segment %d: %w", sr.ctr, ErrAuth)
	}
	sr.ctr++
	sr.plain = pt[:0] // reused for the next segment once pend is consumed
	sr.pend = pt
	if last {
		sr.done = true
		sr.buf = sr.buf[:0]
	} else {
		sr.buf[0] = sr.buf[segCTSize]
		sr.buf = sr.buf[:1]
	}
	return nil
}
