package agentapi

import (
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// requestView is a request as the agent API shows it.
type requestView struct {
	app.RequestHead
	Source     string            `json:"source"`
	FiledBy    string            `json:"filed_by"`
	ReceivedAt time.Time         `json:"received_at"`
	DueAt      time.Time         `json:"due_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	ClosedAt   *time.Time        `json:"closed_at,omitempty"`
	Subject    map[string]string `json:"subject"`
	// Scopes, for an opt-out, are the uses it refuses: the person's
	// identities are suppressed under them, and only the connectors that
	// serve one of them are asked.
	Scopes []dsr.Scope `json:"scopes,omitempty"`
	// ResolvedIdentities are those identity resolution found, with where.
	ResolvedIdentities []identityView `json:"resolved_identities"`
	// ResolveBoundReached: see dsr.Request.
	ResolveBoundReached int           `json:"resolve_bound_reached,omitempty"`
	Jobs                []jobView     `json:"jobs"`
	History             []historyView `json:"history"`
	// Claimed are identities given but not proven; no connector acts on
	// them.
	Claimed            []identityView  `json:"claimed_identities"`
	Channel            string          `json:"channel,omitempty"`
	Note               string          `json:"note,omitempty"`
	VerificationMethod string          `json:"verification_method,omitempty"`
	ApprovedBy         string          `json:"approved_by,omitempty"`
	AssignedTo         string          `json:"assigned_to,omitempty"`
	DuplicateOf        string          `json:"duplicate_of,omitempty"`
	Extension          *extensionView  `json:"extension,omitempty"`
	Exceptions         []dsr.Exception `json:"exceptions"`
	// ReceiptDueAt is when receipt must be confirmed (CCPA: 10 business
	// days), where the rule has such a date.
	ReceiptDueAt *time.Time `json:"receipt_due_at,omitempty"`
	// OverdueAt is when the escalation check found the request past due.
	OverdueAt *time.Time `json:"overdue_at,omitempty"`
	// Paused says the clock is stopped (GET .../clock explains it).
	Paused bool `json:"paused"`
	// DenialBasis is why a denied request was denied.
	DenialBasis dsr.DenialBasis `json:"denial_basis,omitempty"`
	AppealOf    string          `json:"appeal_of,omitempty"`
	AppealedBy  string          `json:"appealed_by,omitempty"`
	// FanoutFailures counts the fan-out's failed attempts, FanoutError is
	// the last one's error (naming no person) until the fan-out succeeds.
	FanoutFailures int    `json:"fanout_failures,omitempty"`
	FanoutError    string `json:"fanout_error,omitempty"`
	// HookHold is the pre-fan-out hook's hold, when the hook held the
	// request: a held request stays verified until the signed resume or
	// the hold's end.
	HookHold *dsr.HookHold `json:"hook_hold,omitempty"`
	// Corrections are a correction's changes: the field, the new value
	// (for the approving agent; gone once purged) and its keyed hash.
	Corrections []correctionView `json:"corrections,omitempty"`
}

type correctionView struct {
	Field string `json:"field"`
	Value string `json:"value,omitempty"`
	Hash  string `json:"hash"`
}

type extensionView = app.Extension

type identityView struct {
	Kind   dsr.Kind `json:"kind"`
	Value  string   `json:"value"`
	Source string   `json:"source"`
}

type jobView struct {
	Connector   string                 `json:"connector"`
	Action      dsr.Action             `json:"action"`
	Status      dsr.JobStatus          `json:"status"`
	Attempts    int                    `json:"attempts"`
	Records     int64                  `json:"records"`
	Error       string                 `json:"error"`
	Collections []dsr.CollectionResult `json:"collections"`
	UpdatedAt   time.Time              `json:"updated_at"`
	// PollAt and WaitUntil are set while the job waits on a remote system.
	PollAt    *time.Time `json:"poll_at,omitempty"`
	WaitUntil *time.Time `json:"wait_until,omitempty"`
	// RecordsIncomplete says Records may be short: an earlier attempt may
	// have changed records without recording it (RecordsNote says so in
	// words).
	RecordsIncomplete bool   `json:"records_incomplete,omitempty"`
	RecordsNote       string `json:"records_note,omitempty"`
}

type historyView = app.HistoryEntry

func viewRequest(r *dsr.Request, jobs []dsr.Job) requestView {
	v := requestView{
		RequestHead: app.HeadOf(r), Source: r.Source, FiledBy: r.FiledBy,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, UpdatedAt: r.UpdatedAt, ClosedAt: r.ClosedAt,
		Subject:            map[string]string{},
		ResolvedIdentities: []identityView{},
		Jobs:               make([]jobView, len(jobs)),
		History:            app.History(r),
		Claimed:            []identityView{},
		Channel:            r.Channel,
		Note:               r.Note,
		VerificationMethod: r.VerificationMethod,
		ApprovedBy:         r.ApprovedBy,
		AssignedTo:         r.AssignedTo,
		DuplicateOf:        r.DuplicateOf,
		Exceptions:         app.Exceptions(r, jobs),
		ReceiptDueAt:       r.ReceiptDueAt,
		OverdueAt:          r.OverdueAt,
		Paused:             r.PausedAt != nil,
		AppealOf:           r.AppealOf,
		DenialBasis:        r.DenialBasis,
		AppealedBy:         r.AppealedBy,
		FanoutFailures:     r.FanoutFailures,
		FanoutError:        r.FanoutError,
		HookHold:           r.HookHold,

		ResolveBoundReached: r.ResolveBoundReached,
	}
	v.Extension = app.ExtensionOf(r)
	if r.Type == dsr.TypeOptOut {
		v.Scopes = r.SuppressedScopes()
	}
	for _, c := range r.Corrections {
		v.Corrections = append(v.Corrections, correctionView{Field: c.Field, Value: r.NewValues[c.Field], Hash: c.Hash})
	}
	for _, id := range r.Identities {
		switch id.Source {
		case dsr.SourceSubject:
			v.Subject[string(id.Kind)] = id.Value
			continue
		case dsr.SourceClaimed:
			v.Claimed = append(v.Claimed, identityView{Kind: id.Kind, Value: id.Value, Source: id.Source})
			continue
		}
		v.ResolvedIdentities = append(v.ResolvedIdentities, identityView{Kind: id.Kind, Value: id.Value, Source: id.Source})
	}
	for i, j := range jobs {
		v.Jobs[i] = jobView{Connector: j.Connector, Action: j.Action, Status: j.Status, Attempts: j.Attempts,
			Records: j.Records, Error: j.Error, Collections: app.Collections(j.Collections), UpdatedAt: j.UpdatedAt,
			RecordsIncomplete: j.RecordsIncomplete, RecordsNote: app.RecordsNote(&j)}
		if j.Status == dsr.JobWaiting {
			v.Jobs[i].PollAt, v.Jobs[i].WaitUntil = j.PollAt, j.WaitUntil
		}
	}
	return v
}

// requestSummary is a request in a list.
type requestSummary struct {
	app.RequestHead
	Source     string    `json:"source"`
	AssignedTo string    `json:"assigned_to,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	DueAt      time.Time `json:"due_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Overdue: open past its due date, its clock running
	// (dsr.Request.Overdue).
	Overdue bool `json:"overdue"`
}

func summarize(r *dsr.Request, now time.Time) requestSummary {
	return requestSummary{RequestHead: app.HeadOf(r), Source: r.Source, AssignedTo: r.AssignedTo,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, UpdatedAt: r.UpdatedAt, Overdue: r.Overdue(now)}
}

// requestPage is one page of GET /v1/requests.
type requestPage struct {
	Items []requestSummary `json:"items"`
	// NextCursor fetches the next page; absent on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}
