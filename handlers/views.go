package handlers

import (
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// requestView is a request as the agent API shows it.
type requestView struct {
	ID         string            `json:"id"`
	Type       dsr.Type          `json:"type"`
	Regulation dsr.Regulation    `json:"regulation"`
	Status     dsr.Status        `json:"status"`
	Source     string            `json:"source"`
	FiledBy    string            `json:"filed_by"`
	ReceivedAt time.Time         `json:"received_at"`
	DueAt      time.Time         `json:"due_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	ClosedAt   *time.Time        `json:"closed_at,omitempty"`
	Subject    map[string]string `json:"subject"`
	// ResolvedIdentities are those identity resolution found, with where.
	ResolvedIdentities []identityView `json:"resolved_identities"`
	Jobs               []jobView      `json:"jobs"`
	History            []historyView  `json:"history"`
}

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
}

type historyView struct {
	From   dsr.Status `json:"from,omitempty"`
	To     dsr.Status `json:"to"`
	At     time.Time  `json:"at"`
	Actor  string     `json:"actor"`
	Reason string     `json:"reason,omitempty"`
}

func viewRequest(r *dsr.Request, jobs []dsr.Job) requestView {
	v := requestView{
		ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status,
		Source: r.Source, FiledBy: r.FiledBy,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, UpdatedAt: r.UpdatedAt, ClosedAt: r.ClosedAt,
		Subject:            map[string]string{},
		ResolvedIdentities: []identityView{},
		Jobs:               make([]jobView, len(jobs)),
		History:            make([]historyView, len(r.History)),
	}
	for _, id := range r.Identities {
		if id.Source == dsr.SourceSubject {
			v.Subject[string(id.Kind)] = id.Value
			continue
		}
		v.ResolvedIdentities = append(v.ResolvedIdentities, identityView{Kind: id.Kind, Value: id.Value, Source: id.Source})
	}
	for i, j := range jobs {
		cols := j.Collections
		if cols == nil {
			cols = []dsr.CollectionResult{}
		}
		v.Jobs[i] = jobView{Connector: j.Connector, Action: j.Action, Status: j.Status, Attempts: j.Attempts,
			Records: j.Records, Error: j.Error, Collections: cols, UpdatedAt: j.UpdatedAt}
	}
	for i, h := range r.History {
		v.History[i] = historyView(h)
	}
	return v
}

// requestSummary is a request in a list.
type requestSummary struct {
	ID         string         `json:"id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	Status     dsr.Status     `json:"status"`
	ReceivedAt time.Time      `json:"received_at"`
	DueAt      time.Time      `json:"due_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

func summarize(r *dsr.Request) requestSummary {
	return requestSummary{ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, UpdatedAt: r.UpdatedAt}
}

// requestPage is one page of GET /v1/requests.
type requestPage struct {
	Items []requestSummary `json:"items"`
	// NextCursor fetches the next page; absent on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}
