package dsr

import (
	"fmt"
	"time"
)

// SourceHook marks an identity the business's pre-fan-out hook added (in
// its answer, or in the resume of a request it held). Connectors act on it
// like a resolved identity; it never makes a request proven (see
// [Request.ProvenHashes]).
const SourceHook = "hook"

// MaxHookIdentities bounds the identities one hook answer, or one resume,
// may add.
const MaxHookIdentities = 20

// HookIdentity is an identity as a hook writes it: a kind (one of [Kinds])
// and a value.
type HookIdentity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// HookIdentities checks and normalises the identities a hook adds, as
// intake checks those given ([NormalizeGiven]), each with Source
// SourceHook. Its error is a *ValidationError naming field[i].kind or
// field[i].value, never quoting a value; nothing is returned then.
func HookIdentities(field string, in []HookIdentity) ([]Identity, error) {
	var ve ValidationError
	if len(in) > MaxHookIdentities {
		ve.Add(field, "at most %d identities, not %d", MaxHookIdentities, len(in))
		return nil, &ve
	}
	out := make([]Identity, 0, len(in))
	for i, h := range in {
		k := Kind(h.Kind)
		if !k.Valid() {
			ve.Add(fmt.Sprintf("%s[%d].kind", field, i), "must be one of %s", kindList())
			continue
		}
		v, err := NormalizeGiven(k, h.Value)
		if err != nil {
			ve.Add(fmt.Sprintf("%s[%d].value", field, i), "%s", err)
			continue
		}
		out = append(out, Identity{Kind: k, Value: v, Source: SourceHook})
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return MergeIdentities(nil, out), nil
}

// HookHold is a pre-fan-out hook's hold on a verified request: the fan-out
// waits until the hook's signed resume arrives, or until Until passes, when
// the request needs attention. The legal clock keeps running meanwhile.
type HookHold struct {
	At    time.Time `bson:"at" json:"at"`
	Until time.Time `bson:"until" json:"until"`
	// ResumedAt is set by the resume; ResumeID is its webhook-id.
	ResumedAt *time.Time `bson:"resumed_at,omitempty" json:"resumed_at,omitempty"`
	ResumeID  string     `bson:"resume_id,omitempty" json:"-"`
}

// Holding reports whether the hold h still stands (not resumed). A nil
// hold does not.
func (h *HookHold) Holding() bool { return h != nil && h.ResumedAt == nil }

// NoticeHookOutcome is the notice, to the business's post-processing hook
// and not to the subject, of a request's outcome per system. It becomes due
// with every move of a request that carries OutcomeHook into completed or
// needs_attention ([OutcomeDue]), and is sent from the notice outbox, so it
// is retried until delivered.
const NoticeHookOutcome = "hook_outcome"

// OutcomeDue reports whether a request moving to status to owes the
// post-processing hook its outcome.
func OutcomeDue(to Status) bool {
	return to == StatusCompleted || to == StatusNeedsAttention
}
