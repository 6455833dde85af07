// Package segment is the connector for Twilio Segment: it erases and opts
// out a person by filing a workspace regulation through the Public API's
// Deletion and Suppression endpoints, and polls the regulation until
// Segment reports it done. It cannot export: the Public API reads no
// person's events or profile.
//
// An erasure files SUPPRESS_WITH_DELETE (or DELETE_ONLY, by the erase
// setting), an opt-out SUPPRESS_ONLY, each for every userId the subject has
// (the identity kinds of the user_id setting), at most MaxSubjectIDs per
// regulation. Segment answers with a regulation id at once and does the
// work later (suppression usually within 24 hours, deletion within 30
// days), so the action returns connectors.Pending with that id as handle
// and the worker polls GET /regulations/{id} (connectors.Poller) until the
// overall status is final. FINISHED completes the job; PARTIAL_SUCCESS,
// FAILED, NOT_SUPPORTED and INVALID fail it for good with the status of
// every destination in the error, so the request goes in front of an agent
// and is never completed silently. An opt-in (the person consents again,
// and no scope the connector serves is still suppressed in dsar's
// registry) files UNSUPPRESS, polled the same way.
//
// Segment counts no records: an action reports the workspace and each
// destination as a collection with 0 records, its outcome and the
// regulation's id.
//
// The vendor's documentation:
//   - https://docs.segmentapis.com/tag/Deletion-and-Suppression (create
//     workspace regulation, get regulation, the statuses)
//   - https://segment.com/docs/privacy/user-deletion-and-suppression/
//     (regulation types, 5,000 userIds per call, 110,000 users per 30 days)
//   - https://docs.segmentapis.com/tag/Rate-Limits (429, X-RateLimit-*)
//   - https://docs.segmentapis.com/tag/Errors (the {"errors": [...]} body)
package segment

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Connector is a configured segment connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name      string
	token     string
	base      string
	kinds     []string
	erase     RegulationType
	actions   map[connectors.Action]bool
	pollEvery time.Duration
	client    *http.Client
	log       *slog.Logger
}

var (
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.OptOuter = (*Connector)(nil)
	_ connectors.OptInner = (*Connector)(nil)
	_ connectors.Poller   = (*Connector)(nil)
	_ connectors.Scoped   = (*Connector)(nil)
	_ connectors.Checker  = (*Connector)(nil)
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file lets the connector do a.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// Client returns the connector's Public API client.
func (c *Connector) Client() *Client {
	return &Client{Base: c.base, Token: c.token, HTTP: c.client}
}

// Check reads the workspace's regulations: Segment is reachable and the
// token may read regulations. Whether it may also create them is not
// checked: that would file one.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	err := c.Client().ListOne(ctx)
	if err != nil {
		err = fmt.Errorf("segment %s: %w", c.name, err)
	}
	return []connectors.Check{{What: "Public API reachable, token allowed to read regulations", Err: err}}
}

// Erase files the erase setting's regulation for the subject's userIds.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.regulate(ctx, connectors.ActionErase, c.erase, s)
}

// OptOut files a SUPPRESS_ONLY regulation for the subject's userIds.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.regulate(ctx, connectors.ActionOptOut, SuppressOnly, s)
}

// OptIn files an UNSUPPRESS regulation for the subject's userIds: Segment
// collects their data again. Lifting a userId that is not suppressed is
// harmless (Segment finishes the regulation with nothing to do).
func (c *Connector) OptIn(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.regulate(ctx, connectors.ActionOptIn, Unsuppress, s)
}

// Collection is the name results give the workspace; each destination is
// "destination:" and its name.
const Collection = "segment"

// userIDs returns the subject's values of the connector's kinds, sorted,
// without duplicates.
func (c *Connector) userIDs(s connectors.Subject) []string {
	var ids []string
	for _, k := range c.kinds {
		ids = append(ids, s.Values(k)...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// regulate files a regulation of type typ for the subject's userIds and
// answers Pending on its id.
func (c *Connector) regulate(ctx context.Context, a connectors.Action, typ RegulationType, s connectors.Subject) (connectors.Result, error) {
	ids := c.userIDs(s)
	if len(ids) == 0 {
		var r connectors.Result
		r.NotSearched(Collection, c.kinds)
		return r, nil
	}
	id, err := c.Client().Regulate(ctx, typ, ids)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("segment %s: %s: %w", c.name, a, scrub(err, ids))
	}
	c.log.InfoContext(ctx, "segment regulation filed", "action", a, "regulation", id, "type", typ, "user_ids", len(ids))
	return connectors.Result{Pending: &connectors.Pending{
		Handle: id, PollAfter: c.pollEvery,
		Unanswered: fmt.Sprintf("Segment did not finish regulation %s (%s) before the job's wait deadline", id, typ),
	}}, nil
}

// handlePattern is the form of a regulation id this connector accepts as
// a handle (Segment's are KSUIDs: 27 letters and digits).
var handlePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Poll reads the regulation named by handle: still Pending while Segment
// works on it, the result once it is FINISHED, and a permanent error that
// gives every destination's status when it ended otherwise.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, _ connectors.RecordWriter) (connectors.Result, error) {
	if _, ok := outcomes[a]; !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("segment %s: %s: not an action of this type", c.name, a))
	}
	if !handlePattern.MatchString(handle) {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("segment %s: %s: %q is not a regulation id", c.name, a, handle))
	}
	reg, err := c.Client().Regulation(ctx, handle)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("segment %s: %s: %w", c.name, a, err)
	}
	log := c.log.With("action", a, "regulation", handle, "status", reg.OverallStatus)
	switch reg.OverallStatus {
	case StatusInitialized, StatusRunning, StatusInProgress:
		log.DebugContext(ctx, "segment regulation not finished")
		return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: c.pollEvery,
			Unanswered: fmt.Sprintf("Segment did not finish regulation %s before the job's wait deadline (last status %s%s)", handle, reg.OverallStatus, reg.destinations())}}, nil
	case StatusFinished:
		log.InfoContext(ctx, "segment regulation finished")
		return reg.result(a), nil
	case StatusPartialSuccess, StatusFailed, StatusNotSupported, StatusInvalid:
		log.WarnContext(ctx, "segment regulation did not succeed")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("segment %s: %s: regulation %s ended %s, so the request needs attention: check it in Segment (Settings > End User Privacy)%s",
			c.name, a, handle, reg.OverallStatus, reg.destinations()))
	default:
		log.WarnContext(ctx, "segment regulation in an unknown status")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("segment %s: %s: regulation %s is in status %q, which this connector does not know%s",
			c.name, a, handle, reg.OverallStatus, reg.destinations()))
	}
}

// outcomes are what a finished regulation did, by the action that filed it.
var outcomes = map[connectors.Action]string{connectors.ActionErase: "deleted", connectors.ActionOptOut: "suppressed", connectors.ActionOptIn: "unsuppressed"}

// result is the Result of a FINISHED regulation: the workspace and every
// destination as collections, with 0 records (Segment counts none).
func (r Regulation) result(a connectors.Action) connectors.Result {
	var res connectors.Result
	res.Collections = append(res.Collections, connectors.CollectionResult{Name: Collection, Outcome: outcomes[a],
		Note: fmt.Sprintf("regulation %s finished; Segment reports no record counts", r.ID)})
	for _, d := range r.allDestinations() {
		outcome := outcomes[a]
		if d.Status != StatusFinished {
			outcome = strings.ToLower(string(d.Status))
		}
		res.Collections = append(res.Collections, connectors.CollectionResult{Name: "destination:" + d.label(), Outcome: outcome,
			Note: "regulation " + r.ID + ": " + string(d.Status)})
	}
	return res
}

// allDestinations returns the destinations of every stream, in order.
func (r Regulation) allDestinations() []DestinationStatus {
	var out []DestinationStatus
	for _, s := range r.StreamStatus {
		out = append(out, s.DestinationStatus...)
	}
	return out
}

// destinations writes the status of every destination for an error or a
// note: "; destinations: Amplitude (d1) FINISHED, Braze (d2) FAILED". The
// destinations' error strings are left out: they may quote the userId.
func (r Regulation) destinations() string {
	ds := r.allDestinations()
	if len(ds) == 0 {
		return "; no destination reported"
	}
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		parts = append(parts, d.label()+" "+string(d.Status))
	}
	return "; destinations: " + strings.Join(parts, ", ")
}

// label names a destination: its name and id, or either.
func (d DestinationStatus) label() string {
	switch {
	case d.Name != "" && d.ID != "":
		return d.Name + " (" + d.ID + ")"
	case d.Name != "":
		return d.Name
	}
	return d.ID
}

// scrub replaces every userId in err's text with "[userId]", so that an
// error Segment wrote about the request quotes no subject.
func scrub(err error, ids []string) error {
	msg := err.Error()
	clean := msg
	for _, id := range ids {
		if id != "" {
			clean = strings.ReplaceAll(clean, id, "[userId]")
		}
	}
	if clean == msg {
		return err
	}
	return connectors.Retext(err, clean)
}
