package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/telemetry"
)

// requestStore is what filing, the agent's actions and the reports need of
// the store.
type requestStore interface {
	CreateRequest(ctx context.Context, r *dsr.Request) error
	CreateRequests(ctx context.Context, reqs []*dsr.Request) []error
	OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error)
	CatchUpAudit(ctx context.Context, r *dsr.Request) error
	Request(ctx context.Context, id string) (*dsr.Request, error)
	Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error)
}

// filing says how file treats an intake beyond what it holds.
type filing struct {
	// duplicates files the intake as the duplicate of an open identical
	// request received within the duplicate window (an agent's filing);
	// never a correction, which two filings may ask differently.
	duplicates bool
}

// file is the one way a request is filed: it builds the request from in
// (held for approval where the policy says, see dsr.ApprovalPolicy.Holds), stores it,
// then dispatches it (its notices, its fan-out when verified), in the
// background when the service has one ([Deps.Background]): the request is
// stored before file returns and before anything is queued; what the queue
// misses, the sweep does. It returns the request as stored.
func (s *Service) file(ctx context.Context, in dsr.Intake, f filing) (_ *dsr.Request, err error) {
	ctx, span := telemetry.Tracer().Start(ctx, "file request", trace.WithAttributes(
		attribute.String("dsar.request.type", string(in.Type)), attribute.String("dsar.regulation", string(in.Regulation))))
	defer func() { telemetry.End(span, err) }()
	if f.duplicates && s.dupWindow > 0 && in.Type != dsr.TypeCorrection {
		// Duplicates share a proven identity: claimed ones prove nothing,
		// and one an open request only resolved is not its subject's.
		hashes := s.index.LookupAll(dsr.Given(in.Identities))
		since := in.ReceivedAt.Add(-s.dupWindow)
		cands, err := s.store.OpenDuplicates(ctx, hashes, []dsr.Type{in.Type}, since)
		if err != nil {
			return nil, err
		}
		if dup := dsr.PickDuplicate(cands, hashes, in.Type, since); dup != nil {
			in.DuplicateOf = dup.ID
		}
	}
	req, err := s.build(in)
	if err != nil {
		return nil, err
	}
	span.SetAttributes(telemetry.RequestID.String(req.ID), telemetry.Status.String(string(req.Status)))
	if err := s.store.CreateRequest(ctx, req); err != nil {
		return nil, err
	}
	s.logFiled(ctx, req)
	// Stored: the caller may answer now. The dispatch goes on in the
	// background (see Background), on a copy of what it reads, as the
	// caller may go on with req.
	queued := dsr.Request{ID: req.ID, Status: req.Status, PendingNotices: slices.Clone(req.PendingNotices)}
	s.background.Go(ctx, func(ctx context.Context) { s.dispatch(ctx, &queued) })
	return req, nil
}

// build makes the request of in, held for approval where it waits for it.
func (s *Service) build(in dsr.Intake) (*dsr.Request, error) {
	req, err := dsr.NewRequest(in, s.index)
	if err != nil {
		return nil, err
	}
	s.holdAtIntake(req)
	return req, nil
}

func (s *Service) logFiled(ctx context.Context, req *dsr.Request) {
	s.log.InfoContext(ctx, "request filed", "request_id", req.ID, "type", req.Type, "regulation", req.Regulation, "source", req.Source,
		"channel", req.Channel, "status", req.Status, "duplicate_of", req.DuplicateOf, "gpc", req.GPC)
}

// fileMany files intakes as file files each (with f), in order, in a
// bounded number of store commands whatever their number: one query for the
// duplicates of the whole batch (an intake repeating an earlier one of the
// batch is its duplicate, as if filed one by one), then
// [mongostore.Store.CreateRequests]. It returns, per intake, the request filed or
// the error that kept it out. A request held for approval at intake has a
// second history entry, whose audit event costs it two more commands.
func (s *Service) fileMany(ctx context.Context, intakes []dsr.Intake, f filing) ([]*dsr.Request, []error) {
	ctx, span := telemetry.Tracer().Start(ctx, "file requests", trace.WithAttributes(attribute.Int("dsar.requests", len(intakes))))
	defer span.End()
	reqs := make([]*dsr.Request, len(intakes))
	errs := make([]error, len(intakes))
	hashes := make([][]string, len(intakes))
	dups := f.duplicates && s.dupWindow > 0
	byHash := map[string][]dsr.Request{} // the candidates sharing each hash
	if dups && len(intakes) > 0 {
		var all []string
		var types []dsr.Type
		since := intakes[0].ReceivedAt
		for i, in := range intakes {
			// Duplicates share a proven identity, as in file.
			hashes[i] = s.index.LookupAll(dsr.Given(in.Identities))
			all = append(all, hashes[i]...)
			if !slices.Contains(types, in.Type) {
				types = append(types, in.Type)
			}
			if in.ReceivedAt.Before(since) {
				since = in.ReceivedAt
			}
		}
		slices.Sort(all)
		found, err := s.store.OpenDuplicates(ctx, slices.Compact(all), types, since.Add(-s.dupWindow))
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return reqs, errs
		}
		for _, r := range found {
			for _, h := range r.ProvenHashes {
				byHash[h] = append(byHash[h], r)
			}
		}
	}
	var stored []*dsr.Request
	var at []int
	for i, in := range intakes {
		if dups && in.Type != dsr.TypeCorrection {
			var cands []dsr.Request
			for _, h := range hashes[i] {
				cands = append(cands, byHash[h]...)
			}
			if dup := dsr.PickDuplicate(cands, hashes[i], in.Type, in.ReceivedAt.Add(-s.dupWindow)); dup != nil {
				in.DuplicateOf = dup.ID
			}
		}
		req, err := s.build(in)
		if err != nil {
			errs[i] = err
			continue
		}
		reqs[i] = req
		stored, at = append(stored, req), append(at, i)
		if dups && slices.Contains(dsr.DuplicateCandidates, req.Status) {
			for _, h := range req.ProvenHashes {
				byHash[h] = append(byHash[h], *req)
			}
		}
	}
	for j, err := range s.store.CreateRequests(ctx, stored) {
		i := at[j]
		if err != nil {
			reqs[i], errs[i] = nil, err
			continue
		}
		s.logFiled(ctx, reqs[i])
	}
	s.dispatchMany(ctx, reqs)
	return reqs, errs
}

// dispatch hands a stored request's work to the queue: its pending notices
// and, when verified, its fan-out. What fails here the sweep does later.
func (s *Service) dispatch(ctx context.Context, req *dsr.Request) {
	if req.Status == dsr.StatusVerified {
		if err := s.queue.EnqueueFanout(ctx, req.ID); err != nil {
			s.log.WarnContext(ctx, "request stored but not enqueued; the sweep will retry", "request_id", req.ID, "error", err)
		}
	}
	s.notices(ctx, req)
}

// notices enqueues the notices pending on req; the sweep sends what fails.
func (s *Service) notices(ctx context.Context, req *dsr.Request) {
	for _, n := range req.PendingNotices {
		if err := s.queue.EnqueueNotice(ctx, req.ID, n); err != nil {
			s.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", req.ID, "notice", n, "error", err)
		}
	}
}

// dispatchMany dispatches the requests filed (the nil ones were not), a few
// at a time: each costs a Redis round trip or two and no store command,
// unless its audit chain is behind its history (held for approval at
// intake), which it then catches up.
func (s *Service) dispatchMany(ctx context.Context, reqs []*dsr.Request) {
	const lanes = 8
	var wg sync.WaitGroup
	next := make(chan *dsr.Request)
	for range lanes {
		wg.Go(func() {
			for r := range next {
				if r.Audited > 0 && r.Audited < len(r.History) {
					if err := s.store.CatchUpAudit(ctx, r); err != nil {
						s.log.WarnContext(ctx, "audit not caught up; the sweep will", "request_id", r.ID, "error", err)
					}
				}
				s.dispatch(ctx, r)
			}
		})
	}
	for _, r := range reqs {
		if r != nil {
			next <- r
		}
	}
	close(next)
	wg.Wait()
}
