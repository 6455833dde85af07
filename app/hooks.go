package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// hookStore is what the pre-fan-out hook's resume writes.
type hookStore interface {
	ResumeHook(ctx context.Context, id, msgID string, ids []dsr.Identity, hashes []string) (*dsr.Request, error)
}

// ActorHook names the business's hook in audit chains.
const ActorHook = "hook"

// holdWait bounds how long a resume waits for the hold it lifts to be
// recorded: a hook may send its resume as soon as it has answered 202,
// before the worker that read the answer has stored the hold.
const holdWait = 5 * time.Second

// heldRequest reads request id; while it is verified and not yet held
// (the pre-fan-out call may be answered and its hold not yet recorded),
// it reads again every 50 ms, for at most holdWait.
func (s *Service) heldRequest(ctx context.Context, id string) (*dsr.Request, error) {
	deadline := time.NewTimer(holdWait)
	defer deadline.Stop()
	for {
		req, err := s.request(ctx, id)
		if err != nil || req.Status != dsr.StatusVerified || req.HookHold != nil {
			return req, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return req, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ResumeHook lifts the pre-fan-out hook's hold on request id: the hook's
// signed resume (message msgID, its webhook-id, checked by the caller)
// arrived, adding the identities add (checked as dsr.HookIdentities checks
// them: a *dsr.ValidationError, and nothing changes). The fan-out then goes
// on. A request not held, resumed already, or whose hold ended is
// dsr.ErrConflict; nothing changes then either.
func (s *Service) ResumeHook(ctx context.Context, id, msgID string, add []dsr.HookIdentity) (Record, error) {
	added, err := dsr.HookIdentities("add_identities", add)
	if err != nil {
		return Record{}, err
	}
	req, err := s.heldRequest(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if req.Status != dsr.StatusVerified || !req.HookHold.Holding() {
		return Record{}, dsr.Refuse(dsr.ErrConflict, "This request is not held by the pre-fan-out hook (never held, resumed already, or moved on).")
	}
	if !s.now().Before(req.HookHold.Until) {
		return Record{}, dsr.Refuse(dsr.ErrConflict, fmt.Sprintf("The hold on this request ended at %s; it goes to an agent.",
			req.HookHold.Until.UTC().Format(time.RFC3339)))
	}
	var ids []dsr.Identity
	var hashes []string
	all := dsr.MergeIdentities(req.Identities, added)
	fresh := all[len(req.Identities):]
	if len(fresh) > 0 {
		ids, hashes = all, s.index.HashAll(all)
	}
	moved, err := s.store.ResumeHook(ctx, id, msgID, ids, hashes)
	if errors.Is(err, dsr.ErrConflict) {
		return Record{}, dsr.Refuse(dsr.ErrConflict, "This request is not held by the pre-fan-out hook any more.")
	}
	if err != nil {
		return Record{}, err
	}
	event := map[string]string{"message_id": msgID, "added": fmt.Sprint(len(fresh))}
	if len(fresh) > 0 {
		kinds := make([]string, len(fresh))
		for i, f := range fresh {
			kinds[i] = string(f.Kind)
		}
		event["added_kinds"] = strings.Join(kinds, ",")
	}
	s.audit(ctx, id, ActorHook, "hook_pre_resumed", event)
	s.log.InfoContext(ctx, "request resumed by the pre-fan-out hook", "request_id", id, "added", len(fresh))
	if err := s.queue.EnqueueFanout(ctx, id); err != nil {
		s.log.WarnContext(ctx, "resumed request not enqueued; the sweep will retry", "request_id", id, "error", err)
	}
	return s.withJobs(ctx, moved)
}
