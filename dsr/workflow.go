package dsr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNoExtension means the regulation allows no extension of this request's
// deadline, or it was extended already.
var ErrNoExtension = errors.New("no extension allowed")

// Extend gives an open request the one extension of its deadline its
// regulation allows, with a reason, in one conditional update (fenced by the
// current due date, so two agents cannot both extend it); the person is
// told (NoticeExtended), and the reminders start over for the new date.
// ErrNoExtension when the regulation allows none, it was extended before or
// it is past due, ErrConflict when the request is closed or changed
// meanwhile.
func (s *Store) Extend(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Extension != nil {
		return nil, fmt.Errorf("extend request %s: extended on %s already: %w", id, r.Extension.At.Format(time.DateOnly), ErrNoExtension)
	}
	to, ok := Extended(r.Regulation, r.Type, r.DueAt)
	if !ok {
		return nil, fmt.Errorf("extend request %s: %s allows no extension for %s: %w", id, r.Regulation, r.Type, ErrNoExtension)
	}
	if r.Status.Closed() {
		return nil, fmt.Errorf("extend request %s: it is %s: %w", id, r.Status, ErrConflict)
	}
	if s.now().After(r.DueAt) {
		// The law wants the extension decided, and the person told, within
		// the first period.
		return nil, fmt.Errorf("extend request %s: past its due date: %w", id, ErrNoExtension)
	}
	now := s.now()
	out, err := s.updateFenced(ctx, id,
		bson.D{{Key: "due_at", Value: r.DueAt}, {Key: "extension", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: OpenStatuses}}}},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "due_at", Value: to}, {Key: "updated_at", Value: now},
				{Key: "extension", Value: Extension{By: actor, At: now, Reason: reason, From: r.DueAt}},
			}},
			{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: NoticeExtended}}},
			// The reminders count down to the new due date.
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
	if err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	return out, nil
}

// RetryFailedJobs sets the failed jobs of a request back to pending with
// their attempts counted afresh (and the remote work they waited on, if
// any, forgotten: the action starts again), and returns their ids. A job's
// RecordsIncomplete stays: its failed outcome recorded it.
func (s *Store) RetryFailedJobs(ctx context.Context, requestID string) ([]string, error) {
	filter := bson.D{{Key: "request_id", Value: requestID}, {Key: "status", Value: JobFailed}}
	jobs, err := s.jobs.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find failed jobs: %w", err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := jobs.All(ctx, &ids); err != nil {
		return nil, fmt.Errorf("find failed jobs: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	_, err = s.jobs.UpdateMany(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: JobPending}, {Key: "attempts", Value: 0}, {Key: "error", Value: ""}, {Key: "updated_at", Value: s.now()}}},
		// A job that waited on a remote system starts the action afresh.
		{Key: "$unset", Value: bson.D{{Key: "finished_at", Value: ""}, {Key: "handle", Value: ""}, {Key: "poll_at", Value: ""}, {Key: "wait_until", Value: ""}, {Key: "waits", Value: ""}, {Key: "recorded", Value: ""}}},
	})
	if err != nil {
		return nil, fmt.Errorf("retry failed jobs: %w", err)
	}
	out := make([]string, len(ids))
	for i, j := range ids {
		out[i] = j.ID
	}
	return out, nil
}

// ApprovalPolicy says which verified requests wait for an agent's approval
// before they are processed. The zero value approves nothing.
type ApprovalPolicy struct {
	rules map[string]bool
}

// ParseApprovalPolicy reads a comma-separated list of request types, each
// optionally narrowed to a regulation ("deletion", "access:ccpa"), or
// "none".
func ParseApprovalPolicy(s string) (ApprovalPolicy, error) {
	p := ApprovalPolicy{rules: map[string]bool{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || part == "none" {
			continue
		}
		t, reg, narrowed := strings.Cut(part, ":")
		if !Type(t).Valid() {
			return p, fmt.Errorf("approval policy: %q: unknown request type (want one of access, deletion, opt_out)", t)
		}
		if narrowed && !Regulation(reg).Valid() {
			return p, fmt.Errorf("approval policy: %q: unknown regulation", reg)
		}
		p.rules[part] = true
	}
	return p, nil
}

// Requires reports whether a request of type t under reg waits for
// approval.
func (p ApprovalPolicy) Requires(t Type, reg Regulation) bool {
	return p.rules[string(t)] || p.rules[string(t)+":"+string(reg)]
}
