// Package app is dsar's application layer: filing requests (by an agent, in
// bulk, from the portal, as an appeal or a GPC-linked opt-out), approval and
// every agent action, exports and reports. Each is a method of [Service] that
// takes typed input and returns (result, error), with the domain's sentinel
// errors (dsr.ErrNotFound, dsr.ErrConflict, ...) for the surface to map; it
// records the audit events and hands work to the queue (dispatch) itself,
// once. The HTTP surfaces (handlers/...), and any page or protocol endpoint
// to come, call it; none re-implements it, and none of it needs gin.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
)

// Enqueuer hands work to the workers: a request's fan-out, a job, a notice
// to its subject. What it fails to hand on, the sweep does later.
type Enqueuer interface {
	EnqueueFanout(ctx context.Context, requestID string) error
	EnqueueJob(ctx context.Context, jobID string) error
	EnqueueNotice(ctx context.Context, requestID, notice string) error
}

// Store is what the application keeps requests in: today's *mongostore.Store. It
// is made of one small interface per area of the application, each declared
// beside the code that uses it.
type Store interface {
	requestStore
	agentStore
	exportStore
	portalStore
	hookStore
	answerStore
	segmentStore
	consentStore
	suppressionListStore
	preferenceStore
}

// Deps is what the application needs. Store, Queue, Index and Log are
// required; the rest have working zero values.
type Deps struct {
	Store Store
	Queue Enqueuer
	// Index is the blind index of identities.
	Index *dsr.BlindIndex
	// Links signs the portal's download links.
	Links *dsr.LinkSigner
	// Calendar counts business days for due dates (holidays).
	Calendar dsr.Calendar
	// Approval says which verified requests wait for an agent's approval
	// before processing (DSAR_APPROVAL_REQUIRED); appeals always do. The
	// zero value: none.
	Approval dsr.ApprovalPolicy
	// FourEyes says which requests the agent who filed them may not
	// approve (another must); the zero value: any.
	FourEyes dsr.ApprovalPolicy
	// DuplicateWindow is how far back an open identical request makes an
	// agent's new one a duplicate; 0 turns the check off.
	DuplicateWindow time.Duration
	// IsAgent reports whether name is an agent a request can be assigned
	// to (an API key with the agent or admin role); nil: none is.
	IsAgent func(name string) bool
	// CorrectFields, when set, names the fields the configured connectors
	// can correct (connectors.Registry.CorrectFields): a correction of any
	// other is refused at intake. Nil: the process does not load the
	// connectors, and any well-formed field is accepted (a field no
	// connector owns then sends the request to needs_attention at its
	// fan-out, with nothing changed).
	CorrectFields func() []string
	// Portal tunes the portal's filing and verification.
	Portal PortalOptions
	// Suppressions is the process's suppression set, which checks read;
	// nil: checks answer ErrSuppressionsOff.
	Suppressions *suppression.Set
	// DRP configures the Data Rights Protocol (off when empty).
	DRP DRPOptions
	// OpenDSR configures the OpenDSR processor side (off when empty).
	OpenDSR OpenDSROptions
	// Background runs the dispatch of a request filed one at a time
	// after its filer is answered (see [Background]); nil: before.
	Background *Background
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Service is the application. Its methods are safe for concurrent use.
type Service struct {
	store        Store
	queue        Enqueuer
	index        *dsr.BlindIndex
	links        *dsr.LinkSigner
	calendar     dsr.Calendar
	approval     dsr.ApprovalPolicy
	fourEyes     dsr.ApprovalPolicy
	dupWindow    time.Duration
	isAgent      func(string) bool
	correct      func() []string
	portal       PortalOptions
	suppressions *suppression.Set
	drp          DRPOptions
	openDSR      OpenDSROptions
	background   *Background
	now          func() time.Time
	log          *slog.Logger
}

// New returns the application over d.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: d.Store, queue: d.Queue, index: d.Index, links: d.Links, calendar: d.Calendar, approval: d.Approval,
		fourEyes: d.FourEyes, dupWindow: d.DuplicateWindow, isAgent: d.IsAgent, correct: d.CorrectFields, portal: d.Portal, suppressions: d.Suppressions, drp: d.DRP, openDSR: d.OpenDSR, background: d.Background, now: d.Now, log: d.Log}
}

// correctFields returns the fields the connectors can correct, or nil when
// they are not known here.
func (s *Service) correctFields() []string {
	if s.correct == nil {
		return nil
	}
	if f := s.correct(); f != nil {
		return f
	}
	return []string{}
}

// Now is the application's clock.
func (s *Service) Now() time.Time { return s.now() }
