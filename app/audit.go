package app

import (
	"context"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// AuditTrail is a request's audit chain and whether it verifies.
type AuditTrail struct {
	RequestID string       `json:"request_id"`
	Events    []AuditEntry `json:"events"`
	Verified  bool         `json:"verified"`
	// BrokenAt and Problem say where and why the chain does not verify.
	BrokenAt int    `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// HistoryEntries and Audited cross-check the chain with the request:
	// every change of status recorded on the request is also in the chain
	// once Audited reaches HistoryEntries (it lags only while a catch-up is
	// due). Fewer "filed"/"status" events than Audited means events at the
	// end of the chain were deleted.
	HistoryEntries int `json:"history_entries"`
	Audited        int `json:"audited"`
}

// AuditEntry is one event of an audit chain.
type AuditEntry struct {
	Seq      int               `json:"seq"`
	At       time.Time         `json:"at"`
	Actor    string            `json:"actor"`
	Kind     string            `json:"kind"`
	Data     map[string]string `json:"data"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// Audit returns request id's audit chain and whether it verifies: each
// event hashed over the one before, and the status changes counted against
// the request's own history, so an edited, removed or added event shows.
func (s *Service) Audit(ctx context.Context, id string) (AuditTrail, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return AuditTrail{}, err
	}
	events, err := s.store.AuditTrail(ctx, req.ID)
	if err != nil {
		return AuditTrail{}, err
	}
	check := dsr.VerifyChain(events)
	v := AuditTrail{RequestID: req.ID, Events: make([]AuditEntry, len(events)), Verified: check.OK, BrokenAt: check.BrokenAt, Problem: check.Problem,
		HistoryEntries: len(req.History), Audited: req.Audited}
	statuses := 0
	for i, e := range events {
		data := e.Data
		if data == nil {
			data = map[string]string{}
		}
		v.Events[i] = AuditEntry{Seq: e.Seq, At: e.At, Actor: e.Actor, Kind: e.Kind, Data: data, PrevHash: e.PrevHash, Hash: e.Hash}
		if e.Kind == "filed" || e.Kind == "status" {
			statuses++
		}
	}
	if v.Verified && statuses < req.Audited {
		v.Verified, v.Problem = false, fmt.Sprintf("the chain holds %d changes of status, the request %d: events were removed", statuses, req.Audited)
	}
	return v, nil
}

// Clock explains a request's due date.
type Clock struct {
	Regulation    dsr.Regulation `json:"regulation"`
	Type          dsr.Type       `json:"type"`
	Rule          dsr.Rule       `json:"rule"`
	RulesVersion  string         `json:"rules_version"`
	StartedAt     time.Time      `json:"started_at"`
	FirstDueAt    time.Time      `json:"first_due_at"`
	DueAt         time.Time      `json:"due_at"`
	ReceiptDueAt  *time.Time     `json:"receipt_due_at,omitempty"`
	Paused        bool           `json:"paused"`
	Pauses        []dsr.Pause    `json:"pauses"`
	Extension     *Extension     `json:"extension,omitempty"`
	BusinessDays  string         `json:"business_days"`
	Holidays      []string       `json:"holidays"`
	OverdueAt     *time.Time     `json:"overdue_at,omitempty"`
	RemindersSent []int          `json:"reminders_sent"`
	AppealOf      string         `json:"appeal_of,omitempty"`
	AppealedBy    string         `json:"appealed_by,omitempty"`
}

// Extension is a request's extension of its deadline.
type Extension struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	From   time.Time `json:"from"`
}

// ExtensionOf is r's extension, or nil.
func ExtensionOf(r *dsr.Request) *Extension {
	if e := r.Extension; e != nil {
		return &Extension{By: e.By, At: e.At, Reason: e.Reason, From: e.From}
	}
	return nil
}

// Clock explains request id's due date: the rule and its version, the
// start, the pauses and the extension, and the business-day calendar used.
func (s *Service) Clock(ctx context.Context, id string) (Clock, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return Clock{}, err
	}
	rule := dsr.RuleFor(req.Regulation, req.Type)
	first := s.calendar.Due(req.Regulation, req.Type, req.ReceivedAt)
	if req.AppealOf != "" {
		rule = dsr.Rule{Regulation: req.Regulation, Basis: "appeal against a denial: answered within 60 days", Respond: dsr.AppealPeriod}
		first = dsr.Calendar{}.Add(req.ReceivedAt, dsr.AppealPeriod)
	}
	v := Clock{Regulation: req.Regulation, Type: req.Type, Rule: rule, RulesVersion: dsr.RulesVersion, StartedAt: req.ReceivedAt,
		FirstDueAt: first, DueAt: req.DueAt, ReceiptDueAt: req.ReceiptDueAt, Paused: req.PausedAt != nil, Pauses: req.Pauses,
		BusinessDays: "Monday to Friday, less the holidays listed", Holidays: s.calendar.Holidays(req.ReceivedAt, req.DueAt),
		OverdueAt: req.OverdueAt, RemindersSent: req.Reminded, AppealOf: req.AppealOf, AppealedBy: req.AppealedBy, Extension: ExtensionOf(req)}
	if v.Pauses == nil {
		v.Pauses = []dsr.Pause{}
	}
	if v.Holidays == nil {
		v.Holidays = []string{}
	}
	if v.RemindersSent == nil {
		v.RemindersSent = []int{}
	}
	return v, nil
}

// Summary is the compliance report of the requests received in [from, to):
// per type and regulation, how many were received, completed, denied (by
// basis), are open, cancelled or expired, the median and mean days to
// respond and the rate answered on time (CCPA 11 CCR 7102). It holds counts
// only. dsr.SummaryWindow reads the window from words.
func (s *Service) Summary(ctx context.Context, from, to time.Time) (*dsr.Summary, error) {
	return s.store.Summary(ctx, from, to)
}
