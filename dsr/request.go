package dsr

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the kind of right a person exercises.
type Type string

// The request types.
const (
	TypeAccess   Type = "access"   // GDPR Art. 15, CCPA right to know
	TypeDeletion Type = "deletion" // GDPR Art. 17, CCPA right to delete
	TypeOptOut   Type = "opt_out"  // GDPR Art. 21, CCPA opt-out of sale/sharing
	// TypeCorrection carries the changes the person asks for (GDPR Art.
	// 16, CPRA right to correct); it always waits for an agent's approval.
	TypeCorrection Type = "correction"
	// TypeOptIn records that a person consented again to purposes an
	// opt-out or a deletion had refused (its Scopes), so that the systems
	// that keep a suppression of their own lift it too (Segment's
	// UNSUPPRESS). The service files it itself, when a lift names the
	// person's identities (an opt-in or an admin's lift); intake refuses
	// it.
	TypeOptIn Type = "opt_in"
)

// Types lists every request type in a stable order.
var Types = []Type{TypeAccess, TypeDeletion, TypeOptOut, TypeCorrection, TypeOptIn}

// FiledTypes lists, in a stable order, the request types a person, an
// agent or another system files through intake: every type but
// TypeOptIn, which the service files itself.
var FiledTypes = []Type{TypeAccess, TypeDeletion, TypeOptOut, TypeCorrection}

// Valid reports whether t is a known request type.
func (t Type) Valid() bool {
	return slices.Contains(Types, t)
}

// Action is what a connector does for a request type.
func (t Type) Action() Action {
	switch t {
	case TypeAccess:
		return ActionExport
	case TypeDeletion:
		return ActionErase
	case TypeOptOut:
		return ActionOptOut
	case TypeCorrection:
		return ActionCorrect
	case TypeOptIn:
		return ActionOptIn
	}
	return ""
}

// Action is the work a connector job performs: connectors' own vocabulary
// ([connectors.Action]), defined there once.
type Action = connectors.Action

// The job actions, those of package connectors.
const (
	ActionExport  = connectors.ActionExport
	ActionErase   = connectors.ActionErase
	ActionOptOut  = connectors.ActionOptOut
	ActionCorrect = connectors.ActionCorrect
	ActionOptIn   = connectors.ActionOptIn
)

// Request is one data subject rights request. It is stored as one document;
// jobs live in their own documents (see [Job]).
type Request struct {
	ID         string     `bson:"_id"`
	Type       Type       `bson:"type"`
	Regulation Regulation `bson:"regulation"`
	Status     Status     `bson:"status"`
	// Source is how the request reached the service, e.g. "agent_api".
	Source string `bson:"source"`
	// FiledBy names the API key or person that filed it; never the subject.
	FiledBy string `bson:"filed_by"`
	// Identities are the subject's identifiers: those given at intake
	// (Source "subject") and those found by identity resolution.
	Identities []Identity `bson:"identities"`
	// IdentityHashes is the blind index of Identities ("kind:hmac"), the only
	// field used to find requests by identity.
	IdentityHashes []string `bson:"identity_hashes"`
	// ProvenHashes is the blind index of the identities the request stands
	// on: those the person proved (the email a portal code went to), an
	// agent attested, or, for an opt-out (which needs no proof), gave.
	// Never those resolved from customer data or merely claimed. Empty
	// until proven. Requests are merged and found duplicate by these only:
	// finding one by an identity it resolved would hand it to whoever
	// proves that identity.
	ProvenHashes []string  `bson:"proven_hashes,omitempty"`
	ReceivedAt   time.Time `bson:"received_at"`
	DueAt        time.Time `bson:"due_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
	// ResolveBoundReached, when not 0, is the number of rounds after which
	// identity resolution stopped (DSAR_RESOLVE_MAX_ROUNDS) although its
	// last round still found new identities: systems keyed by identities
	// not yet found may hold more of the person's data.
	ResolveBoundReached int `bson:"resolve_bound_reached,omitempty"`
	// FannedOutAt is set once every job of the request exists and has been
	// handed to the queue; until then the sweep keeps re-driving the fan-out.
	FannedOutAt *time.Time `bson:"fanned_out_at,omitempty"`
	// FanoutFailures counts the fan-out's failed attempts (identity
	// resolution, creating or queuing the jobs), however they were run;
	// FanoutError is the last one's error, safe to show (it names no
	// person), cleared once the fan-out succeeds. An agent's retry starts
	// the count afresh.
	FanoutFailures int `bson:"fanout_failures,omitempty"`
	// HookHold is the pre-fan-out hook's hold on the request, when it held
	// it (see [HookHold]); an agent's retry clears it.
	HookHold *HookHold `bson:"hook_hold,omitempty"`
	// OutcomeHook says the request owes the post-processing hook its
	// outcome each time it reaches completed or needs_attention (see
	// [NoticeHookOutcome]); set by the fan-out when a hook is configured.
	OutcomeHook bool       `bson:"outcome_hook,omitempty"`
	FanoutError string     `bson:"fanout_error,omitempty"`
	ClosedAt    *time.Time `bson:"closed_at,omitempty"`
	// DenialBasis is why a denied request was denied.
	DenialBasis DenialBasis `bson:"denial_basis,omitempty"`
	// DRP, for a request an authorised agent filed through the Data
	// Rights Protocol, is what the protocol needs of it.
	DRP *DRPLink `bson:"drp,omitempty"`
	// OpenDSR, for a request a controller passed by OpenDSR, is what the
	// protocol needs of it.
	OpenDSR *OpenDSRLink `bson:"opendsr,omitempty"`
	// StatusCallbacks says the request owes the party that passed it by a
	// protocol its status on every change (NoticeProtocolStatus): set at
	// filing when DRP or OpenDSR names a callback.
	StatusCallbacks bool `bson:"status_callbacks,omitempty"`
	// History records every status change, oldest first.
	History []Transition `bson:"history"`
	// Audited counts the history entries copied into the audit chain;
	// AuditDue is set, in the same update, by every change that adds one,
	// and cleared once the chain has caught up (the sweep finishes what a
	// crash left).
	Audited  int  `bson:"audited"`
	AuditDue bool `bson:"audit_due,omitempty"`

	// Notify says whether the subject is told by email of the request's
	// progress (receipt, verification, completion, denial).
	Notify bool `bson:"notify,omitempty"`
	// PendingNotices lists the notices due to the subject and not yet sent
	// (NoticeReceipt...). A notice is added in the same update as the change
	// that makes it due, and removed once sent, so none is lost.
	PendingNotices []string `bson:"pending_notices,omitempty"`
	// StatusTokens are the SHA-256 hashes of the secrets that let the
	// subject follow the request from the portal.
	StatusTokens []string `bson:"status_tokens,omitempty"`
	// Verification is the identity check in progress, for requests that
	// need one.
	Verification *Verification `bson:"verification,omitempty"`
	// GPC records that the request came with a Global Privacy Control
	// signal (Sec-GPC: 1).
	GPC bool `bson:"gpc,omitempty"`
	// Scopes, for an opt-out, are the uses the person refuses: those the
	// intake named, else DefaultOptOutScopes(GPC). The fan-out suppresses
	// the person's identities under them and asks only the connectors that
	// serve one of them (connectors.Serves). Never ScopeAll; empty for
	// other types (a deletion suppresses ScopeAll).
	Scopes []Scope `bson:"scopes,omitempty"`
	// Agent is the authorised agent who filed for the subject, if any.
	Agent *Agent `bson:"agent,omitempty"`
	// LinkedTo names a request filed together with this one (the opt-out a
	// GPC signal added to an access request).
	LinkedTo string `bson:"linked_to,omitempty"`
	// PurgedAt is when the subject's identities were removed from the
	// request (it never got verified, or its retention ran out); the blind
	// index and the history stay as evidence.
	PurgedAt *time.Time `bson:"purged_at,omitempty"`

	// Channel is how the request reached the business when an agent files
	// it (phone, email, chat, letter...); Note is the agent's note.
	Channel string `bson:"channel,omitempty"`
	Note    string `bson:"note,omitempty"`
	// VerificationMethod says how the identity was verified.
	VerificationMethod string `bson:"verification_method,omitempty"`
	// DuplicateOf names the open request this one duplicates (status
	// duplicate); UnlinkTo is the status it takes if an agent unlinks it.
	DuplicateOf string `bson:"duplicate_of,omitempty"`
	UnlinkTo    Status `bson:"unlink_to,omitempty"`
	// AssignedTo names the agent (API key) the request is assigned to.
	AssignedTo string `bson:"assigned_to,omitempty"`
	// ApprovedBy names who approved the request, where the policy wants
	// approval before processing.
	ApprovedBy string `bson:"approved_by,omitempty"`
	// Extension is the one extension of the deadline the regulation allows.
	Extension *Extension `bson:"extension,omitempty"`
	// Exceptions are the systems or collections kept on a legal basis
	// instead of being erased (GDPR Art. 17(3), CCPA 1798.105(d)).
	Exceptions []Exception `bson:"exceptions,omitempty"`

	// ReceiptDueAt is when receipt must be confirmed, where the rule says
	// (CCPA: 10 business days).
	ReceiptDueAt *time.Time `bson:"receipt_due_at,omitempty"`
	// Reminded lists the reminders sent (days before the due date);
	// OverdueAt is when the request was found overdue and escalated.
	Reminded  []int      `bson:"reminded,omitempty"`
	OverdueAt *time.Time `bson:"overdue_at,omitempty"`
	// ExportsPurgedAt is when the exported data was deleted after the
	// retention period.
	ExportsPurgedAt *time.Time `bson:"exports_purged_at,omitempty"`
	// PausedAt is set while the clock is paused; Pauses records every
	// pause. A pause moves the due date by its length when it ends.
	PausedAt *time.Time `bson:"paused_at,omitempty"`
	Pauses   []Pause    `bson:"pauses,omitempty"`
	// AppealOf names the denied request this one appeals; AppealedBy, on
	// the denied request, names its appeal.
	AppealOf   string `bson:"appeal_of,omitempty"`
	AppealedBy string `bson:"appealed_by,omitempty"`

	// Corrections are the changes a correction request asks for, as
	// evidence: each field with the keyed hash of its new value, kept for
	// good. NewValues holds the new values in clear by field, only until
	// the identities are purged (with them).
	Corrections []Correction      `bson:"corrections,omitempty"`
	NewValues   map[string]string `bson:"new_values,omitempty"`

	// DataKey and ExportKey are the request's data keys, wrapped under a
	// master key ("keyid:ciphertext", see internal/envelope), when its
	// personal fields are sealed at rest (store/sealedstore): DataKey
	// seals the identities, the agent, the note, the new values and its
	// jobs' identities and answers; ExportKey seals its exports. Purging
	// the identities removes DataKey, purging the exports ExportKey, which
	// makes every copy of what they sealed unreadable (backups included).
	// Empty on a request stored in clear.
	DataKey   string `bson:"data_key,omitempty" json:"-"`
	ExportKey string `bson:"export_key,omitempty" json:"-"`
}

// FieldValue is one change a correction request asks for: Field (an
// identity kind, or a field a connector owns) is to hold Value.
type FieldValue struct {
	Field string
	Value string
}

// Correction is the evidence of one change a correction request asks for:
// its field and the keyed hash of its new value ([BlindIndex.HashValue]),
// which whoever holds the key can check a claimed value against.
type Correction struct {
	Field string `bson:"field" json:"field"`
	Hash  string `bson:"hash" json:"hash"`
}

// CorrectionValues returns the changes r asks for, in the order given;
// nil when r asks for none or its new values are gone (purged).
func (r *Request) CorrectionValues() []FieldValue {
	out := make([]FieldValue, 0, len(r.Corrections))
	for _, c := range r.Corrections {
		v, ok := r.NewValues[c.Field]
		if !ok || v == "" {
			return nil
		}
		out = append(out, FieldValue{Field: c.Field, Value: v})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// MaxCorrections bounds the changes one correction request carries, and
// MaxCorrectionValue the length of a new value, in characters.
const (
	MaxCorrections     = 20
	MaxCorrectionValue = 1000
)

// CorrectionSubject is the subject a correction job acts on: the
// identities ids, the changes cs.
func CorrectionSubject(ids []Identity, cs []FieldValue) connectors.Subject {
	s := SubjectOf(ids)
	for _, c := range cs {
		s.Corrections = append(s.Corrections, connectors.Correction{Field: c.Field, Value: c.Value})
	}
	return s
}

// Pause is a stop of the clock while the business waits for the person.
type Pause struct {
	By        string     `bson:"by" json:"by"`
	At        time.Time  `bson:"at" json:"at"`
	Reason    string     `bson:"reason" json:"reason"`
	ResumedAt *time.Time `bson:"resumed_at,omitempty" json:"resumed_at,omitempty"`
}

// Extension records the extension of a request's deadline.
type Extension struct {
	By     string    `bson:"by"`
	At     time.Time `bson:"at"`
	Reason string    `bson:"reason"`
	// From is the due date before the extension.
	From time.Time `bson:"from"`
}

// Exception is data kept on a legal basis instead of being erased.
type Exception struct {
	Connector  string `bson:"connector" json:"connector"`
	Collection string `bson:"collection,omitempty" json:"collection,omitempty"`
	Basis      string `bson:"basis" json:"basis"`
}

// Agent is an authorised agent acting for the subject (CCPA 11 CCR 7063).
type Agent struct {
	Name  string `bson:"name"`
	Email string `bson:"email"`
	// SignedPermission records the agent's declaration that the subject
	// gave signed permission.
	SignedPermission bool `bson:"signed_permission"`
}

// Transition is one recorded status change.
type Transition struct {
	From   Status    `bson:"from"`
	To     Status    `bson:"to"`
	At     time.Time `bson:"at"`
	Actor  string    `bson:"actor"`
	Reason string    `bson:"reason,omitempty"`
}

// NewRequestID returns a new request id: a lower-case UUID version 7, so ids
// sort by creation time.
func NewRequestID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new request id: %w", err)
	}
	return id.String(), nil
}

// ValidID reports whether s has the form of a request id.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.String() == s
}

// Intake is what a new request is made from.
type Intake struct {
	// ID, when set, is the id to store the request under (an id an
	// idempotency key reserved); empty means a new one.
	ID         string
	Type       Type
	Regulation Regulation
	Source     string
	FiledBy    string
	// Status is the starting status: StatusVerified for requests whose
	// identity the filer vouches for.
	Status     Status
	Identities []Identity // normalised, see Normalize
	ReceivedAt time.Time
	// Notify, Notices, StatusToken (its hash), GPC, Agent and LinkedTo are
	// copied to the request; see Request.
	Notify      bool
	Notices     []string
	StatusToken string
	GPC         bool
	Agent       *Agent
	LinkedTo    string
	// Scopes, for an opt-out only, are the uses it refuses (each one of
	// Purposes, none twice); empty: DefaultOptOutScopes(GPC). NewRequest
	// refuses them on any other type.
	Scopes []Scope
	// DuplicateOf, when set, files the request as a duplicate of that one:
	// its Status is kept as UnlinkTo and it starts StatusDuplicate.
	DuplicateOf string
	// Calendar counts business days for the due date (zero: weekends only).
	Calendar Calendar
	// Channel, Note and VerificationMethod are copied to the request.
	Channel            string
	Note               string
	VerificationMethod string
	// Corrections, for a correction, are what it asks for: NewRequest
	// keeps their hashes (Request.Corrections) and values (NewValues).
	Corrections []FieldValue
	// DRP is copied to the request; with a callback, its first status
	// is due at once (NoticeProtocolStatus).
	DRP *DRPLink
	// OpenDSR is copied to the request.
	OpenDSR *OpenDSRLink
}

// NewRequest builds a request from an intake, computing its due date and its
// blind index. It does not store it.
func NewRequest(in Intake, idx *BlindIndex) (*Request, error) {
	id := in.ID
	if id == "" {
		var err error
		if id, err = NewRequestID(); err != nil {
			return nil, err
		}
	}
	scopes, err := in.CheckScopes()
	if err != nil {
		return nil, err
	}
	at := in.ReceivedAt.UTC().Truncate(time.Millisecond)
	r := &Request{
		Scopes:     scopes,
		ID:         id,
		Type:       in.Type,
		Regulation: in.Regulation,
		Status:     in.Status,
		Source:     in.Source,
		FiledBy:    in.FiledBy,
		Identities: in.Identities,
		ReceivedAt: at,
		DueAt:      in.Calendar.Due(in.Regulation, in.Type, at),
		UpdatedAt:  at,
		History:    []Transition{{To: in.Status, At: at, Actor: in.FiledBy, Reason: "filed"}},
		AuditDue:   true,
		Notify:     in.Notify,
		GPC:        in.GPC,
		Agent:      in.Agent,
		LinkedTo:   in.LinkedTo,
		Channel:    in.Channel,
		Note:       in.Note,
		DRP:        in.DRP,
		OpenDSR:    in.OpenDSR,

		VerificationMethod: in.VerificationMethod,
	}
	for _, c := range in.Corrections {
		r.Corrections = append(r.Corrections, Correction{Field: c.Field, Hash: idx.HashValue(c.Field, c.Value)})
		if r.NewValues == nil {
			r.NewValues = map[string]string{}
		}
		r.NewValues[c.Field] = c.Value
	}
	if rule := RuleFor(in.Regulation, in.Type); rule.Receipt.N > 0 {
		d := in.Calendar.Add(at, rule.Receipt)
		r.ReceiptDueAt = &d
	}
	r.PendingNotices = append(r.PendingNotices, in.Notices...)
	if in.DuplicateOf != "" {
		// Nothing is sent or run until an agent unlinks it.
		r.DuplicateOf, r.UnlinkTo, r.Status, r.PendingNotices = in.DuplicateOf, in.Status, StatusDuplicate, nil
		r.History[0].To = StatusDuplicate
		r.History[0].Reason = "filed; duplicate of " + in.DuplicateOf
	}
	if (in.DRP != nil && in.DRP.Callback != "") || (in.OpenDSR != nil && len(in.OpenDSR.Callbacks) > 0) {
		r.StatusCallbacks = true
		r.PendingNotices = append(r.PendingNotices, NoticeProtocolStatus)
	}
	if in.StatusToken != "" {
		r.StatusTokens = []string{HashToken(in.StatusToken)}
	}
	r.IdentityHashes = idx.HashAll(r.Identities)
	if in.Status == StatusVerified {
		// Vouched for at intake: attested by the filing agent, or an
		// opt-out, which needs no proof.
		r.ProvenHashes = idx.HashAll(Given(r.Identities))
	}
	return r, nil
}

// SuppressedScopes are the scopes r suppresses its person's identities
// under: a deletion's ScopeAll, an opt-out's Scopes (or, for one stored
// before requests kept them, DefaultOptOutScopes(GPC)); none for other
// types.
func (r *Request) SuppressedScopes() []Scope {
	switch {
	case r.Type == TypeDeletion:
		return []Scope{ScopeAll}
	case r.Type != TypeOptOut:
		return nil
	case len(r.Scopes) > 0:
		return slices.Clone(r.Scopes)
	}
	return DefaultOptOutScopes(r.GPC)
}

// CheckScopes checks the scopes of in and returns those its request
// stores: for an opt-out, those given (each one of Purposes, none twice) or
// DefaultOptOutScopes(in.GPC); for an opt-in, those lifted (required, each
// one of Scopes, none twice); for any other type, none. What is wrong is
// a *ValidationError naming "scopes" or "scopes[i]". NewRequest calls it;
// an intake policy calls it to report every problem at once.
func (in Intake) CheckScopes() ([]Scope, error) {
	var ve ValidationError
	if in.Type == TypeOptIn {
		return in.checkLiftedScopes()
	}
	if in.Type != TypeOptOut {
		if len(in.Scopes) > 0 {
			ve.Add("scopes", "only an opt_out names scopes: a deletion suppresses every use, and other types suppress none")
		}
		return nil, ve.Err()
	}
	if len(in.Scopes) == 0 {
		return DefaultOptOutScopes(in.GPC), nil
	}
	for i, s := range in.Scopes {
		switch {
		case s == ScopeAll:
			ve.Add(fmt.Sprintf("scopes[%d]", i), "%q is not a use one opts out of: to stop every use, file a deletion; to refuse every purpose, name %s or none", s, scopeList(Purposes))
		case !s.Valid():
			ve.Add(fmt.Sprintf("scopes[%d]", i), "unknown scope: want one of %s", scopeList(Purposes))
		case slices.Contains(in.Scopes[:i], s):
			ve.Add(fmt.Sprintf("scopes[%d]", i), "%q given twice", s)
		}
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(in.Scopes), nil
}

// checkLiftedScopes checks an opt-in's scopes: the scopes lifted, at least
// one, each one of Scopes (ScopeAll when an admin lifted a deletion's),
// none twice.
func (in Intake) checkLiftedScopes() ([]Scope, error) {
	var ve ValidationError
	if len(in.Scopes) == 0 {
		ve.Add("scopes", "required: the scopes lifted, of %s", scopeList(Scopes))
	}
	for i, s := range in.Scopes {
		switch {
		case !s.Valid():
			ve.Add(fmt.Sprintf("scopes[%d]", i), "unknown scope: want one of %s", scopeList(Scopes))
		case slices.Contains(in.Scopes[:i], s):
			ve.Add(fmt.Sprintf("scopes[%d]", i), "%q given twice", s)
		}
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(in.Scopes), nil
}

func scopeList(ss []Scope) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Job is the work of one connector for one request: one document per
// (request, connector, action), keyed by [JobID].
type Job struct {
	ID        string    `bson:"_id"`
	RequestID string    `bson:"request_id"`
	Connector string    `bson:"connector"`
	Action    Action    `bson:"action"`
	Status    JobStatus `bson:"status"`
	// Identities are the request's identities when it was fanned out, so
	// that running the job reads no request: the actionable ones are acted
	// on, all are kept out of errors. They are purged with the request's
	// (the store's PurgeIdentities). A job made before jobs carried them has none.
	Identities []Identity `bson:"identities,omitempty" json:"-"`
	// Attempts counts claims; a claim's attempt number fences its writes.
	Attempts int `bson:"attempts"`
	// Records counts what the action touched: exported, erased, masked or
	// opted out.
	Records     int64              `bson:"records"`
	Collections []CollectionResult `bson:"collections,omitempty"`
	Error       string             `bson:"error,omitempty"`
	LeaseUntil  *time.Time         `bson:"lease_until,omitempty"`
	// Handle names the work a remote system accepted and finishes later
	// (connectors.Pending); set, the job's next run polls it instead of
	// starting the action again.
	Handle string `bson:"handle,omitempty"`
	// PollAt is when a waiting job is polled next, and WaitUntil when it
	// stops waiting and fails (the workers' WaitMax after the system
	// accepted the work).
	PollAt    *time.Time `bson:"poll_at,omitempty"`
	WaitUntil *time.Time `bson:"wait_until,omitempty"`
	// Waits counts the attempts that ended waiting, or that the system
	// deferred (Outcome.Deferred); the attempts that failed are Attempts
	// less Waits.
	Waits int `bson:"waits,omitempty"`
	// WaitedFailures is the count of failed attempts (Attempts less Waits)
	// when the job last began to wait: the system answered then, so a retry
	// limit counts only the failures since (Failures), not those of the
	// job's whole wait, which may be weeks of polls.
	WaitedFailures int `bson:"waited_failures,omitempty"`
	// Answer is what an outside party sent for the work the job waits on
	// (a webhook receiver's signed callback, a manual task's upload):
	// set by the store's AnswerJob only while the job waits on that
	// Handle, at most MaxAnswer bytes. The job's next run hands it to its
	// connector (connectors.Answerer) instead of polling. It may hold
	// personal data: it is cleared when the job ends, waits again or is
	// retried by an agent, and by PurgeIdentities.
	Answer []byte `bson:"answer,omitempty" json:"-"`
	// AnsweredAt is when Answer was stored.
	AnsweredAt *time.Time `bson:"answered_at,omitempty" json:"-"`
	// Recorded counts the attempts whose outcome was written (a failure,
	// a wait or the end); an attempt killed after it claimed the job
	// (worker died, lease taken over) is in Attempts but not in Recorded.
	Recorded int `bson:"recorded,omitempty"`
	// RecordsIncomplete says Records may be short of what the job
	// changed: an earlier attempt of an erase or opt-out started the
	// action and was killed before recording what it did, so what it
	// changed is unknown and a later attempt finds it done already. It is
	// never cleared: an agent's retry keeps it.
	RecordsIncomplete bool `bson:"records_incomplete,omitempty"`
	// Retries counts an agent's retries of the job (the store's
	// RetryFailedJobs). A connector that names the work it hands a system
	// after the job (the opendsr type's subject_request_id) names it anew
	// after a retry, and as before when an attempt is sent again after a
	// crash.
	Retries int `bson:"retries,omitempty"`
	// DataMap is what the connector's entry declared of its system under
	// data_map when an export job finished (nil: nothing declared, or a job
	// finished before jobs kept it): what the access package tells the
	// person of that system (GDPR Art. 15(1)), as it stood when their data
	// was gathered.
	DataMap    *DataMap   `bson:"data_map,omitempty"`
	CreatedAt  time.Time  `bson:"created_at"`
	UpdatedAt  time.Time  `bson:"updated_at"`
	FinishedAt *time.Time `bson:"finished_at,omitempty"`
}

// Failures counts the attempts that failed since the job last began to
// wait on its system (all of them when it never waited): attempts killed
// before they recorded anything included, deferred ones not.
func (j *Job) Failures() int { return j.Attempts - j.Waits - j.WaitedFailures }

// CollectionResult is what an action did in one collection (table,
// list...), as a job stores it and the API shows it. It holds the fields of
// [connectors.CollectionResult], in the same order, so that one converts
// to the other ([CollectionResultOf]; a field added to one and not the
// other fails to compile), and adds their stored and JSON names: connectors
// know nothing of either.
type CollectionResult struct {
	Name string `bson:"name" json:"name"`
	// Outcome says what happened to the records: exported, deleted, masked,
	// pulled, set, retained (kept whole on a legal basis), or
	// OutcomeNotSearched.
	Outcome string `bson:"outcome" json:"outcome"`
	Records int64  `bson:"records" json:"records"`
	// Basis is the legal basis of a collection kept, or only masked, under
	// a legal hold.
	Basis string `bson:"basis,omitempty" json:"basis,omitempty"`
	// MatchKinds are the identity kinds the collection is matched by, and
	// KindsKnown those of them the request had (so the search used). A
	// collection with none known is OutcomeNotSearched, its Note saying
	// what was missing ("no email known"). Absent for results recorded
	// before connectors said so.
	MatchKinds []string `bson:"match_kinds,omitempty" json:"match_kinds,omitzero"`
	KindsKnown []string `bson:"kinds_known,omitempty" json:"kinds_known,omitzero"`
	Note       string   `bson:"note,omitempty" json:"note,omitempty"`
	// Changes, for a correction, are per field the hashes of the values
	// overwritten and of the value written; never a value in clear.
	Changes []FieldChange `bson:"changes,omitempty" json:"changes,omitzero"`
}

// FieldChange is the evidence of one field a correction changed in one
// collection ([connectors.FieldChange]: hashes only).
type FieldChange = connectors.FieldChange

// DataMap is what a connector's entry declares of its system under
// data_map ([connectors.DataMap], the same fields in the same order, which
// [DataMapOf] converts), with its stored and JSON names.
type DataMap struct {
	Purpose    string   `bson:"purpose,omitempty" json:"purpose,omitempty"`
	Categories []string `bson:"categories,omitempty" json:"categories,omitzero"`
	Recipients []string `bson:"recipients,omitempty" json:"recipients,omitzero"`
	Retention  string   `bson:"retention,omitempty" json:"retention,omitempty"`
	Source     string   `bson:"source,omitempty" json:"source,omitempty"`
	// LegalBasis is a GDPR Art. 6(1) basis by its name
	// (connectors.LegalBases).
	LegalBasis string `bson:"legal_basis,omitempty" json:"legal_basis,omitempty"`
	// Scopes are the uses a person can refuse that the system serves
	// (connectors.DataMap.Scopes); none: every opt-out reaches it.
	Scopes []Scope `bson:"scopes,omitempty" json:"scopes,omitzero"`
}

// DataMapOf is a connector's data map as a job keeps it.
func DataMapOf(d connectors.DataMap) *DataMap {
	dm := DataMap(d)
	return &dm
}

// CollectionResultOf is a connector's result for one collection, as a job
// stores it.
func CollectionResultOf(c connectors.CollectionResult) CollectionResult { return CollectionResult(c) }

// OutcomeNotSearched is the outcome of a collection the request could not be
// matched against: none of the identity kinds it is matched by was known
// ([connectors.OutcomeNotSearched]).
const OutcomeNotSearched = connectors.OutcomeNotSearched

// JobID is the deterministic key of a job; it is also its queue task id, so
// enqueuing the same job twice is a no-op.
func JobID(requestID, connector string, action Action) string {
	return requestID + ":" + connector + ":" + string(action)
}

var jobIDPattern = regexp.MustCompile(`^[0-9a-f-]{36}:[a-z0-9][a-z0-9_-]{0,62}:[a-z_]{1,32}$`)

// ValidJobID reports whether s has the form of a [JobID]: a request id, a
// connector's name, an action. A job id taken from outside (a callback's
// path) is checked before it reaches the store, a log or a span.
func ValidJobID(s string) bool {
	return jobIDPattern.MatchString(s) && ValidID(JobRequestID(s))
}

// JobRequestID returns the id of the request whose job is jobID (a
// [JobID]): what comes before its first ":".
func JobRequestID(jobID string) string {
	id, _, _ := strings.Cut(jobID, ":")
	return id
}

// JobStatus is where a job is in its life.
type JobStatus string

// RecordsIncompleteNote is what a job whose RecordsIncomplete is set says
// of its counts, in the API and the evidence.
const RecordsIncompleteNote = "an earlier attempt may have changed records: it was stopped before recording what it did, so the counts may be short"

// The job statuses.
const (
	JobPending   JobStatus = "pending"
	JobRunning   JobStatus = "running"
	JobSucceeded JobStatus = "succeeded"
	JobFailed    JobStatus = "failed"
	JobSkipped   JobStatus = "skipped"
	// JobWaiting: the remote system accepted the work and finishes it
	// later; the sweep hands the job back to a worker at its PollAt.
	JobWaiting JobStatus = "waiting"
)

// Terminal reports whether the job will not run again by itself.
func (s JobStatus) Terminal() bool {
	return s == JobSucceeded || s == JobFailed || s == JobSkipped
}
