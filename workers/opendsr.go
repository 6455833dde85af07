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
	for range 3 {
		if h.openDSR == nil || req.OpenDSR == nil || len(req.OpenDSR.Callbacks) == 0 {
			if h.openDSR == nil {
				h.log.WarnContext(ctx, "opendsr status not sent: this service has no OpenDSR certificate (DSAR_OPENDSR_*)", "request_id", req.ID)
			}
			return h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus)
		}
		if _, allowed := h.openDSRCon[req.OpenDSR.Controller]; h.openDSRCon != nil && !allowed {
			h.log.WarnContext(ctx, "opendsr status not sent: the controller is no longer in DSAR_OPENDSR_CONTROLLERS", "request_id", req.ID, "controller", req.OpenDSR.Controller)
			return h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus)
		}
		st := opendsr.StatusOf(req.Status)
		// Every URL is called, whichever failed before it: one that
		// never answers must not keep the status from the others.
		var failed []error
		for i, url := range req.OpenDSR.Callbacks {
			cb := opendsr.Callback{ControllerID: req.OpenDSR.Controller, ExpectedCompletionTime: req.DueAt.UTC().Format(time.RFC3339),
				StatusCallbackURL: url, SubjectRequestID: req.OpenDSR.SubjectRequestID, RequestStatus: st}
			if err := h.postOpenDSR(ctx, url, cb); err != nil {
				failed = append(failed, fmt.Errorf("opendsr status callback %d: %w", i, err))
			}
		}
		if len(failed) > 0 {
			return errors.Join(failed...)
		}
		if err := h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "opendsr status delivered to the controller", "request_id", req.ID, "controller", req.OpenDSR.Controller, "status", st)
		now, err := h.store.Request(ctx, req.ID)
		if err != nil {
			return err
		}
		if opendsr.StatusOf(now.Status) == st {
			return nil
		}
		req = now
	}
	return nil
}

// postOpenDSR POSTs cb, signed, to url; a 2xx answer delivers it.
func (h *NoticeHandler) postOpenDSR(ctx context.Context, url string, cb opendsr.Callback) error {
	code, err := h.postStatus(ctx, url, cb, h.openDSR.SignHeaders)
	if err == nil && code/100 != 2 {
		err = fmt.Errorf("the controller answered %d", code)
	}
	return err
}
