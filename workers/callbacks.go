package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	neturl "net/url"

	"github.com/dsar-project/dsar/dsr"
)

// deliverStatus delivers the status req owes the party that passed it by a
// protocol (dsr.NoticeProtocolStatus). what says what the party is owed
// ("" when nothing is to be sent: the notice is dropped); send sends it.
// The notice is then marked sent and the request read again: a change that
// landed meanwhile (a new status, a new due date) made it pending before it
// was marked sent, so what is owed now, if it differs, is sent right after,
// a few times at most (the sweep sends what is still owed).
func (h *NoticeHandler) deliverStatus(ctx context.Context, req *dsr.Request, what func(*dsr.Request) string, send func(*dsr.Request) error) error {
	for range 3 {
		owed := what(req)
		if owed != "" {
			if err := send(req); err != nil {
				return err
			}
		}
		if err := h.store.NoticeSent(ctx, req.ID, dsr.NoticeProtocolStatus); err != nil || owed == "" {
			return err
		}
		now, err := h.store.Request(ctx, req.ID)
		if err != nil {
			return err
		}
		if what(now) == owed {
			return nil
		}
		req = now
	}
	return nil
}

// postStatus POSTs v as JSON to url, a party's status callback (a DRP
// agent's, an OpenDSR controller's), with sign, when not nil, setting the
// signature headers of the body; it returns the answer's status. Errors
// never name the URL (a party's URL may name its user), and the answer's
// body is not read beyond a few kilobytes.
func (h *NoticeHandler) postStatus(ctx context.Context, url string, v any, sign func(http.Header, []byte) error) (int, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the callback URL does not make a request")
	}
	r.Header.Set("Content-Type", "application/json")
	if sign != nil {
		if err := sign(r.Header, body); err != nil {
			return 0, err
		}
	}
	resp, err := h.callbacks.Do(r)
	var ue *neturl.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<10))
	return resp.StatusCode, nil
}
