package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
)

// reasonBody is the body of the actions that take a reason.
type reasonBody struct {
	Reason string `json:"reason"`
}

// denyBody is the body of POST /v1/requests/{id}/deny.
type denyBody struct {
	Reason string `json:"reason"`
	Basis  string `json:"basis"`
}

// closeBody is the body of POST /v1/requests/{id}/close.
type closeBody struct {
	Reason     string          `json:"reason"`
	Exceptions []exceptionBody `json:"exceptions"`
}

type exceptionBody struct {
	Connector  string `json:"connector"`
	Collection string `json:"collection"`
	Basis      string `json:"basis"`
}

// maxReason bounds free-text reasons and notes.
const maxReason = 2000

// reason decodes a body with a reason; required says whether it may be
// empty. On failure it has written the problem.
func (a *requestsAPI) reason(c *gin.Context, required bool) (string, bool) {
	var body reasonBody
	if c.Request.ContentLength != 0 || c.GetHeader("Content-Type") != "" {
		if !decodeJSON(c, &body, MaxBodyBytes) {
			return "", false
		}
	}
	var ve dsr.ValidationError
	r := checkReason(&ve, body.Reason, required)
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return "", false
	}
	return r, true
}

// checkReason trims a reason and adds to ve what is wrong with it.
func checkReason(ve *dsr.ValidationError, reason string, required bool) string {
	r := strings.TrimSpace(reason)
	switch {
	case required && r == "":
		ve.Add("reason", "required: it is recorded, and told to the person where they are told")
	case utf8.RuneCountInString(r) > maxReason:
		ve.Add("reason", "must be at most %d characters", maxReason)
	default:
		ve.Text("reason", r, dsr.Lines)
	}
	return r
}

// recordAudit appends an event by the caller to a request's audit chain. It is
// best effort, after the change it records: a failure is logged, and the
// change's facts stay in the request's document.
func (a *requestsAPI) recordAudit(c *gin.Context, id, kind string, data map[string]string) {
	if _, err := a.store.AppendAudit(c.Request.Context(), id, principal(c).Name, kind, data); err != nil {
		a.log.WarnContext(c.Request.Context(), "audit event not recorded", "request_id", id, "kind", kind, "error", err)
	}
}

// act moves the request in the path from its current status to to, if the
// state machine allows it; a second, concurrent action gets 409.
func (a *requestsAPI) act(c *gin.Context, allowed []dsr.Status, to dsr.Status, change dsr.Change) (*dsr.Request, bool) {
	req, _, ok := a.load(c, c.Param("id"), false)
	if !ok {
		return nil, false
	}
	if !containsStatus(allowed, req.Status) {
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: fmt.Sprintf("A %s request cannot be moved to %s.", req.Status, to)})
		return nil, false
	}
	change.Actor = principal(c).Name
	moved, err := a.store.Transition(c.Request.Context(), req.ID, req.Status, to, change)
	if err != nil {
		writeError(c, a.log, err)
		return nil, false
	}
	a.log.InfoContext(c.Request.Context(), "request moved by an agent", "request_id", req.ID, "from", req.Status, "to", to, "caller", change.Actor)
	return moved, true
}

func containsStatus(list []dsr.Status, s dsr.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// respond answers an action with the request and its jobs.
func (a *requestsAPI) respond(c *gin.Context, req *dsr.Request) {
	jobs, err := a.store.Jobs(c.Request.Context(), req.ID)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	c.JSON(http.StatusOK, viewRequest(req, jobs))
}

// notices enqueues the notices pending on req; the sweep sends what fails.
func (a *requestsAPI) notices(ctx context.Context, req *dsr.Request) {
	for _, n := range req.PendingNotices {
		if err := a.queue.EnqueueNotice(ctx, req.ID, n); err != nil {
			a.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", req.ID, "notice", n, "error", err)
		}
	}
}

// beforeProcessing are the statuses a request can be denied or cancelled in.
var beforeProcessing = []dsr.Status{dsr.StatusReceived, dsr.StatusVerifying, dsr.StatusVerified, dsr.StatusAwaitingApproval}

// approve lets a request waiting for approval be processed. Under the
// four-eyes rule (DSAR_APPROVAL_FOUR_EYES) the agent who filed the request,
// or for an appeal the request it appeals, may not approve it: 403, and
// nothing changes.
func (a *requestsAPI) approve(c *gin.Context) {
	req, _, ok := a.load(c, c.Param("id"), false)
	if !ok {
		return
	}
	if by := principal(c).Name; a.fourEyes.Requires(req.Type, req.Regulation) {
		filed, err := a.filedBy(c.Request.Context(), req, by)
		if err != nil {
			writeError(c, a.log, err)
			return
		}
		if filed {
			a.log.InfoContext(c.Request.Context(), "approval refused: four eyes", "request_id", req.ID, "caller", by)
			problem(c, Problem{Type: problemFourEyes, Title: "Another agent must approve", Status: http.StatusForbidden,
				Detail: "You filed this request (or the request it appeals), and requests of its type are approved by a second agent (DSAR_APPROVAL_FOUR_EYES)."})
			return
		}
	}
	moved, ok := a.act(c, []dsr.Status{dsr.StatusAwaitingApproval}, dsr.StatusVerified,
		dsr.Change{Reason: "approved", ApprovedBy: principal(c).Name})
	if !ok {
		return
	}
	if err := a.queue.EnqueueFanout(c.Request.Context(), moved.ID); err != nil {
		a.log.WarnContext(c.Request.Context(), "approved request not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
	}
	a.respond(c, moved)
}

// filedBy reports whether agent by filed req or, req being an appeal, the
// request it appeals: an appeal acts on the same person with the same
// proof, so a second agent filing it does not make its approval by the
// first a second pair of eyes.
func (a *requestsAPI) filedBy(ctx context.Context, req *dsr.Request, by string) (bool, error) {
	if req.FiledBy == by {
		return true, nil
	}
	if req.AppealOf == "" {
		return false, nil
	}
	appealed, err := a.store.Request(ctx, req.AppealOf)
	if err != nil {
		return false, fmt.Errorf("four eyes: appealed request: %w", err)
	}
	return appealed.FiledBy == by, nil
}

// deny refuses a request before it is processed, with a reason the person
// is told.
func (a *requestsAPI) deny(c *gin.Context) {
	var body denyBody
	if !decodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	var ve dsr.ValidationError
	reason := checkReason(&ve, body.Reason, true)
	basis := dsr.DenialBasis(body.Basis)
	switch {
	case basis == "":
		basis = dsr.DeniedOther
	case !slices.Contains(dsr.DenialBases, basis):
		ve.Add("basis", "must be one of %s", joinBases())
	}
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return
	}
	moved, ok := a.act(c, beforeProcessing, dsr.StatusDenied, dsr.Change{Reason: reason, DenialBasis: basis, Notices: []string{dsr.NoticeDenied}})
	if !ok {
		return
	}
	a.notices(c.Request.Context(), moved)
	a.respond(c, moved)
}

func joinBases() string {
	out := make([]string, len(dsr.DenialBases))
	for i, b := range dsr.DenialBases {
		out[i] = string(b)
	}
	return strings.Join(out, ", ")
}

// cancel withdraws a request before it is processed (the person asked, or
// it was filed in error).
func (a *requestsAPI) cancel(c *gin.Context) {
	reason, ok := a.reason(c, false)
	if !ok {
		return
	}
	if reason == "" {
		reason = "cancelled"
	}
	if moved, ok := a.act(c, append(beforeProcessing, dsr.StatusDuplicate), dsr.StatusCancelled, dsr.Change{Reason: reason}); ok {
		a.respond(c, moved)
	}
}

// extend gives the request the one extension its regulation allows.
func (a *requestsAPI) extend(c *gin.Context) {
	reason, ok := a.reason(c, true)
	if !ok {
		return
	}
	id := c.Param("id")
	if !dsr.ValidID(id) {
		writeError(c, a.log, dsr.ErrNotFound)
		return
	}
	moved, err := a.store.Extend(c.Request.Context(), id, principal(c).Name, reason)
	if errors.Is(err, dsr.ErrNoExtension) {
		problem(c, Problem{Type: problemConflict, Title: "No extension", Status: http.StatusConflict,
			Detail: "This request's regulation allows no (further) extension of its deadline."})
		return
	}
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	a.log.InfoContext(c.Request.Context(), "deadline extended", "request_id", id, "caller", principal(c).Name)
	a.recordAudit(c, id, "extended", map[string]string{"reason": reason, "from": moved.Extension.From.Format(time.RFC3339), "to": moved.DueAt.Format(time.RFC3339)})
	a.notices(c.Request.Context(), moved)
	a.respond(c, moved)
}

// retry runs the failed jobs of a request that needs attention again, or,
// when its fan-out failed (no jobs exist yet), the fan-out, with a fresh
// retry budget.
func (a *requestsAPI) retry(c *gin.Context) {
	req, jobs, ok := a.load(c, c.Param("id"), true)
	if !ok {
		return
	}
	if req.Status == dsr.StatusNeedsAttention && req.FannedOutAt == nil {
		a.retryFanout(c, req)
		return
	}
	failed := 0
	for _, j := range jobs {
		if j.Status == dsr.JobFailed {
			failed++
		}
	}
	if req.Status != dsr.StatusNeedsAttention || failed == 0 {
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "Only a request that needs attention, with failed jobs or a failed fan-out, can be retried."})
		return
	}
	moved, ok := a.act(c, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusInProgress, dsr.Change{Reason: fmt.Sprintf("retry of %d failed jobs", failed)})
	if !ok {
		return
	}
	ctx := c.Request.Context()
	ids, err := a.store.RetryFailedJobs(ctx, moved.ID)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	for _, id := range ids {
		if err := a.queue.EnqueueJob(ctx, id); err != nil {
			a.log.WarnContext(ctx, "retried job not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
		}
	}
	a.respond(c, moved)
}

// retryFanout sends a request whose fan-out failed back to verified and
// queues its fan-out again.
func (a *requestsAPI) retryFanout(c *gin.Context, req *dsr.Request) {
	reason := fmt.Sprintf("retry of the fan-out after %d failures", req.FanoutFailures)
	if req.FanoutFailures == 0 {
		reason = "retry of the fan-out" // it found no connector for the request's action
	}
	moved, ok := a.act(c, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusVerified, dsr.Change{Reason: reason, ResetFanout: true})
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := a.queue.EnqueueFanout(ctx, moved.ID); err != nil {
		a.log.WarnContext(ctx, "retried fan-out not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
	}
	a.respond(c, moved)
}

// close completes a request that needs attention, with a reason and the
// exceptions kept on a legal basis; the person is told it is done.
func (a *requestsAPI) close(c *gin.Context) {
	var body closeBody
	if !decodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	var ve dsr.ValidationError
	reason := strings.TrimSpace(body.Reason)
	if reason == "" || utf8.RuneCountInString(reason) > maxReason {
		ve.Add("reason", "required, at most %d characters", maxReason)
	} else {
		ve.Text("reason", reason, dsr.Lines)
	}
	var exceptions []dsr.Exception
	for i, e := range body.Exceptions {
		field := func(name string) string { return fmt.Sprintf("exceptions[%d].%s", i, name) }
		if c := strings.TrimSpace(e.Connector); c == "" || utf8.RuneCountInString(c) > 200 {
			ve.Add(field("connector"), "required, at most 200 characters")
		} else {
			ve.Text(field("connector"), c, dsr.OneLine)
		}
		if utf8.RuneCountInString(strings.TrimSpace(e.Collection)) > 200 {
			ve.Add(field("collection"), "must be at most 200 characters")
		} else {
			ve.Text(field("collection"), strings.TrimSpace(e.Collection), dsr.OneLine)
		}
		if b := strings.TrimSpace(e.Basis); b == "" || utf8.RuneCountInString(b) > maxReason {
			ve.Add(field("basis"), "required: the legal basis for keeping the data, e.g. tax law retention")
		} else {
			ve.Text(field("basis"), b, dsr.Lines)
		}
		exceptions = append(exceptions, dsr.Exception{Connector: strings.TrimSpace(e.Connector), Collection: strings.TrimSpace(e.Collection), Basis: strings.TrimSpace(e.Basis)})
	}
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return
	}
	moved, ok := a.act(c, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusCompleted,
		dsr.Change{Reason: reason, Exceptions: exceptions, Notices: []string{dsr.NoticeCompleted}})
	if !ok {
		return
	}
	a.notices(c.Request.Context(), moved)
	a.respond(c, moved)
}

// keys lists the API keys by name and role (never their secrets).
func keysList(keys *Keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		out := make([]gin.H, 0, len(keys.keys))
		for _, k := range keys.keys {
			out = append(out, gin.H{"name": k.Name, "role": k.Role})
		}
		c.JSON(http.StatusOK, gin.H{"items": out})
	}
}

// auditView is a request's audit chain and whether it verifies.
type auditView struct {
	RequestID string       `json:"request_id"`
	Events    []auditEvent `json:"events"`
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

type auditEvent struct {
	Seq      int               `json:"seq"`
	At       time.Time         `json:"at"`
	Actor    string            `json:"actor"`
	Kind     string            `json:"kind"`
	Data     map[string]string `json:"data"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// audit answers a request's audit chain and whether it verifies: each event
// hashed over the one before, and the status changes counted against the
// request's own history, so an edited, removed or added event shows.
func (a *requestsAPI) audit(c *gin.Context) {
	req, _, ok := a.load(c, c.Param("id"), false)
	if !ok {
		return
	}
	events, err := a.store.AuditTrail(c.Request.Context(), req.ID)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	check := dsr.VerifyChain(events)
	v := auditView{RequestID: req.ID, Events: make([]auditEvent, len(events)), Verified: check.OK, BrokenAt: check.BrokenAt, Problem: check.Problem,
		HistoryEntries: len(req.History), Audited: req.Audited}
	statuses := 0
	for i, e := range events {
		data := e.Data
		if data == nil {
			data = map[string]string{}
		}
		v.Events[i] = auditEvent{Seq: e.Seq, At: e.At, Actor: e.Actor, Kind: e.Kind, Data: data, PrevHash: e.PrevHash, Hash: e.Hash}
		if e.Kind == "filed" || e.Kind == "status" {
			statuses++
		}
	}
	if v.Verified && statuses < req.Audited {
		v.Verified, v.Problem = false, fmt.Sprintf("the chain holds %d changes of status, the request %d: events were removed", statuses, req.Audited)
	}
	c.JSON(http.StatusOK, v)
}

// clockView explains a request's due date.
type clockView struct {
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
	Extension     *extensionView `json:"extension,omitempty"`
	BusinessDays  string         `json:"business_days"`
	Holidays      []string       `json:"holidays"`
	OverdueAt     *time.Time     `json:"overdue_at,omitempty"`
	RemindersSent []int          `json:"reminders_sent"`
	AppealOf      string         `json:"appeal_of,omitempty"`
	AppealedBy    string         `json:"appealed_by,omitempty"`
}

// clock explains a request's due date: the rule and its version, the start,
// the pauses and the extension, and the business-day calendar used.
func (a *requestsAPI) clock(c *gin.Context) {
	req, _, ok := a.load(c, c.Param("id"), false)
	if !ok {
		return
	}
	rule := dsr.RuleFor(req.Regulation, req.Type)
	first := a.calendar.Due(req.Regulation, req.Type, req.ReceivedAt)
	if req.AppealOf != "" {
		rule = dsr.Rule{Regulation: req.Regulation, Basis: "appeal against a denial: answered within 60 days", Respond: dsr.AppealPeriod}
		first = dsr.Calendar{}.Add(req.ReceivedAt, dsr.AppealPeriod)
	}
	v := clockView{Regulation: req.Regulation, Type: req.Type, Rule: rule, RulesVersion: dsr.RulesVersion, StartedAt: req.ReceivedAt,
		FirstDueAt: first, DueAt: req.DueAt, ReceiptDueAt: req.ReceiptDueAt, Paused: req.PausedAt != nil, Pauses: req.Pauses,
		BusinessDays: "Monday to Friday, less the holidays listed", Holidays: a.calendar.Holidays(req.ReceivedAt, req.DueAt),
		OverdueAt: req.OverdueAt, RemindersSent: req.Reminded, AppealOf: req.AppealOf, AppealedBy: req.AppealedBy}
	if v.Pauses == nil {
		v.Pauses = []dsr.Pause{}
	}
	if v.Holidays == nil {
		v.Holidays = []string{}
	}
	if v.RemindersSent == nil {
		v.RemindersSent = []int{}
	}
	if e := req.Extension; e != nil {
		v.Extension = &extensionView{By: e.By, At: e.At, Reason: e.Reason, From: e.From}
	}
	c.JSON(http.StatusOK, v)
}

// pause stops a request's clock where its rule allows (GDPR: waiting for
// information to confirm identity), with a reason.
func (a *requestsAPI) pause(c *gin.Context) {
	reason, ok := a.reason(c, true)
	if !ok {
		return
	}
	a.clockChange(c, "paused", reason, func(ctx context.Context, id string) (*dsr.Request, error) {
		return a.store.PauseClock(ctx, id, principal(c).Name, reason)
	})
}

// resume restarts a paused clock; the due date moves by the pause.
func (a *requestsAPI) resume(c *gin.Context) {
	a.clockChange(c, "resumed", "", func(ctx context.Context, id string) (*dsr.Request, error) {
		return a.store.ResumeClock(ctx, id)
	})
}

func (a *requestsAPI) clockChange(c *gin.Context, kind, reason string, change func(context.Context, string) (*dsr.Request, error)) {
	id := c.Param("id")
	if !dsr.ValidID(id) {
		writeError(c, a.log, dsr.ErrNotFound)
		return
	}
	moved, err := change(c.Request.Context(), id)
	if errors.Is(err, dsr.ErrNotPausable) {
		problem(c, Problem{Type: problemConflict, Title: "Not pausable", Status: http.StatusConflict,
			Detail: "This request's regulation does not let its clock stop (CCPA counts 45 days whatever verification takes)."})
		return
	}
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	data := map[string]string{"due_at": moved.DueAt.Format(time.RFC3339)}
	if reason != "" {
		data["reason"] = reason
	}
	a.recordAudit(c, id, "clock_"+kind, data)
	a.respond(c, moved)
}

// appealBody is the body of POST /v1/requests/{id}/appeal.
type appealBody struct {
	Reason string `json:"reason"`
	// Identity is a new proof of identity, as when filing: attested by
	// the agent (verified, with a method), or the portal's verification.
	// Absent: the appeal inherits the proof of the request it appeals.
	Identity *identityBody `json:"identity"`
}

// appeal files the appeal against a denied request where its regulation
// grants one (VCDPA, CTDPA: answered within 60 days). It acts only for the
// person proven: a request denied as unverifiable, or never verified, is
// appealed only with a new proof.
func (a *requestsAPI) appeal(c *gin.Context) {
	var body appealBody
	if !decodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	var ve dsr.ValidationError
	f := dsr.AppealFiling{Actor: principal(c).Name, Reason: checkReason(&ve, body.Reason, true), Index: a.index}
	switch id := body.Identity; {
	case id == nil:
	case id.Verified:
		f.Attested = checkMethod(&ve, id.Method)
	default:
		if id.Method != "" {
			ve.Add("identity.method", "only with verified: true")
		}
		f.Verify = true
	}
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return
	}
	id := c.Param("id")
	if !dsr.ValidID(id) {
		writeError(c, a.log, dsr.ErrNotFound)
		return
	}
	ctx := c.Request.Context()
	appeal, err := a.store.Appeal(ctx, id, f)
	switch {
	case errors.Is(err, dsr.ErrNotAppealable):
		problem(c, Problem{Type: problemConflict, Title: "No appeal", Status: http.StatusConflict,
			Detail: "Only a denied request under a law that grants an appeal (VCDPA, CTDPA), not appealed before and not itself an appeal, can be appealed."})
		return
	case errors.Is(err, dsr.ErrProofRequired):
		problem(c, Problem{Type: problemProofRequired, Title: "New proof of identity needed", Status: http.StatusConflict,
			Detail: "This request was denied because the person's identity could not be verified (or it never was), so its appeal needs a new proof: " +
				`give "identity": {"verified": true, "method": "..."} if you verified the person, or {"verified": false} to send them the portal's verification.`})
		return
	case err != nil:
		writeError(c, a.log, err)
		return
	}
	data := map[string]string{"appeal": appeal.ID}
	switch {
	case f.Attested != "":
		data["proof"] = "attested"
	case f.Verify:
		data["proof"] = "portal verification"
	default:
		data["proof"] = "inherited"
	}
	a.recordAudit(c, id, "appealed", data)
	a.log.InfoContext(ctx, "appeal filed", "request_id", id, "appeal", appeal.ID, "proof", data["proof"], "caller", f.Actor)
	a.notices(ctx, appeal)
	c.Header("Location", "/v1/requests/"+appeal.ID)
	c.JSON(http.StatusAccepted, viewRequest(appeal, []dsr.Job{}))
}
