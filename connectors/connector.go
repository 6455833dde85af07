// Package connectors defines how dsr reaches the systems that hold a person's
// data: small interfaces a connector implements as far as it can, a registry
// of configured connectors, and the YAML file that configures them.
//
// A connector is any value with a Name. What it can do is found by type
// assertion, as database/sql does with optional driver interfaces:
// [Exporter] (access), [Eraser] (deletion), [OptOuter] (opt-out),
// [Corrector] (correction), [Resolver] (identity resolution before
// fan-out) and [SegmentLister] (the members of the segments an opt-out
// removes people from, for the re-application check). Every action must be
// idempotent: running it twice ends in the same state, and the second run
// reports what it did (usually 0 records).
package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Connector is a configured link to one system that holds personal data.
type Connector interface {
	// Name is unique within a registry; it names the connector in jobs,
	// exports and reports.
	Name() string
}

// Exporter copies a subject's data out of a system.
type Exporter interface {
	// Export writes every record that belongs to s to out, streaming; it
	// never holds all of them in memory. Records reached through a shared
	// document (a segment's member list) carry only the subject's part.
	Export(ctx context.Context, s Subject, out RecordWriter) (Result, error)
}

// Eraser deletes or masks a subject's data.
type Eraser interface {
	// Erase removes what belongs to s. Erasing what is already gone reports
	// 0 records and no error.
	Erase(ctx context.Context, s Subject) (Result, error)
}

// OptOuter stops a subject's data being sold, shared or used for marketing,
// for example by removing them from segments or setting a flag.
type OptOuter interface {
	// OptOut is idempotent: opting out twice reports 0 records the second
	// time.
	OptOut(ctx context.Context, s Subject) (Result, error)
}

// OptInner lifts, in its system, a suppression of that system's own which an
// earlier opt-out or erasure set (Segment's UNSUPPRESS), once the person
// consents again. The fan-out asks it only when no scope the connector
// serves (its data_map scopes) is still suppressed for the person in
// dsar's registry. It never subscribes or re-adds the person to anything:
// a connector whose opt-out unsubscribes or removes from lists does not
// implement it, since consent to be mailed again is the business's own
// opt-in to collect.
type OptInner interface {
	// OptIn is idempotent: lifting what is not suppressed changes nothing.
	OptIn(ctx context.Context, s Subject) (Result, error)
}

// Corrector changes fields of a subject's records to the values a
// correction request asks for (GDPR Art. 16, CPRA right to correct).
type Corrector interface {
	// CorrectFields names the fields the connector can correct: identity
	// kinds (email, phone, customer_id) or names its configuration gives
	// (name, address...). A correction reaches only the connectors that own
	// one of its fields, and each applies only the fields it owns.
	CorrectFields() []string
	// Correct writes s.Corrections to the subject's records, literally (no
	// value is read as an operator or a pattern). It is idempotent:
	// correcting twice changes, and reports, nothing the second time. The
	// values it overwrites are reported only as s.HashValue hashes
	// (CollectionResult.Changes), never returned, logged or put in an
	// error in clear.
	Correct(ctx context.Context, s Subject) (Result, error)
}

// Resolver finds more identifiers of a subject from those already known, e.g.
// a customer id from an email, so that systems keyed by them are reached.
type Resolver interface {
	Resolve(ctx context.Context, s Subject) ([]Identity, error)
}

// SegmentLister is implemented by connectors that can list who is in the
// collections their opt-out removes people from (segments, audiences,
// mailing lists): the collections their opt-out settings name. The
// re-application check lists them to find people who opted out, or asked
// to be deleted, and came back with a later import, sync or segment
// rebuild, and opts them out again.
type SegmentLister interface {
	// EachSegmentMember calls fn for every member of every such
	// collection, segment naming the collection, member holding the
	// member's identities as the system holds them (not normalised), of
	// the kinds its settings match on. A member an opt-out has already
	// dealt with (a document or row whose opt-out fields are set) is not
	// listed. It streams: it holds a batch of members at a time, never
	// all. fn may call the connector's OptOut. An error from fn ends the
	// listing and is returned, wrapped.
	EachSegmentMember(ctx context.Context, fn func(segment string, member Subject) error) error
	// Segments names those collections, as EachSegmentMember and the
	// actions' results name them: what the segmentation report counts
	// removals from.
	Segments() []string
}

// Poller is implemented by connectors whose systems accept an action and
// finish it later (asynchronous APIs: a Salesforce Marketing Cloud contact
// deletion, a Stripe redaction job). Their action returns a Result whose
// Pending is set; the worker then keeps the job waiting and, on the
// schedule Pending asks for, calls Poll with the handle, until Poll returns
// a Result without Pending (done) or the job's wait deadline passes.
type Poller interface {
	// Poll asks how the work named by handle, started by action a, is
	// going. out receives the records of an export that finished (nil for
	// other actions). Errors are treated as the action's: retried, or final
	// when [ErrPermanent].
	Poll(ctx context.Context, a Action, handle string, out RecordWriter) (Result, error)
}

// Answerer is implemented by connectors whose systems, or people, answer
// work they accepted by calling back rather than being polled: a webhook
// receiver's signed callback, a manual task's owner uploading records. The
// answer reaches the waiting job through the store (dsr.Job.Answer, set by
// the store's AnswerJob for the job's exact handle) and the job runs at
// once; the worker then calls Answer instead of Poll. An Answerer that is
// not also a [Poller] is not polled: its job waits, untouched, for an
// answer or its wait deadline.
type Answerer interface {
	// Answer takes up answer, what the outside party sent for the work
	// named by handle, started by action a. It validates answer strictly
	// (it comes from outside): a malformed answer is an [ErrPermanent]
	// error. out receives the records of an export (nil for other
	// actions). A Result with Pending keeps the job waiting (the answer
	// said "not yet"; the answer is then discarded); other errors are
	// retried with the same answer.
	Answer(ctx context.Context, a Action, handle string, answer []byte, out RecordWriter) (Result, error)
}

// CallbackVerifier is implemented by [Answerer] connectors whose systems
// answer by calling dsar back over HTTP (POST /v1/callbacks/{job}). The API
// finds the waiting job, asks its connector to check the call, and stores
// the body as the job's answer only when it passes.
type CallbackVerifier interface {
	// VerifyCallback authenticates a callback (its headers h and body, at
	// time now) for a job of action a, and checks its body as Answer
	// would. It returns the handle the callback answers. It may call the
	// system under ctx (to fetch the key a signature is checked with).
	// Its errors wrap ErrCallbackUnauthenticated (no valid signature, or
	// a timestamp outside the replay window; ErrCallbackForbidden where
	// the system's protocol answers that 403) or ErrCallbackInvalid (a
	// body Answer would refuse), and never quote the body. Other errors
	// (the key could not be fetched) are the service's: the caller is
	// told to try again.
	VerifyCallback(ctx context.Context, a Action, h http.Header, body []byte, now time.Time) (handle string, err error)
}

// The ways a callback is refused (see [CallbackVerifier]).
var (
	ErrCallbackUnauthenticated = errors.New("callback not authenticated")
	// ErrCallbackForbidden is an ErrCallbackUnauthenticated answered 403
	// rather than 401, for protocols that say so (OpenDSR, section 8.8).
	ErrCallbackForbidden = fmt.Errorf("%w (forbidden)", ErrCallbackUnauthenticated)
	ErrCallbackInvalid   = errors.New("callback not valid")
)

// Scoped is implemented by connectors that support an action interface only
// for some configurations (a database connector with no opt-out settings);
// the registry skips them for actions they do not handle.
type Scoped interface {
	Handles(a Action) bool
}

// RecordWriter receives exported records.
type RecordWriter interface {
	// WriteRecord stores one record found in the named collection (table,
	// list...). doc is a plain Go value that encoding/json encodes: a map,
	// a struct, a slice, a scalar, or a json.RawMessage for a connector
	// that renders its records itself (the mongodb type writes relaxed
	// Extended JSON), or a dsr.CompactJSON for one that writes compact
	// JSON itself and keeps that type's promise (the sqldb types), which
	// the store's writers take as it is. The export shows it as JSON. The writer encodes doc
	// before returning and does not keep it, so the connector may reuse
	// it. A connector writes each collection's records together.
	WriteRecord(ctx context.Context, collection string, doc any) error
}

// Action is what a connector is asked to do.
type Action string

// The actions.
const (
	ActionExport  Action = "export"
	ActionErase   Action = "erase"
	ActionOptOut  Action = "opt_out"
	ActionCorrect Action = "correct"
	// ActionOptIn lifts, in a system that keeps a suppression of its
	// own, what an earlier opt-out or erasure set there, once the person
	// consents again to every purpose the connector serves (see
	// [OptInner]).
	ActionOptIn Action = "opt_in"
)

// Identity is one identifier of a subject.
type Identity struct {
	Kind  string // one of IdentityKinds: "email", "customer_id", "phone", "advertising_id", "device_id"
	Value string
	// Source names where a resolved identity came from, "connector/collection".
	Source string
}

// Subject is the person a request is about, by every identifier known.
type Subject struct {
	Identities []Identity
	// Corrections, for a correction, are the changes asked for; nil for
	// every other action.
	Corrections []Correction
	// Hash, when set, is the keyed hash the evidence of a correction uses
	// (see HashValue); the worker sets it from the service's key.
	Hash func(field, value string) string
}

// Correction is one change a correction request asks for: Field (an
// identity kind or a field a [Corrector] owns) is to hold Value.
type Correction struct {
	Field string
	Value string
}

// HashValue is the hash that stands for value of field in a correction's
// evidence: s.Hash when set, else "sha256:" and the hex SHA-256 of field,
// a zero byte and value (a connector tested on its own has no key).
func (s Subject) HashValue(field, value string) string {
	if s.Hash != nil {
		return s.Hash(field, value)
	}
	sum := sha256.Sum256([]byte(field + "\x00" + value))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CorrectionsFor returns the corrections of s whose field is in fields.
func (s Subject) CorrectionsFor(fields []string) []Correction {
	var out []Correction
	for _, c := range s.Corrections {
		if slices.Contains(fields, c.Field) {
			out = append(out, c)
		}
	}
	return out
}

// Values returns the values of one identity kind. An advertising or
// device id that dsar holds in lower case (a UUID, or hex) is given in
// upper case too, right after it: iOS writes its ids in upper case, and
// systems keep them as they came, so an exact match (an indexed column, a
// key) finds the id either way.
func (s Subject) Values(kind string) []string {
	var out []string
	for _, id := range s.Identities {
		if id.Kind != kind {
			continue
		}
		out = append(out, id.Value)
		if (kind == "advertising_id" || kind == "device_id") && strings.ToLower(id.Value) == id.Value {
			if up := strings.ToUpper(id.Value); up != id.Value && !slices.Contains(out, up) {
				out = append(out, up)
			}
		}
	}
	return out
}

// Result is what an action did.
type Result struct {
	// Records is the total over Collections.
	Records     int64
	Collections []CollectionResult
	// Pending, when set, says the system accepted the action and finishes
	// it later: the connector must be a [Poller]. Records and Collections
	// are then ignored.
	Pending *Pending
}

// Pending is an action accepted by a system that finishes it later.
type Pending struct {
	// Handle names the work in the remote system (its job or request id);
	// it is stored with the job and passed to Poll. It must not contain
	// personal data.
	Handle string
	// PollAfter is how long to wait before asking again; 0 means the
	// worker's default (Options.PollEvery). [NoPoll] (or more) means
	// only at the job's wait deadline: for an [Answerer] that waits for
	// a callback.
	PollAfter time.Duration
	// Unanswered, when set, is what the job's error says if its wait
	// deadline passes with the work unfinished ("owner ops@example.com did
	// not answer"), instead of the worker's generic words. It names no
	// data subject.
	Unanswered string
}

// NoPoll, as Pending.PollAfter, says the work is not polled: the job waits
// for an answer (see [Answerer]) until its wait deadline.
const NoPoll = 100 * 365 * 24 * time.Hour

// Add appends one collection's count to r.
func (r *Result) Add(collection, outcome string, n int64) {
	r.Records += n
	r.Collections = append(r.Collections, CollectionResult{Name: collection, Outcome: outcome, Records: n})
}

// Retained appends a collection kept on a legal basis: n records masked, or
// kept whole (outcome "retained").
func (r *Result) Retained(collection, outcome, basis string, n int64) {
	r.Records += n
	r.Collections = append(r.Collections, CollectionResult{Name: collection, Outcome: outcome, Records: n, Basis: basis})
}

// Searched appends the result of a collection that was searched; c says by
// which identity kinds (MatchKinds, KindsKnown).
func (r *Result) Searched(c CollectionResult) {
	r.Records += c.Records
	r.Collections = append(r.Collections, c)
}

// NotSearched appends a collection the subject could not be matched
// against: it is found only by identity kinds (matchKinds) of which the
// subject has none. Such a collection is listed, never counted as 0
// records found.
func (r *Result) NotSearched(collection string, matchKinds []string) {
	r.Collections = append(r.Collections, CollectionResult{Name: collection, Outcome: OutcomeNotSearched,
		MatchKinds: matchKinds, KindsKnown: []string{}, Note: NotSearchedNote(matchKinds)})
}

// OutcomeNotSearched is the outcome of a collection the subject could not be
// matched against (see [Result.NotSearched]).
const OutcomeNotSearched = "not_searched"

// NotSearchedNote says why a collection matched by kinds was not searched:
// "no email known", "no email or phone known".
func NotSearchedNote(kinds []string) string {
	return "no " + strings.Join(kinds, " or ") + " known"
}

// CollectionResult is what an action did in one collection.
type CollectionResult struct {
	Name string
	// Outcome is exported, deleted, masked, pulled, set, corrected,
	// retained (kept whole on a legal basis), or not_searched
	// (OutcomeNotSearched).
	Outcome string
	Records int64
	// Basis is the legal basis the collection is kept on, when an erasure
	// masked or kept it instead of deleting (GDPR Art. 17(3), CCPA
	// 1798.105(d)).
	Basis string
	// MatchKinds are the identity kinds the collection is matched by, and
	// KindsKnown those of them the subject had, so the search used; both
	// sorted. Empty MatchKinds: the connector does not say.
	MatchKinds []string
	KindsKnown []string
	// Note explains an outcome that needs it: for not_searched, which
	// identity was missing ("no email known").
	Note string
	// Changes, for a correction, say per field what was overwritten and
	// with what, as hashes only.
	Changes []FieldChange
}

// FieldChange is the evidence of one field a correction changed in one
// collection: hashes ([Subject.HashValue]) of the distinct values it
// overwrote (sorted; empty when every record held the new value already)
// and of the value it wrote. Never a value in clear. Its stored and JSON
// names are given here, as dsr stores it unchanged.
type FieldChange struct {
	Field string   `bson:"field" json:"field"`
	Old   []string `bson:"old,omitempty" json:"old"`
	New   string   `bson:"new" json:"new"`
}

// MatchKinds returns the identity kinds of match (a field -> kind mapping),
// sorted and without duplicates, and those of them s has.
func MatchKinds(match map[string]string, s Subject) (kinds, known []string) {
	seen := map[string]bool{}
	for _, k := range match {
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	known = []string{}
	for _, k := range kinds {
		if len(s.Values(k)) > 0 {
			known = append(known, k)
		}
	}
	return kinds, known
}

// ErrPermanent marks an error that retrying cannot fix (bad configuration,
// a rejected credential, a schema the connector cannot handle). Wrap it with
// [Permanent]; workers stop retrying such jobs.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// IdentityKinds lists the identity kinds a connector may match on; they are
// the kinds requests carry (dsr.Kinds, which says how each is normalised):
// advertising_id is a resettable advertising id (IDFA, AAID, ...), lower
// case; device_id a vendor- or publisher-scoped device id (ANDROID_ID,
// IDFV, ...).
var IdentityKinds = []string{"email", "customer_id", "phone", "advertising_id", "device_id"}

// ValidKind reports whether k is one of IdentityKinds.
func ValidKind(k string) bool {
	for _, x := range IdentityKinds {
		if k == x {
			return true
		}
	}
	return false
}

// correctFieldPattern is the form of a named field a correction may change.
var correctFieldPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ValidCorrectField reports whether field can name what a correction
// changes: an identity kind, or 1 to 63 of a-z, 0-9 and _, starting with a
// letter.
func ValidCorrectField(field string) bool {
	return ValidKind(field) || correctFieldPattern.MatchString(field)
}
