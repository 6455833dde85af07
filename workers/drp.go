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
	what := func(r *dsr.Request) string {
		if r.DRP == nil || r.DRP.Callback == "" {
			return ""
		}
		if _, trusted := h.drpAgents[r.DRP.Agent]; h.drpAgents != nil && !trusted {
			h.log.WarnContext(ctx, "drp status not sent: the agent is no longer in the directory", "request_id", r.ID, "agent", r.DRP.Agent)
			return ""
		}
		return fmt.Sprintf("%+v", drp.StatusOf(r, h.notices.PortalURL))
	}
	return h.deliverStatus(ctx, req, what, func(r *dsr.Request) error {
		st := drp.StatusOf(r, h.notices.PortalURL)
		if err := h.postDRP(ctx, r.DRP.Callback, st); err != nil {
			return fmt.Errorf("drp status callback: %w", err)
		}
		h.log.InfoContext(ctx, "drp status delivered to the agent", "request_id", r.ID, "agent", r.DRP.Agent, "status", st.Status)
		return nil
	})
}

// postDRP POSTs st to url; only a 200 answer delivers it.
func (h *NoticeHandler) postDRP(ctx context.Context, url string, st drp.Status) error {
	code, err := h.postStatus(ctx, url, st, nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("the agent answered %d, not 200", code)
	}
	return err
}
