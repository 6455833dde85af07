package workers

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/drp"
)

// sendDRPStatus POSTs the status of req, a request an authorised agent
// filed through the Data Rights Protocol, to its status_callback, and marks
// the notice sent once the agent answered 200 (any other answer is an error:
// the notice stays pending and is retried). An agent no longer in the
// directory is sent nothing: the notice is dropped. The status sent is the
// request's when it is sent, the protocol asking for the most recent one;
// a change that lands while it is sent is sent right after.
func (h *NoticeHandler) sendDRPStatus(ctx context.Context, req *dsr.Request) error {
	for range 3 {
		if req.DRP == nil || req.DRP.Callback == "" {
			return h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus)
		}
		if _, trusted := h.drpAgents[req.DRP.Agent]; h.drpAgents != nil && !trusted {
			h.log.WarnContext(ctx, "drp status not sent: the agent is no longer in the directory", "request_id", req.ID, "agent", req.DRP.Agent)
			return h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus)
		}
		st := drp.StatusOf(req, h.notices.PortalURL)
		if err := h.postDRP(ctx, req.DRP.Callback, st); err != nil {
			return fmt.Errorf("drp status callback: %w", err)
		}
		if err := h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "drp status delivered to the agent", "request_id", req.ID, "agent", req.DRP.Agent, "status", st.Status)
		// A change made while this was sent added the notice before it
		// was marked sent: the status it owes goes now.
		now, err := h.store.Request(ctx, req.ID)
		if err != nil {
			return err
		}
		if drp.StatusOf(now, h.notices.PortalURL) == st {
			return nil
		}
		req = now
	}
	return nil
}

// postDRP POSTs st to url; only a 200 answer delivers it.
func (h *NoticeHandler) postDRP(ctx context.Context, url string, st drp.Status) error {
	code, err := h.postStatus(ctx, url, st, nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("the agent answered %d, not 200", code)
	}
	return err
}
