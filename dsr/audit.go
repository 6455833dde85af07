package dsr

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditEvent is one entry of a request's audit chain: what happened to the
// request, when and by whom, with a hash that covers the event and the hash
// of the event before it, so that an edited, deleted, inserted or reordered
// event is detectable ([VerifyChain]).
//
// What a chain does NOT show:
//   - a deleted LAST event (or several last events): the chain that remains is
//     valid. The request document's own history length is the cross-check.
//   - a chain rewritten from the edit onward: the hashes are plain SHA-256
//     without a secret, so whoever can write the collection can recompute
//     every hash after the event they changed, or delete a request's whole
//     chain. The chain makes accidental and naive changes evident; against a
//     deliberate one, the latest hashes must also be kept outside the store
//     (logs, a write-once bucket) or keyed with a secret the store lacks.
type AuditEvent struct {
	ID        string    `bson:"_id"` // "<request id>:<seq, zero-padded to 8 digits>"
	RequestID string    `bson:"request_id"`
	Seq       int       `bson:"seq"`   // 1, 2, 3... per request
	At        time.Time `bson:"at"`    // UTC, millisecond precision (the store's clock)
	Actor     string    `bson:"actor"` // API key name, "worker", "sweep", "subject", "portal": never personal data
	Kind      string    `bson:"kind"`  // e.g. "filed", "status", "job", "exported", "downloaded", "extended", "purged"
	// Data holds small details (from/to status, reason, connector, counts as
	// strings); callers never put personal data here.
	Data     map[string]string `bson:"data,omitempty"`
	PrevHash string            `bson:"prev_hash"` // hex SHA-256 of the previous event, "" for seq 1
	// Hash is hex(SHA-256(PrevHash || CanonicalJSON())), PrevHash taken as
	// its hex text (64 ASCII bytes, none for seq 1).
	Hash string `bson:"hash"`
}

// AuditEventID is the ID ([AuditEvent.ID], the stored _id) of event seq of
// request requestID: "<request id>:<seq, zero-padded to 8 digits>".
// Zero-padding makes the ID order the seq order within a request, and the
// ':' keeps a request's events together (request ids never contain one).
// [VerifyChain] expects every event to carry it.
func AuditEventID(requestID string, seq int) string {
	return fmt.Sprintf("%s:%08d", requestID, seq)
}

// canonicalEvent is the hashed form of an event: its fields are declared in
// sorted key order, which encoding/json keeps, and encoding/json writes the
// keys of a map sorted.
type canonicalEvent struct {
	Actor     string            `json:"actor"`
	At        string            `json:"at"`
	Data      map[string]string `json:"data"`
	Kind      string            `json:"kind"`
	PrevHash  string            `json:"prev_hash"`
	RequestID string            `json:"request_id"`
	Seq       int               `json:"seq"`
}

// canonicalTime is the layout of "at": RFC 3339 in UTC with exactly three
// fractional digits.
const canonicalTime = "2006-01-02T15:04:05.000Z"

// CanonicalJSON returns the bytes an event's hash covers: the event without
// _id and hash as one line of compact JSON (no whitespace, no trailing
// newline), an object with exactly these members in this (sorted) order:
//
//	{"actor":"...","at":"2026-11-24T10:00:00.000Z","data":{...},"kind":"...","prev_hash":"...","request_id":"...","seq":1}
//
// where:
//   - at is the time in UTC as YYYY-MM-DDTHH:MM:SS.mmmZ, always three
//     fractional digits (finer precision is truncated);
//   - data is an object whose members are sorted by key, bytewise (UTF-8);
//     {} when there is no data;
//   - seq is a decimal integer;
//   - strings are written as encoding/json writes them with HTML escaping
//     off: '"' and '\' escaped with a backslash, \b \f \n \r \t for those
//     control characters and \u00XX (lower-case hex) for the other ones
//     below U+0020, \u2028 and \u2029 for those two, every other character
//     as its UTF-8 bytes. Strings must be valid UTF-8 (AppendAudit refuses
//     others, VerifyChain reports them).
//
// It does not depend on Go's map iteration order; a test pins the exact
// bytes, since a change would break every stored chain.
func (e *AuditEvent) CanonicalJSON() []byte {
	data := e.Data
	if data == nil {
		data = map[string]string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Strings and a map of strings always encode.
	_ = enc.Encode(canonicalEvent{
		Actor: e.Actor, At: e.At.UTC().Format(canonicalTime), Data: data, Kind: e.Kind,
		PrevHash: e.PrevHash, RequestID: e.RequestID, Seq: e.Seq,
	})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ComputeHash returns what e's Hash should be: hex SHA-256 of its PrevHash
// (as hex text) followed by its canonical JSON.
func (e *AuditEvent) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(e.CanonicalJSON())
	return hex.EncodeToString(h.Sum(nil))
}

// CheckAuditInput refuses the parts of an audit event that could not be
// stored or hashed faithfully: an empty or non-UTF-8 request id, actor or
// kind, a request id holding ':' or NUL, a data key that is empty, starts
// with '$' or holds '.' or NUL, non-UTF-8 data. A store checks every event
// with it before appending. Its errors never quote the values.
func CheckAuditInput(requestID, actor, kind string, data map[string]string) error {
	switch {
	case requestID == "" || strings.ContainsAny(requestID, ":\x00") || !utf8.ValidString(requestID):
		return errors.New("audit: the request id must be non-empty UTF-8 without ':'")
	case actor == "" || !utf8.ValidString(actor):
		return errors.New("audit: the actor must be non-empty UTF-8")
	case kind == "" || !utf8.ValidString(kind):
		return errors.New("audit: the kind must be non-empty UTF-8")
	}
	for k, v := range data {
		if k == "" || strings.HasPrefix(k, "$") || strings.ContainsAny(k, ".\x00") || !utf8.ValidString(k) {
			return errors.New("audit: a data key must be non-empty UTF-8 without '.', NUL or a leading '$'")
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("audit: data %s is not valid UTF-8", k)
		}
	}
	return nil
}

// ChainCheck is the result of verifying a chain.
type ChainCheck struct {
	OK     bool
	Events int // events checked
	// BrokenAt is the seq of the first event that does not verify (0 when
	// OK), Problem says why: a hash mismatch means the event was edited; a
	// prev_hash mismatch or a seq gap means an event was deleted, inserted
	// or reordered. Problem names fields and seq numbers, never values.
	BrokenAt int
	Problem  string
}

// VerifyChain checks the events of one request, in seq order (as AuditTrail
// returns them). Each event, in turn, must:
//   - have the seq that follows the one before (1 first): else an event
//     was deleted, inserted or reordered;
//   - belong to the same request as the first, with the _id its request id
//     and seq give;
//   - hold valid UTF-8 strings;
//   - carry as prev_hash the hash of the event before ("" for seq 1);
//   - carry the hash its content gives (ComputeHash): else it was edited.
//
// The first event failing a check is reported. An empty chain verifies. A
// chain whose last events were deleted, or that was rewritten with
// recomputed hashes, verifies too: see [AuditEvent].
func VerifyChain(events []AuditEvent) ChainCheck {
	broken := func(at int, format string, args ...any) ChainCheck {
		return ChainCheck{Events: len(events), BrokenAt: at, Problem: fmt.Sprintf(format, args...)}
	}
	prev := ""
	for i := range events {
		e := &events[i]
		want := i + 1 // the seq this position should hold
		switch {
		case e.RequestID != events[0].RequestID:
			return broken(want, "request_id differs from the chain's (event moved between requests)")
		case e.ID != AuditEventID(e.RequestID, e.Seq):
			return broken(want, "_id does not match request_id and seq (event edited or moved)")
		case e.Seq > want:
			return broken(e.Seq, "seq gap: event %d is missing before event %d (deleted, or a later one inserted)", want, e.Seq)
		case e.Seq < want:
			return broken(want, "seq out of order: event %d found where %d was due (reordered or duplicated)", e.Seq, want)
		case !validStrings(e):
			return broken(want, "not valid UTF-8 (event edited)")
		case e.PrevHash != prev:
			if i == 0 {
				return broken(want, "prev_hash of the first event is not empty (edited)")
			}
			return broken(want, "prev_hash does not match the hash of event %d (an event deleted, replaced or reordered)", i)
		case e.Hash != e.ComputeHash():
			return broken(want, "hash mismatch: the event was edited")
		}
		prev = e.Hash
	}
	return ChainCheck{OK: true, Events: len(events)}
}

func validStrings(e *AuditEvent) bool {
	for _, s := range []string{e.RequestID, e.Actor, e.Kind, e.PrevHash} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for k, v := range e.Data {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// HistoryEvent is the audit event that copies history entry i of r into
// its audit chain: its actor ("unknown" when none), kind ("filed" for the
// first entry, "status" after) and data (to, entry, and from and reason
// when set), without sequence, time, ID or hashes, which the store that
// appends it fills in.
func HistoryEvent(r *Request, i int) *AuditEvent {
	h := r.History[i]
	kind := "status"
	if i == 0 {
		kind = "filed"
	}
	data := map[string]string{"to": string(h.To), "entry": strconv.Itoa(i)}
	if h.From != "" {
		data["from"] = string(h.From)
	}
	if h.Reason != "" {
		data["reason"] = h.Reason
	}
	actor := h.Actor
	if actor == "" {
		actor = "unknown"
	}
	return &AuditEvent{RequestID: r.ID, Actor: actor, Kind: kind, Data: data}
}

// ChainOf returns the request id part of an event's id (see AuditEventID): what precedes
// ":<8 digits>", or the whole _id when it has no such suffix.
func ChainOf(id string) string {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return id
	}
	if _, err := strconv.Atoi(id[i+1:]); err != nil {
		return id
	}
	return id[:i]
}

// ChainGrouper hands the events of a scan in event id order to fn chain by
// chain: consecutive events whose ids share their request id part (see
// ChainOf) are one chain, so a driver's EachAuditChain holds one chain in
// memory. An event whose request_id field was changed stays in the chain
// its id puts it in, where VerifyChain reports it.
type ChainGrouper struct {
	fn      func(requestID string, events []AuditEvent) error
	current string
	chain   []AuditEvent
}

// NewChainGrouper returns a ChainGrouper handing each chain to fn.
func NewChainGrouper(fn func(requestID string, events []AuditEvent) error) *ChainGrouper {
	return &ChainGrouper{fn: fn}
}

// Add takes the next event of the scan, first handing the chain before it
// to fn when e starts another; it returns fn's error.
func (g *ChainGrouper) Add(e AuditEvent) error {
	id := ChainOf(e.ID)
	if len(g.chain) > 0 && id != g.current {
		if err := g.fn(g.current, g.chain); err != nil {
			return err
		}
		g.chain = nil
	}
	g.current = id
	g.chain = append(g.chain, e)
	return nil
}

// Flush hands the last chain, if any, to fn once the scan has ended.
func (g *ChainGrouper) Flush() error {
	if len(g.chain) == 0 {
		return nil
	}
	chain := g.chain
	g.chain = nil
	return g.fn(g.current, chain)
}
