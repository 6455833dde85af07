package workers

import (
	"context"
	"slices"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// recordRemovals records what a succeeded opt-out or erase job removed
// from its connector's collections, for the segmentation report: one
// dsr.Removal per collection that changed and per scope the job served
// (for an erase job, only the collections that hold segments, those its
// connector's SegmentLister names; none when it lists none),
// with ID "<job id>:<collection>:<scope>", so a job recorded twice counts
// once. An erase job serves dsr.ScopeAll; an opt-out, the scopes of its
// request (dsr.Request.SuppressedScopes) that its connector serves (its
// data_map scopes; none declared: all of them). Other jobs remove
// nothing. It is best effort: the job has succeeded, and a failure is
// logged.
func (h *JobHandler) recordRemovals(ctx context.Context, job *dsr.Job, res connectors.Result) {
	if h.removals == nil || (job.Action != dsr.ActionOptOut && job.Action != dsr.ActionErase) {
		return
	}
	// An opt-out changes only what holds segments; an erasure, every
	// collection: only its segment collections count.
	var segments []string
	if job.Action == dsr.ActionErase {
		c, ok := h.conns.Lookup(job.Connector)
		lister, lists := c.(connectors.SegmentLister)
		if !ok || !lists {
			return
		}
		segments = lister.Segments()
	}
	var changed []connectors.CollectionResult
	for _, c := range res.Collections {
		if c.Records > 0 && (job.Action == dsr.ActionOptOut || slices.Contains(segments, c.Name)) {
			changed = append(changed, c)
		}
	}
	if len(changed) == 0 {
		return
	}
	scopes := []dsr.Scope{dsr.ScopeAll}
	if job.Action == dsr.ActionOptOut {
		req, err := h.store.Request(ctx, job.RequestID)
		if err != nil {
			h.jobLog(job).WarnContext(ctx, "removals not recorded: request not read", "error", err)
			return
		}
		scopes = req.SuppressedScopes()
		if dm, ok := h.conns.DataMap(job.Connector); ok && len(dm.Scopes) > 0 {
			scopes = slices.DeleteFunc(scopes, func(s dsr.Scope) bool { return !slices.Contains(dm.Scopes, s) })
		}
	}
	now := h.opts.Now().UTC()
	var out []dsr.Removal
	for _, c := range changed {
		for _, s := range scopes {
			out = append(out, dsr.Removal{ID: job.ID + ":" + c.Name + ":" + string(s), Connector: job.Connector, Collection: c.Name,
				Scope: s, Records: c.Records, RequestID: job.RequestID, At: now})
		}
	}
	if err := h.removals.AddRemovals(ctx, out); err != nil {
		h.jobLog(job).WarnContext(ctx, "removals not recorded; the segmentation report will miss them", "removals", len(out), "error", err)
	}
}
