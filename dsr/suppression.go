package dsr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Scope is a use of a person's data that they can refuse, and that a
// suppression keeps them out of: connectors' own vocabulary
// ([connectors.Scope]: a connector's data map declares the scopes it
// serves), defined there once. The preference centre calls scopes
// purposes, and shows them by [Scope.Purpose].
type Scope = connectors.Scope

// The scopes. ScopeAll is what a deletion suppresses: every use.
const (
	ScopeSaleShare = connectors.ScopeSaleShare // sale, or sharing for cross-context behavioural advertising
	ScopeMarketing = connectors.ScopeMarketing // direct marketing: emails, messages, calls
	ScopeProfiling = connectors.ScopeProfiling // personalisation and segmentation
	ScopeAll       = connectors.ScopeAll       // every use: the person asked to be deleted
)

// Scopes lists every scope; Purposes those a person chooses one by one
// (every scope but ScopeAll).
var (
	Scopes   = connectors.Scopes
	Purposes = []Scope{ScopeMarketing, ScopeProfiling, ScopeSaleShare}
)

// ParseScopes checks a list of scope names: each valid, none twice.
func ParseScopes(names []string) ([]Scope, error) {
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		s := Scope(n)
		if !s.Valid() {
			return nil, fmt.Errorf("unknown scope %q: want one of %s", n, scopeNames())
		}
		if slices.Contains(out, s) {
			return nil, fmt.Errorf("scope %q given twice", n)
		}
		out = append(out, s)
	}
	return out, nil
}

func scopeNames() string {
	names := make([]string, len(Scopes))
	for i, s := range Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// DefaultOptOutScopes are the scopes an opt-out request suppresses when it
// names none: every purpose. An opt-out that came with a Global Privacy
// Control signal and names none is the signal's meaning only: sale and
// sharing (CCPA 1798.135, Colorado, Connecticut and the other states
// that honour it).
func DefaultOptOutScopes(gpc bool) []Scope {
	if gpc {
		return []Scope{ScopeSaleShare}
	}
	return slices.Clone(Purposes)
}

// ConsentSource is where a consent event, or a suppression, came from.
type ConsentSource string

// The consent sources.
const (
	ConsentPortal   ConsentSource = "portal"   // the person, through the privacy portal or its preference centre
	ConsentAgent    ConsentSource = "agent"    // a support agent, on the person's word
	ConsentGPC      ConsentSource = "gpc"      // a Global Privacy Control signal
	ConsentProtocol ConsentSource = "protocol" // an authorised agent or controller by a privacy protocol (DRP, OpenDSR)
	ConsentAPI      ConsentSource = "api"      // another system, through the API
	ConsentImport   ConsentSource = "import"   // a partner's suppression list
	ConsentAdmin    ConsentSource = "admin"    // an admin lifting a deletion's suppression
)

// ConsentSources lists every consent source.
var ConsentSources = []ConsentSource{ConsentPortal, ConsentAgent, ConsentGPC, ConsentProtocol, ConsentAPI, ConsentImport, ConsentAdmin}

// Valid reports whether c is one of ConsentSources.
func (c ConsentSource) Valid() bool { return slices.Contains(ConsentSources, c) }

// Suppression is one entry of the suppression list: the person known by
// Hash is kept out of Scope. There is one entry per hash and scope; lifting
// it keeps it, lifted, as evidence, and suppressing again makes it active.
// It holds no identity in clear.
type Suppression struct {
	// ID is Hash, "|" and Scope (SuppressionID): one entry per identity and
	// scope.
	ID string `bson:"_id"`
	// Hash is the identity's suppression hash ([SuppressionKey.Hash]).
	Hash  string `bson:"hash"`
	Scope Scope  `bson:"scope"`
	// Source, RequestID and Partner say where the (latest) suppression
	// came from: a request, or a partner's list imported.
	Source    ConsentSource `bson:"source"`
	RequestID string        `bson:"request_id,omitempty"`
	Partner   string        `bson:"partner,omitempty"`
	// At is when the entry became active (again).
	At time.Time `bson:"at"`
	// LiftedAt, LiftedBy and LiftReason are set while the entry is lifted:
	// the person opted in again, or an admin lifted a deletion's.
	LiftedAt   *time.Time `bson:"lifted_at,omitempty"`
	LiftedBy   string     `bson:"lifted_by,omitempty"`
	LiftReason string     `bson:"lift_reason,omitempty"`
	// UpdatedAt is the store's time of the entry's last change: the order
	// of the change feed that keeps checkers fresh.
	UpdatedAt time.Time `bson:"updated_at"`
}

// Active reports whether the entry suppresses (it is not lifted).
func (s *Suppression) Active() bool { return s.LiftedAt == nil }

// SuppressionID is the ID of the entry of hash under scope.
func SuppressionID(hash string, scope Scope) string { return hash + "|" + string(scope) }

// ConsentKind is what a consent event records.
type ConsentKind string

// The consent event kinds.
const (
	ConsentOptOut   ConsentKind = "opt_out"  // the person refused Scopes
	ConsentOptIn    ConsentKind = "opt_in"   // the person consented to Scopes again
	ConsentGPCSeen  ConsentKind = "gpc"      // a Global Privacy Control signal came with a request
	ConsentDeletion ConsentKind = "deletion" // a deletion suppressed every use
	ConsentLifted   ConsentKind = "lifted"   // an admin lifted a deletion's suppression, with Reason
	ConsentImported ConsentKind = "imported" // a partner's list suppressed Scopes
)

// ConsentEvent is one entry of a person's consent history: what GDPR
// Art. 7(1) asks a controller to be able to show. Events are only ever
// added. It holds no identity in clear.
type ConsentEvent struct {
	// ID is chosen by the writer so that writing an event twice (a worker
	// retried) stores it once: "<request id>:<kind>" for one a request
	// makes, a new UUID otherwise.
	ID string `bson:"_id"`
	// Hashes are the suppression hashes of the identities it concerns.
	Hashes []string      `bson:"hashes"`
	Kind   ConsentKind   `bson:"kind"`
	Scopes []Scope       `bson:"scopes"`
	Source ConsentSource `bson:"source"`
	// RequestID is the request it came with, if any.
	RequestID string `bson:"request_id,omitempty"`
	// Actor names who recorded it: "subject", an API key's name, "worker";
	// never the person.
	Actor string `bson:"actor"`
	// Reason is an admin's reason for lifting.
	Reason string    `bson:"reason,omitempty"`
	At     time.Time `bson:"at"`
}

// Removal is one person removed from one segment-holding collection under
// a suppression: by an opt-out or deletion job, or again by the
// re-application check when they came back. The segmentation report counts
// them. It holds no identity.
type Removal struct {
	ID         string `bson:"_id"`
	Connector  string `bson:"connector"`
	Collection string `bson:"collection"`
	// Scope is the scope that removed them (for a deletion, ScopeAll).
	Scope Scope `bson:"scope"`
	// Records is how many records the removal changed.
	Records int64 `bson:"records"`
	// Reappeared says the person had come back and the re-application
	// check removed them again.
	Reappeared bool      `bson:"reappeared,omitempty"`
	RequestID  string    `bson:"request_id,omitempty"`
	At         time.Time `bson:"at"`
}

// SuppressionKey is the key of suppression hashes: a key of its own,
// derived from the blind index's, so that it can be given to the
// segmentation pipelines and partners that hash their lists before a check
// or an exchange without giving them the blind index (which finds
// requests). See [BlindIndex.SuppressionKey].
type SuppressionKey [32]byte

// SuppressionKey derives the suppression key from b's oldest key (the last
// previous one, else the current): pipelines hold it, so it must not change
// with the blind index key; or the key pinned ([BlindIndex.PinSuppressionKey]),
// which it must be before the oldest key leaves.
func (b *BlindIndex) SuppressionKey() SuppressionKey {
	if b.suppression != nil {
		return *b.suppression
	}
	return DeriveSuppressionKey(b.Oldest())
}

// PinSuppressionKey makes k b's suppression key, whatever its keys: the
// key pinned in DSAR_SUPPRESSION_KEY.
func (b *BlindIndex) PinSuppressionKey(k SuppressionKey) {
	b.suppression = &k
}

// Oldest returns b's oldest key: the last previous one, else the current.
func (b *BlindIndex) Oldest() []byte {
	if n := len(b.previous); n > 0 {
		return b.previous[n-1]
	}
	return b.key
}

// DeriveSuppressionKey returns the suppression key derived from a blind
// index key.
func DeriveSuppressionKey(indexKey []byte) SuppressionKey {
	var k SuppressionKey
	copy(k[:], Derive(indexKey, "dsar suppression key v1"))
	return k
}

// Hash returns the suppression hash of a normalised identity:
// "kind:" and the hex HMAC-SHA256, under k, of kind, a zero byte and
// value. A pipeline given k computes the same.
func (k SuppressionKey) Hash(kind Kind, value string) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return string(kind) + ":" + hex.EncodeToString(m.Sum(nil))
}

// HashAll returns the distinct suppression hashes of ids, in their order.
func (k SuppressionKey) HashAll(ids []Identity) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if h := k.Hash(id.Kind, id.Value); !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// ValidSuppressionHash reports whether h has the form of a suppression
// hash: a known kind, a colon and 64 lower-case hex digits.
func ValidSuppressionHash(h string) bool {
	kind, hexPart, ok := strings.Cut(h, ":")
	if !ok || !Kind(kind).Valid() || len(hexPart) != 64 {
		return false
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
