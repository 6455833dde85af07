package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
)

// MaxSuppressionChecks is the most identities one bulk check takes.
const MaxSuppressionChecks = 10_000

// SingleCheckMaxAge is how stale the suppression set may be for a check of
// one identity: it refreshes at most this often, however often such
// checks come. A bulk check always refreshes first.
const SingleCheckMaxAge = 100 * time.Millisecond

// ErrSuppressionsOff: this process keeps no suppression set (Deps.Suppressions).
var ErrSuppressionsOff = errors.New("suppression checks are not available in this process")

// SuppressionQuery is one identity to check: either Kind and Value, in
// clear (normalised as intake does, dsr.NormalizeGiven: a value intake
// would refuse, such as a lookalike address, is invalid, never "not
// suppressed"; then hashed with the suppression key), or Hash, its suppression hash computed by the caller with that key
// ("kind:" and 64 hex digits; see dsr.SuppressionKey.Hash).
type SuppressionQuery struct {
	Kind  dsr.Kind `json:"kind,omitempty"`
	Value string   `json:"value,omitempty"`
	Hash  string   `json:"hash,omitempty"`
}

// SuppressionCheck answers a bulk check: the indexes (into the queries) of
// the identities suppressed under Scope, and of those that could not be
// checked, each with a reason that names its index and never its value.
type SuppressionCheck struct {
	Scope      dsr.Scope         `json:"scope"`
	Checked    int               `json:"checked"`
	Suppressed []int             `json:"suppressed"`
	Invalid    []InvalidIdentity `json:"invalid"`
}

// InvalidIdentity is a query a check could not use.
type InvalidIdentity struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// SuppressionStatus answers a check of one identity.
type SuppressionStatus struct {
	// Suppressed says whether the identity is suppressed under the scope
	// asked about (by an entry under it or under dsr.ScopeAll; for
	// dsr.ScopeAll, by an entry under any scope: suppression.Set.Suppressed).
	Suppressed bool `json:"suppressed"`
	// Scopes are every scope the identity is suppressed under.
	Scopes []dsr.Scope `json:"scopes"`
}

// checkChunk is the fewest identities a goroutine of a bulk check takes:
// below it, starting one costs more than it saves.
const checkChunk = 512

// CheckSuppressions reports which of qs are suppressed under scope. It
// catches the suppression set up with the store first (one store query,
// whatever the number of identities; see suppression.Set.Refresh), so a
// check sees every suppression written before it began; then it hashes
// and looks up the identities in memory, over up to GOMAXPROCS goroutines.
// A query it cannot use (no or an unknown kind, a value that does not
// normalise, a malformed hash) is listed in Invalid and does not fail the
// others; a bad scope, or more than MaxSuppressionChecks queries, is a
// *dsr.ValidationError.
func (s *Service) CheckSuppressions(ctx context.Context, scope dsr.Scope, qs []SuppressionQuery) (SuppressionCheck, error) {
	var verr dsr.ValidationError
	if !scope.Valid() {
		verr.Add("scope", "must be one of sale_share, marketing, profiling, all")
	}
	if len(qs) > MaxSuppressionChecks {
		verr.Add("identities", "at most %d identities per check, got %d: split the list", MaxSuppressionChecks, len(qs))
	}
	if err := verr.Err(); err != nil {
		return SuppressionCheck{}, err
	}
	if s.suppressions == nil {
		return SuppressionCheck{}, ErrSuppressionsOff
	}
	if err := s.suppressions.Refresh(ctx); err != nil {
		return SuppressionCheck{}, fmt.Errorf("check suppressions: %w", err)
	}
	ids := make([]suppression.ID, len(qs))
	reasons := make([]string, len(qs))
	hit := make([]bool, len(qs))
	key := s.suppressions.Key()
	check := func(from, to int) {
		h := suppression.NewHasher(key)
		for i := from; i < to; i++ {
			var field, problem string
			if ids[i], field, problem = identify(h, &qs[i]); field != "" {
				reasons[i] = "identities[" + strconv.Itoa(i) + "]." + field + ": " + problem
			}
		}
		s.suppressions.Check(ids[from:to], scope, hit[from:to])
	}
	workers := min(runtime.GOMAXPROCS(0), (len(qs)+checkChunk-1)/checkChunk)
	if workers <= 1 {
		check(0, len(qs))
	} else {
		var wg sync.WaitGroup
		per := (len(qs) + workers - 1) / workers
		for from := 0; from < len(qs); from += per {
			wg.Go(func() { check(from, min(from+per, len(qs))) })
		}
		wg.Wait()
	}
	out := SuppressionCheck{Scope: scope, Checked: len(qs), Suppressed: []int{}, Invalid: []InvalidIdentity{}}
	for i := range qs {
		switch {
		case reasons[i] != "":
			out.Invalid = append(out.Invalid, InvalidIdentity{Index: i, Reason: reasons[i]})
		case hit[i]:
			out.Suppressed = append(out.Suppressed, i)
		}
	}
	return out, nil
}

// CheckSuppression reports whether q is suppressed under scope, and under
// which scopes. The set it reads is at most SingleCheckMaxAge older than
// the call. A bad scope or query is a *dsr.ValidationError.
func (s *Service) CheckSuppression(ctx context.Context, scope dsr.Scope, q SuppressionQuery) (SuppressionStatus, error) {
	var verr dsr.ValidationError
	if !scope.Valid() {
		verr.Add("scope", "must be one of sale_share, marketing, profiling, all")
	}
	if s.suppressions == nil {
		if err := verr.Err(); err != nil {
			return SuppressionStatus{}, err
		}
		return SuppressionStatus{}, ErrSuppressionsOff
	}
	id, field, problem := identify(suppression.NewHasher(s.suppressions.Key()), &q)
	if field != "" {
		verr.Add(field, "%s", problem)
	}
	if err := verr.Err(); err != nil {
		return SuppressionStatus{}, err
	}
	if err := s.suppressions.RefreshWithin(ctx, SingleCheckMaxAge); err != nil {
		return SuppressionStatus{}, fmt.Errorf("check suppression: %w", err)
	}
	hash := id.String()
	return SuppressionStatus{Suppressed: s.suppressions.SuppressedID(id, scope), Scopes: orEmpty(s.suppressions.Scopes(hash))}, nil
}

func orEmpty(scopes []dsr.Scope) []dsr.Scope {
	if scopes == nil {
		return []dsr.Scope{}
	}
	return scopes
}

// identify returns the ID of q, or the field at fault and what is wrong
// with it, never quoting the value.
func identify(h *suppression.Hasher, q *SuppressionQuery) (id suppression.ID, field, problem string) {
	switch {
	case q.Hash != "" && (q.Kind != "" || q.Value != ""):
		return id, "hash", "give either kind and value, or hash, not both"
	case q.Hash != "":
		id, ok := suppression.ParseID(q.Hash)
		if !ok {
			return id, "hash", `must be a suppression hash: a kind (` + Join(dsr.Kinds) + `), ":" and 64 lower-case hex digits`
		}
		return id, "", ""
	case q.Kind == "":
		return id, "kind", "give kind and value, or hash"
	case !q.Kind.Valid():
		return id, "kind", "must be one of " + Join(dsr.Kinds)
	}
	v, err := dsr.NormalizeGiven(q.Kind, q.Value)
	if err != nil {
		return id, "value", err.Error()
	}
	return h.ID(q.Kind, v), "", ""
}

// SuppressionKey is the key suppression hashes are under, for an admin to
// give to the pipelines and partners that hash identities themselves.
func (s *Service) SuppressionKey() (dsr.SuppressionKey, error) {
	if s.suppressions == nil {
		return dsr.SuppressionKey{}, ErrSuppressionsOff
	}
	return s.suppressions.Key(), nil
}
