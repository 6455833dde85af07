package app

import (
	"context"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// Report is the evidence of how one request was handled: what a regulator
// asks for (CCPA 11 CCR 7101: the request's date and nature, how it was
// made, the date and nature of the response, the basis of any denial; GDPR
// Art. 5(2): be able to demonstrate compliance). It names no identity of the
// person.
type Report struct {
	Request     ReportRequest   `json:"request"`
	Response    ReportResponse  `json:"response"`
	Systems     []ReportSystem  `json:"systems"`
	Exceptions  []dsr.Exception `json:"exceptions"`
	Timeline    []HistoryEntry  `json:"timeline"`
	GeneratedAt time.Time       `json:"generated_at"`
}

// RequestHead is what every view of a request (the agent API's, the
// portal's, a Report) names first: which request, of what kind, under
// which law, and where it stands. Embedded, its fields come first in the
// view's JSON.
type RequestHead struct {
	ID         string         `json:"id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	Status     dsr.Status     `json:"status"`
}

// HeadOf is the head of r's views.
func HeadOf(r *dsr.Request) RequestHead {
	return RequestHead{ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status}
}

// ReportRequest is the request of a Report.
type ReportRequest struct {
	RequestHead
	Source             string     `json:"source"`
	Channel            string     `json:"channel,omitempty"`
	FiledBy            string     `json:"filed_by"`
	AuthorisedAgent    string     `json:"authorised_agent,omitempty"`
	GPC                bool       `json:"gpc"`
	ReceivedAt         time.Time  `json:"received_at"`
	DueAt              time.Time  `json:"due_at"`
	Extension          *Extension `json:"extension,omitempty"`
	VerificationMethod string     `json:"verification_method,omitempty"`
	ApprovedBy         string     `json:"approved_by,omitempty"`
	IdentityKinds      []dsr.Kind `json:"identity_kinds"`
	// ResolveBoundReached: see dsr.Request.
	ResolveBoundReached int `json:"resolve_bound_reached,omitempty"`
	// Corrections are a correction's changes as evidence: each field and
	// the keyed hash of its new value, never the value (the systems'
	// collections give the hashes of the values overwritten).
	Corrections []dsr.Correction `json:"corrections,omitempty"`
}

// ReportResponse is the response a Report's request got.
type ReportResponse struct {
	// Date is when the request was closed; absent while open.
	Date *time.Time `json:"date,omitempty"`
	// Nature is completed, denied, cancelled or expired; "open" before.
	Nature string `json:"nature"`
	// DenialBasis is the recorded reason of a denial.
	DenialBasis string `json:"denial_basis,omitempty"`
	// OnTime says whether the response came by the (extended) due date;
	// absent while open.
	OnTime *bool `json:"on_time,omitempty"`
	// DaysToRespond counts calendar days from receipt to response.
	DaysToRespond *int `json:"days_to_respond,omitempty"`
}

// ReportSystem is what one connector did for a Report's request.
type ReportSystem struct {
	Connector   string                 `json:"connector"`
	Action      dsr.Action             `json:"action"`
	Status      dsr.JobStatus          `json:"status"`
	Records     int64                  `json:"records"`
	Collections []dsr.CollectionResult `json:"collections"`
	Error       string                 `json:"error,omitempty"`
	FinishedAt  *time.Time             `json:"finished_at,omitempty"`
	// RecordsIncomplete and RecordsNote: see the job's.
	RecordsIncomplete bool   `json:"records_incomplete,omitempty"`
	RecordsNote       string `json:"records_note,omitempty"`
}

// HistoryEntry is one change of a request's status.
type HistoryEntry struct {
	From   dsr.Status `json:"from,omitempty"`
	To     dsr.Status `json:"to"`
	At     time.Time  `json:"at"`
	Actor  string     `json:"actor"`
	Reason string     `json:"reason,omitempty"`
}

// History is r's history, oldest first.
func History(r *dsr.Request) []HistoryEntry {
	out := make([]HistoryEntry, len(r.History))
	for i, h := range r.History {
		out[i] = HistoryEntry(h)
	}
	return out
}

// Report returns the evidence report of request id.
func (s *Service) Report(ctx context.Context, id string) (Report, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return Report{}, err
	}
	return BuildReport(rec.Request, rec.Jobs, s.now()), nil
}

// BuildReport is the report of r with its jobs, made at now.
func BuildReport(r *dsr.Request, jobs []dsr.Job, now time.Time) Report {
	rep := Report{
		Request: ReportRequest{
			RequestHead: HeadOf(r), Source: r.Source, Channel: r.Channel,
			FiledBy: r.FiledBy, GPC: r.GPC, ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Extension: ExtensionOf(r),
			VerificationMethod: r.VerificationMethod, ApprovedBy: r.ApprovedBy, IdentityKinds: []dsr.Kind{},
			ResolveBoundReached: r.ResolveBoundReached, Corrections: r.Corrections,
		},
		Response:    ReportResponse{Nature: "open"},
		Systems:     []ReportSystem{},
		Exceptions:  Exceptions(r, jobs),
		Timeline:    History(r),
		GeneratedAt: now.UTC(),
	}
	if r.Agent != nil {
		rep.Request.AuthorisedAgent = r.Agent.Name
	}
	seen := map[dsr.Kind]bool{}
	for _, id := range r.Identities {
		if !seen[id.Kind] {
			seen[id.Kind] = true
			rep.Request.IdentityKinds = append(rep.Request.IdentityKinds, id.Kind)
		}
	}
	if r.Status.Closed() && r.ClosedAt != nil {
		rep.Response.Date, rep.Response.Nature = r.ClosedAt, string(r.Status)
		onTime := r.OnTime()
		days := int(r.DaysToRespond())
		rep.Response.OnTime, rep.Response.DaysToRespond = &onTime, &days
		if r.Status == dsr.StatusDenied && len(r.History) > 0 {
			rep.Response.DenialBasis = r.History[len(r.History)-1].Reason
		}
	}
	for _, j := range jobs {
		rep.Systems = append(rep.Systems, ReportSystem{Connector: j.Connector, Action: j.Action, Status: j.Status, Records: j.Records,
			Collections: Collections(j.Collections), Error: j.Error, FinishedAt: j.FinishedAt, RecordsIncomplete: j.RecordsIncomplete, RecordsNote: RecordsNote(&j)})
	}
	return rep
}

// RecordsNote is what a job says of its counts: dsr.RecordsIncompleteNote,
// or "" when they are whole.
func RecordsNote(j *dsr.Job) string {
	if j.RecordsIncomplete {
		return dsr.RecordsIncompleteNote
	}
	return ""
}

// Collections returns a job's collection results as they are shown: a
// list, never null, whose entries that say which identity kinds they are
// matched by also say which were known (an empty list included).
func Collections(cols []dsr.CollectionResult) []dsr.CollectionResult {
	out := make([]dsr.CollectionResult, len(cols))
	for i, c := range cols {
		if c.MatchKinds != nil && c.KindsKnown == nil {
			c.KindsKnown = []string{}
		}
		out[i] = c
	}
	return out
}

// Exceptions lists what a request kept on a legal basis: those an agent
// recorded when closing it, and the collections its jobs masked or kept
// under a legal hold.
func Exceptions(r *dsr.Request, jobs []dsr.Job) []dsr.Exception {
	out := append([]dsr.Exception{}, r.Exceptions...)
	for _, j := range jobs {
		for _, c := range j.Collections {
			if c.Basis != "" {
				out = append(out, dsr.Exception{Connector: j.Connector, Collection: c.Name, Basis: c.Basis})
			}
		}
	}
	return out
}
