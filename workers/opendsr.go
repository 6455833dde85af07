package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/opendsr"
)

// sendOpenDSRStatus POSTs the status of req, a request a controller passed
// by OpenDSR, to every one of its status_callback_urls, signed with the
// processor's certificate (section 8.6), unless its controller is no
// longer allowed, and marks the notice sent once
// each answered 2xx; otherwise it stays pending and is retried (each URL is
// called at least once, some more than once). Without a signer (this
// service is no longer a processor) nothing is sent. A change that lands
// while it is sent is sent right after.
func (h *NoticeHandler) sendOpenDSRStatus(ctx context.Context, req *dsr.Request) error {
	what := func(r *dsr.Request) string {
		switch {
		case h.openDSR == nil:
			h.log.WarnContext(ctx, "opendsr status not sent: this service has no OpenDSR certificate (DSAR_OPENDSR_*)", "request_id", r.ID)
			return ""
		case r.OpenDSR == nil || len(r.OpenDSR.Callbacks) == 0:
			return ""
		}
		if _, allowed := h.openDSRCon[r.OpenDSR.Controller]; h.openDSRCon != nil && !allowed {
			h.log.WarnContext(ctx, "opendsr status not sent: the controller is no longer in DSAR_OPENDSR_CONTROLLERS", "request_id", r.ID, "controller", r.OpenDSR.Controller)
			return ""
		}
		return opendsr.StatusOf(r.Status) + " " + r.DueAt.UTC().Format(time.RFC3339)
	}
	return h.deliverStatus(ctx, req, what, func(r *dsr.Request) error {
		st := opendsr.StatusOf(r.Status)
		var results string
		var count *int64
		if r.Status == dsr.StatusCompleted {
			jobs, err := h.store.Jobs(ctx, r.ID)
			if err != nil {
				return fmt.Errorf("opendsr status: the jobs: %w", err)
			}
			results, count = opendsr.Results(r, jobs, h.openDSRURL)
		}
		// Every URL is called, whichever failed before it: one that
		// never answers must not keep the status from the others.
		var failed []error
		for i, url := range r.OpenDSR.Callbacks {
			cb := opendsr.Callback{ControllerID: r.OpenDSR.Controller, ExpectedCompletionTime: r.DueAt.UTC().Format(time.RFC3339),
				StatusCallbackURL: url, SubjectRequestID: r.OpenDSR.SubjectRequestID, RequestStatus: st, ResultsURL: results, ResultsCount: count}
			if err := h.postOpenDSR(ctx, url, cb); err != nil {
				failed = append(failed, fmt.Errorf("opendsr status callback %d: %w", i, err))
			}
		}
		if len(failed) > 0 {
			return errors.Join(failed...)
		}
		h.log.InfoContext(ctx, "opendsr status delivered to the controller", "request_id", r.ID, "controller", r.OpenDSR.Controller, "status", st)
		return nil
	})
}

// postOpenDSR POSTs cb, signed, to url; a 2xx answer delivers it.
func (h *NoticeHandler) postOpenDSR(ctx context.Context, url string, cb opendsr.Callback) error {
	code, err := h.postStatus(ctx, url, cb, h.openDSR.SignHeaders)
	if err == nil && code/100 != 2 {
		err = fmt.Errorf("the controller answered %d", code)
	}
	return err
}
