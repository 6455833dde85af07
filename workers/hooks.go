package workers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/webhook"
)

// HookOptions configures the business's pre- and post-processing hooks
// (docs/hooks.md): signed calls to its own systems before a request's
// fan-out and after its outcome. dsar sets them from DSAR_HOOK_*.
type HookOptions struct {
	// PreURL is called before a verified request's fan-out (empty: no
	// pre-fan-out hook). Its answer may add identities or hold the request.
	PreURL string
	// PostURL is told each request's outcome per system when the request
	// reaches completed or needs_attention (empty: no post-processing
	// hook).
	PostURL string
	// Secret signs both calls (Standard Webhooks) and checks the resumes.
	Secret webhook.Secret
	// Previous, while Secret changes, signs the calls too (checking
	// resumes is the API's).
	Previous webhook.Secret
	// HoldMax is how long a request the pre-fan-out hook held waits for
	// its resume before it needs attention.
	HoldMax time.Duration
	// Client sends the calls; nil: a client of its own.
	Client *http.Client
}

// maxHookAnswer bounds the pre-fan-out hook's answer.
const maxHookAnswer = 64 << 10

// preHookCall is the body of the pre-fan-out call. It carries the
// subject's identities: the hook is the business's own system.
type preHookCall struct {
	Event      string         `json:"event"` // "pre_fanout"
	RequestID  string         `json:"request_id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	ReceivedAt time.Time      `json:"received_at"`
	DueAt      time.Time      `json:"due_at"`
	Identities []hookIdentity `json:"identities"`
	// ResumeURL is the path the hook POSTs a signed resume to when it
	// holds the request.
	ResumePath string `json:"resume_path"`
}

type hookIdentity struct {
	Kind   dsr.Kind `json:"kind"`
	Value  string   `json:"value"`
	Source string   `json:"source"`
}

// PreHookAnswer is what the pre-fan-out hook may answer (200 or 202), and
// what a resume may carry (its add_identities; request_id names the
// request resumed).
type PreHookAnswer struct {
	RequestID     string             `json:"request_id,omitempty"`
	AddIdentities []dsr.HookIdentity `json:"add_identities,omitempty"`
	Hold          bool               `json:"hold,omitempty"`
}

// DecodeHookAnswer reads a pre-fan-out hook's answer or a resume: one JSON
// object of PreHookAnswer's fields and no other (an empty body is an empty
// answer). Its error names what is wrong without quoting the body.
func DecodeHookAnswer(body []byte) (PreHookAnswer, error) {
	var a PreHookAnswer
	if len(bytes.TrimSpace(body)) == 0 {
		return a, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return a, fmt.Errorf("not JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return a, fmt.Errorf("field %s: want %s", typ.Field, typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return a, errors.New(strings.TrimPrefix(err.Error(), "json: "))
		}
		return a, errors.New("not a JSON object")
	}
	if dec.More() {
		return a, errors.New("more than one JSON value")
	}
	return a, nil
}

// preHookID is the webhook-id of r's pre-fan-out call: the same on every
// retry of the call (a failed fan-out adds no history), so the hook can
// answer a repeat as it answered the first; new after an agent's retry,
// which moves the request (and adds to its history).
func preHookID(r *dsr.Request) string { return fmt.Sprintf("pre_fanout_%s_%d", r.ID, len(r.History)) }

// ResumePath is where the pre-fan-out hook resumes request id.
func ResumePath(requestID string) string { return "/v1/hooks/resume/" + requestID }

// bodyHash is the SHA-256 of a hook body, hex: what the audit chain keeps
// of it (the body may carry identities).
func bodyHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// kindsOf lists the kinds of ids, comma-separated, for the audit chain.
func kindsOf(ids []dsr.Identity) string {
	kinds := make([]string, len(ids))
	for i, id := range ids {
		kinds[i] = string(id.Kind)
	}
	return strings.Join(kinds, ",")
}

// preHook runs the pre-fan-out hook for a verified request and reports
// whether the fan-out goes on; req.Identities then include those the hook
// added. It calls the hook once per request (again only on a retry of a
// call that failed, with the same webhook-id), and:
//   - a hold: records it and stops; the fan-out goes on once the resume
//     arrives, or the request needs attention when HoldMax passes first
//     (the sweep, and a fan-out scheduled at the deadline, come back to it);
//   - an answer that refuses (4xx) or that is not valid: the request needs
//     attention at once, with the reason;
//   - a hook that is down (network, 5xx, 408, 429): an error, which the
//     fan-out's retries count (see Fanout), so the request needs attention
//     after MaxRetry+1 of them.
func (h *FanoutHandler) preHook(ctx context.Context, req *dsr.Request) (bool, error) {
	now := h.opts.Now()
	if hold := req.HookHold; hold != nil {
		if !hold.Holding() {
			return true, nil // resumed
		}
		if now.Before(hold.Until) {
			return false, nil // still held
		}
		h.audit(ctx, req.ID, "hook_pre_expired", map[string]string{"until": hold.Until.Format(time.RFC3339)})
		return false, h.attention(ctx, req, fmt.Sprintf("the pre-fan-out hook held the request and sent no resume by %s (DSAR_HOOK_HOLD_MAX): nothing was done; check with the system behind DSAR_HOOK_PRE_URL, then retry or close the request",
			hold.Until.UTC().Format(time.RFC3339)))
	}
	call := preHookCall{Event: "pre_fanout", RequestID: req.ID, Type: req.Type, Regulation: req.Regulation,
		ReceivedAt: req.ReceivedAt, DueAt: req.DueAt, ResumePath: ResumePath(req.ID)}
	for _, id := range req.Identities {
		call.Identities = append(call.Identities, hookIdentity{Kind: id.Kind, Value: id.Value, Source: id.Source})
	}
	body, err := json.Marshal(call)
	if err != nil {
		return false, err
	}
	msgID := preHookID(req)
	event := map[string]string{"message_id": msgID, "body_sha256": bodyHash(body)}
	status, answer, err := h.hook.Call(ctx, h.hooks.PreURL, msgID, body, maxHookAnswer)
	if status != 0 {
		event["status"] = fmt.Sprint(status)
	}
	if err != nil {
		rejected, tooLarge := errors.Is(err, webhook.ErrRejected), errors.Is(err, webhook.ErrAnswerTooLarge)
		err = redactErr(err, req.Identities)
		event["error"] = err.Error()
		if rejected {
			event["answer"] = "refused"
			h.audit(ctx, req.ID, "hook_pre_called", event)
			return false, h.attention(ctx, req, fmt.Sprintf("the pre-fan-out hook refused the request (%s): nothing was done; retry or close the request", err))
		}
		if !tooLarge {
			event["answer"] = "failed"
			h.audit(ctx, req.ID, "hook_pre_called", event)
			return false, fmt.Errorf("pre-fan-out hook: %w", err)
		}
	}
	a, err := h.checkAnswer(answer, err)
	if err != nil {
		event["answer"] = "invalid"
		event["error"] = err.Error()
		h.audit(ctx, req.ID, "hook_pre_called", event)
		return false, h.attention(ctx, req, fmt.Sprintf("the pre-fan-out hook's answer is not valid (%s): nothing was done; retry or close the request", err))
	}
	added, _ := dsr.HookIdentities("add_identities", a.AddIdentities) // checked by checkAnswer
	all := dsr.MergeIdentities(req.Identities, added)
	event["added"] = fmt.Sprint(len(all) - len(req.Identities))
	if n := len(all) - len(req.Identities); n > 0 {
		event["added_kinds"] = kindsOf(all[len(req.Identities):])
	}
	if status == http.StatusAccepted || a.Hold {
		event["answer"] = "hold"
		h.audit(ctx, req.ID, "hook_pre_called", event)
		return false, h.hold(ctx, req, all)
	}
	event["answer"] = "proceed"
	h.audit(ctx, req.ID, "hook_pre_called", event)
	if len(all) > len(req.Identities) {
		h.log.InfoContext(ctx, "pre-fan-out hook added identities", "request_id", req.ID, "added", len(all)-len(req.Identities))
	}
	req.Identities = all
	return true, nil
}

// checkAnswer decodes a pre-fan-out hook's answer and checks the
// identities it adds. callErr is the call's ErrAnswerTooLarge, if any.
func (h *FanoutHandler) checkAnswer(answer []byte, callErr error) (PreHookAnswer, error) {
	if callErr != nil {
		return PreHookAnswer{}, callErr
	}
	a, err := DecodeHookAnswer(answer)
	if err != nil {
		return a, err
	}
	if _, err := dsr.HookIdentities("add_identities", a.AddIdentities); err != nil {
		return a, err
	}
	return a, nil
}

// hold records the pre-fan-out hook's hold on req, with all its identities
// (those the hook added included), and schedules a fan-out at the hold's
// deadline, which then finds it resumed or sends it to an agent.
func (h *FanoutHandler) hold(ctx context.Context, req *dsr.Request, all []dsr.Identity) error {
	until := h.opts.Now().Add(h.hooks.HoldMax)
	var ids []dsr.Identity
	var hashes []string
	if len(all) > len(req.Identities) {
		ids, hashes = all, h.index.HashAll(all)
	}
	held, err := h.store.HoldForHook(ctx, req.ID, until, ids, hashes)
	if errors.Is(err, dsr.ErrConflict) {
		return nil // moved, or held, meanwhile
	}
	if err != nil {
		return fmt.Errorf("hold for hook: %w", err)
	}
	h.audit(ctx, req.ID, "hook_pre_held", map[string]string{"until": held.HookHold.Until.Format(time.RFC3339)})
	h.log.InfoContext(ctx, "request held by the pre-fan-out hook", "request_id", req.ID, "until", held.HookHold.Until)
	if err := h.queue.EnqueueFanoutAt(ctx, req.ID, held.HookHold.Until); err != nil {
		h.log.WarnContext(ctx, "fan-out at the hold's deadline not scheduled; the sweep will come back", "request_id", req.ID, "error", err)
	}
	return nil
}

// attention moves a verified request to needs_attention with reason,
// before any job was made.
func (h *FanoutHandler) attention(ctx context.Context, req *dsr.Request, reason string) error {
	_, err := h.store.Transition(ctx, req.ID, dsr.StatusVerified, dsr.StatusNeedsAttention, dsr.Change{
		Actor: actor, Reason: redact(reason, req.Identities), OutcomeHook: h.outcomeHook(),
	})
	if errors.Is(err, dsr.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	h.log.WarnContext(ctx, "request needs attention: pre-fan-out hook", "request_id", req.ID)
	return nil
}

// outcomeHook reports whether requests owe the post-processing hook their
// outcome.
func (h *FanoutHandler) outcomeHook() bool { return h.hooks.PostURL != "" }

// outcomeCall is the body of the post-processing call: a request's outcome
// per system, without personal data.
type outcomeCall struct {
	Event      string          `json:"event"` // "outcome"
	RequestID  string          `json:"request_id"`
	Type       dsr.Type        `json:"type"`
	Regulation dsr.Regulation  `json:"regulation"`
	Status     dsr.Status      `json:"status"`
	ReceivedAt time.Time       `json:"received_at"`
	DueAt      time.Time       `json:"due_at"`
	ClosedAt   *time.Time      `json:"closed_at,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Systems    []systemOutcome `json:"systems"`
}

type systemOutcome struct {
	Connector   string              `json:"connector"`
	Action      dsr.Action          `json:"action"`
	Status      dsr.JobStatus       `json:"status"`
	Records     int64               `json:"records"`
	Collections []collectionOutcome `json:"collections,omitempty"`
}

type collectionOutcome struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Records int64  `json:"records"`
}

// sendOutcome tells the post-processing hook a request's outcome per
// system. Without a PostURL it is dropped. A failure of any kind is
// returned, so the notice stays pending and is retried (by asynq, then by
// the sweep) until delivered; the request's status never depends on it.
func (h *NoticeHandler) sendOutcome(ctx context.Context, r *dsr.Request) error {
	if h.hooks.PostURL == "" {
		h.log.InfoContext(ctx, "outcome dropped: no post-processing hook configured", "request_id", r.ID)
		return nil
	}
	jobs, err := h.store.Jobs(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("outcome: %w", err)
	}
	call := outcomeCall{Event: "outcome", RequestID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, ClosedAt: r.ClosedAt, Systems: []systemOutcome{}}
	if n := len(r.History); n > 0 && r.Status == dsr.StatusNeedsAttention {
		call.Reason = redact(r.History[n-1].Reason, r.Identities)
	}
	for _, j := range jobs {
		s := systemOutcome{Connector: j.Connector, Action: j.Action, Status: j.Status, Records: j.Records}
		for _, c := range j.Collections {
			s.Collections = append(s.Collections, collectionOutcome{Name: c.Name, Outcome: c.Outcome, Records: c.Records})
		}
		call.Systems = append(call.Systems, s)
	}
	body, err := json.Marshal(call)
	if err != nil {
		return err
	}
	// One id per outcome (the status and how far the history had got), the
	// same on every retry of it.
	msgID := fmt.Sprintf("outcome_%s_%d", r.ID, len(r.History))
	if err := h.hook.Send(ctx, h.hooks.PostURL, msgID, body); err != nil {
		return fmt.Errorf("post-processing hook: %w", err)
	}
	h.audit(ctx, r.ID, "hook_post_delivered", map[string]string{"message_id": msgID, "status": string(r.Status),
		"systems": fmt.Sprint(len(call.Systems)), "body_sha256": bodyHash(body)})
	h.log.InfoContext(ctx, "outcome delivered to the post-processing hook", "request_id", r.ID, "status", r.Status)
	return nil
}
