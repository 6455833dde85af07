package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// TypeReapply lists the members of the segments connectors can list and
// opts out again the suppressed people who came back.
const TypeReapply = "dsar:check:reapply"

// SuppressionSet is the in-memory suppression list the re-application
// checks members against (*suppression.Set).
type SuppressionSet interface {
	Refresh(ctx context.Context) error
	Key() dsr.SuppressionKey
	SuppressedID(id suppression.ID, scope dsr.Scope) bool
	Scopes(hash string) []dsr.Scope
}

// RemovalStore records removals from segments.
type RemovalStore interface {
	AddRemovals(ctx context.Context, removals []dsr.Removal) error
}

// ReapplyConnectors are the connectors the re-application reaches.
type ReapplyConnectors interface {
	Names() []string
	Lookup(name string) (connectors.Connector, bool)
	DataMap(name string) (connectors.DataMap, bool)
}

// ReapplyDeps is what a ReapplyHandler works with. Queue holds the lease
// that keeps re-applications one at a time across processes.
type ReapplyDeps struct {
	Store      RemovalStore
	Set        SuppressionSet
	Connectors ReapplyConnectors
	Queue      *Queue
	Log        *slog.Logger
}

// ReapplyOptions tunes a ReapplyHandler.
type ReapplyOptions struct {
	// Every is how often the scheduler queues a re-application; one that
	// starts less than half of it after the last one ended does nothing.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ReapplyHandler handles TypeReapply.
type ReapplyHandler struct {
	store RemovalStore
	set   SuppressionSet
	conns ReapplyConnectors
	queue *Queue
	log   *slog.Logger
	opts  ReapplyOptions
}

// NewReapplyHandler returns a ReapplyHandler.
func NewReapplyHandler(d ReapplyDeps, o ReapplyOptions) *ReapplyHandler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &ReapplyHandler{store: d.Store, set: d.Set, conns: d.Connectors, queue: d.Queue, log: d.Log, opts: o}
}

// ProcessTask runs one re-application (see Reapply).
func (h *ReapplyHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Reapply(ctx)
	return err
}

// ReapplyCounts says what one re-application did.
type ReapplyCounts struct {
	// Connectors counts the connectors listed to the end; Failed those
	// that failed (each logged, the others listed all the same).
	Connectors, Failed int
	// Members counts the members listed; Suppressed those suppressed
	// under a scope their connector serves; Removed those an opt-out
	// changed something for (the others were gone already), and Records
	// what it changed.
	Members, Suppressed, Removed int
	Records                      int64
	// Skipped says it did nothing: another was running, or one ended less
	// than half an interval ago.
	Skipped bool
}

// reapplyLease is how long the re-application's lock outlives a process
// that died holding it; a live one renews it every third of that.
const reapplyLease = time.Minute

// removalBatch is how many removals are written to the store at a time.
const removalBatch = 500

// reapplyKey names the Redis lock of the re-applications on a queue.
func reapplyKey(queue string) string { return "dsar:reapply:" + queue }

// Reapply brings the suppression set up to date (one store query for the
// changes), then, connector after connector, lists the members of every
// connector that lists segments (connectors.SegmentLister) and opts out:
// a member some of whose identities (normalised, then hashed with the
// set's key) are suppressed, under a scope the connector serves (its
// data_map scopes; none declared: any scope), is opted out again with the
// identities the system holds, and each collection that changed gets a
// dsr.Removal marked Reappeared, written in batches. Nothing is read from
// the store per member. It holds a lock in Redis while it runs, and for
// half of ReapplyOptions.Every after it ends, so runs queued behind one
// another, or by two schedulers, act once. A connector that fails is
// logged and counted, and the others go on; the error then sums them up.
// It logs counts only, never an identity or a hash.
func (h *ReapplyHandler) Reapply(ctx context.Context) (ReapplyCounts, error) {
	var n ReapplyCounts
	l, err := h.queue.takeLease(ctx, reapplyKey(h.queue.name), reapplyLease)
	if err != nil {
		return n, fmt.Errorf("re-application: %w", err)
	}
	if l == nil {
		h.log.DebugContext(ctx, "re-application skipped: another is running or ran moments ago")
		n.Skipped = true
		return n, nil
	}
	defer func() {
		if err := l.end(context.WithoutCancel(ctx), h.opts.Every/2); err != nil {
			h.log.WarnContext(ctx, "re-application lock not given up; it expires by itself", "error", err)
		}
	}()
	if err := h.set.Refresh(ctx); err != nil {
		return n, fmt.Errorf("re-application: refresh the suppression list: %w", err)
	}
	run := newRunID()
	var failures []error
	for _, name := range h.conns.Names() {
		c, _ := h.conns.Lookup(name)
		lister, ok := c.(connectors.SegmentLister)
		if !ok || !connectors.Supports(c, connectors.ActionOptOut) {
			continue
		}
		var declared []dsr.Scope
		if dm, ok := h.conns.DataMap(name); ok {
			declared = dm.Scopes
		}
		cn, err := h.reapplyConnector(ctx, run, name, lister, c.(connectors.OptOuter), declared)
		n.Members += cn.Members
		n.Suppressed += cn.Suppressed
		n.Removed += cn.Removed
		n.Records += cn.Records
		log := h.log.With("connector", name, "members", cn.Members, "suppressed", cn.Suppressed, "removed", cn.Removed, "records", cn.Records)
		if err != nil {
			n.Failed++
			failures = append(failures, fmt.Errorf("connector %s: %w", name, err))
			log.ErrorContext(ctx, "re-application of a connector failed; the next run tries again", "error", err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		n.Connectors++
		if cn.Removed > 0 {
			log.InfoContext(ctx, "re-application removed people who came back")
		}
	}
	h.log.InfoContext(ctx, "re-application done", "connectors", n.Connectors, "failed", n.Failed, "members", n.Members,
		"suppressed", n.Suppressed, "removed", n.Removed, "records", n.Records)
	if len(failures) > 0 {
		return n, fmt.Errorf("re-application: %d connectors failed: %w", len(failures), errors.Join(failures...))
	}
	return n, nil
}

// reapplyConnector re-applies the opt-outs of one connector.
func (h *ReapplyHandler) reapplyConnector(ctx context.Context, run, name string, lister connectors.SegmentLister, opter connectors.OptOuter,
	declared []dsr.Scope) (ReapplyCounts, error) {
	var n ReapplyCounts
	hasher := suppression.NewHasher(h.set.Key())
	// The scopes that keep a member out of this connector (each also
	// matches a deletion's all; suppressedUnder puts the removal down to
	// all then).
	scopes := dsr.Purposes
	if len(declared) > 0 {
		scopes = declared
	}
	var pending []dsr.Removal
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := h.store.AddRemovals(ctx, pending); err != nil {
			return fmt.Errorf("record removals: %w", err)
		}
		pending = pending[:0]
		return nil
	}
	err := lister.EachSegmentMember(ctx, func(_ string, m connectors.Subject) error {
		n.Members++
		scope, ok := h.suppressedUnder(hasher, m, scopes)
		if !ok {
			return nil
		}
		n.Suppressed++
		res, err := opter.OptOut(ctx, m)
		if err != nil {
			return fmt.Errorf("opt out a member again: %w", err)
		}
		if res.Records == 0 {
			return nil // gone meanwhile, or opted out through another segment already
		}
		n.Removed++
		n.Records += res.Records
		now := h.opts.Now().UTC()
		for _, c := range res.Collections {
			if c.Records <= 0 {
				continue
			}
			pending = append(pending, dsr.Removal{
				ID:        "reapply:" + run + ":" + strconv.Itoa(n.Removed) + ":" + name + ":" + c.Name,
				Connector: name, Collection: c.Name, Scope: scope, Records: c.Records, Reappeared: true, At: now,
			})
		}
		if len(pending) >= removalBatch {
			return flush()
		}
		return nil
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return n, err
}

// suppressedUnder returns the first of scopes that one of m's identities is
// suppressed under, or dsr.ScopeAll when that identity's suppression is a
// deletion's. Identities that do not normalise are not suppressed.
func (h *ReapplyHandler) suppressedUnder(hasher *suppression.Hasher, m connectors.Subject, scopes []dsr.Scope) (dsr.Scope, bool) {
	ids := make([]suppression.ID, 0, len(m.Identities))
	for _, id := range m.Identities {
		kind := dsr.Kind(id.Kind)
		v, err := dsr.Normalize(kind, id.Value)
		if err != nil {
			continue
		}
		if sid := hasher.ID(kind, v); sid != (suppression.ID{}) && !slices.Contains(ids, sid) {
			ids = append(ids, sid)
		}
	}
	for _, sc := range scopes {
		for _, id := range ids {
			if h.set.SuppressedID(id, sc) {
				if slices.Contains(h.set.Scopes(id.String()), dsr.ScopeAll) {
					return dsr.ScopeAll, true // a deletion's, first
				}
				return sc, true
			}
		}
	}
	return "", false
}

// newRunID names one re-application in its removals' IDs.
func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
