package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// RegulationType is the kind of regulation filed.
type RegulationType string

// The regulation types this package files.
const (
	// SuppressWithDelete deletes the userId's data from Segment, its
	// warehouses and the destinations that support deletion, and blocks
	// new data for it at intake.
	SuppressWithDelete RegulationType = "SUPPRESS_WITH_DELETE"
	// DeleteOnly deletes without blocking new data.
	DeleteOnly RegulationType = "DELETE_ONLY"
	// SuppressOnly blocks new data without deleting what Segment holds.
	SuppressOnly RegulationType = "SUPPRESS_ONLY"
	// Unsuppress lifts a suppression: new data is collected again.
	Unsuppress RegulationType = "UNSUPPRESS"
)

// Status is a regulation's overall status, or one destination's.
type Status string

// The statuses Segment documents. IN_PROGRESS is an older name of RUNNING
// that some responses still carry.
const (
	StatusInitialized    Status = "INITIALIZED"
	StatusRunning        Status = "RUNNING"
	StatusInProgress     Status = "IN_PROGRESS"
	StatusFinished       Status = "FINISHED"
	StatusPartialSuccess Status = "PARTIAL_SUCCESS"
	StatusFailed         Status = "FAILED"
	StatusNotSupported   Status = "NOT_SUPPORTED"
	StatusInvalid        Status = "INVALID"
)

// MaxSubjectIDs is the most userIds one regulation may name.
const MaxSubjectIDs = 5000

// Regulation is a regulation as GET /regulations/{id} shows it.
type Regulation struct {
	ID            string         `json:"id"`
	WorkspaceID   string         `json:"workspaceId"`
	OverallStatus Status         `json:"overallStatus"`
	CreatedAt     string         `json:"createdAt"`
	FinishedAt    string         `json:"finishedAt,omitempty"`
	StreamStatus  []StreamStatus `json:"streamStatus"`
}

// StreamStatus is the status of one source's stream and its destinations.
type StreamStatus struct {
	ID                string              `json:"id"`
	DestinationStatus []DestinationStatus `json:"destinationStatus"`
}

// DestinationStatus is how one destination carried out a regulation.
type DestinationStatus struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Status     Status `json:"status"`
	ErrString  string `json:"errString"`
	FinishedAt string `json:"finishedAt"`
}

// Client calls the Public API's Deletion and Suppression endpoints of one
// workspace (the token's).
type Client struct {
	// Base is the API's base URL: https://api.segmentapis.com, or
	// https://eu1.api.segmentapis.com for a workspace in the EU.
	Base string
	// Token is the Public API token, sent as a Bearer token.
	Token string
	// HTTP makes the calls, following no redirect (a 3xx is an error:
	// see connectors.NoRedirects); nil: http.DefaultClient.
	HTTP *http.Client
}

// callTimeout bounds one call, unless the caller's deadline is sooner.
const callTimeout = 30 * time.Second

// Regulate files a workspace regulation of type typ for userIds (1 to
// MaxSubjectIDs) and returns its id. Segment carries it out later: read it
// with Regulation.
func (c *Client) Regulate(ctx context.Context, typ RegulationType, userIDs []string) (string, error) {
	if len(userIDs) == 0 || len(userIDs) > MaxSubjectIDs {
		return "", connectors.Permanent(fmt.Errorf("a regulation names 1 to %d userIds, not %d", MaxSubjectIDs, len(userIDs)))
	}
	body, err := json.Marshal(map[string]any{"regulationType": typ, "subjectType": "USER_ID", "subjectIds": userIDs})
	if err != nil {
		return "", err
	}
	var out struct {
		Data struct {
			RegulateID string `json:"regulateId"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodPost, "/regulations", body, &out); err != nil {
		return "", fmt.Errorf("create regulation %s: %w", typ, err)
	}
	if !handlePattern.MatchString(out.Data.RegulateID) {
		return "", connectors.Permanent(fmt.Errorf("create regulation %s: Segment answered without a regulation id", typ))
	}
	return out.Data.RegulateID, nil
}

// Regulation reads the regulation called id.
func (c *Client) Regulation(ctx context.Context, id string) (Regulation, error) {
	var out struct {
		Data struct {
			Regulation *Regulation `json:"regulation"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/regulations/"+url.PathEscape(id), nil, &out); err != nil {
		return Regulation{}, fmt.Errorf("get regulation %s: %w", id, err)
	}
	if out.Data.Regulation == nil {
		return Regulation{}, connectors.Permanent(fmt.Errorf("get regulation %s: Segment answered without a regulation", id))
	}
	return *out.Data.Regulation, nil
}

// ListOne reads the workspace's latest regulation, if any: a call that
// needs the token to be accepted and allowed to read regulations.
func (c *Client) ListOne(ctx context.Context) error {
	var out struct {
		Data struct {
			Regulations []Regulation `json:"regulations"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/regulations?pagination.count=1", nil, &out); err != nil {
		return fmt.Errorf("list regulations: %w", err)
	}
	return nil
}

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// do makes one call and decodes a 200's body into out. Its errors are as
// the worker needs them: a 429 (or a 503 that says when) is a
// connectors.RetryAfter, 5xx and the network transient, other answers
// permanent.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, rd)
	if err != nil {
		return connectors.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/vnd.segment.v1+json, application/json")
	req.Header.Set("User-Agent", "dsar-segment/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.segment.v1+json")
	}
	// No redirect is followed: the Public API answers none, and a followed
	// one would send the POST as a GET to a host of the redirect's
	// choosing, whose answer would pass for Segment's (a regulation filed,
	// or FINISHED). A 3xx is then a permanent error.
	resp, err := connectors.NoRedirects(c.HTTP).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and URL
		}
		return fmt.Errorf("%s %s: %w", method, c.Base, err) // the network: transient
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(data, out); err != nil {
			return connectors.Permanent(fmt.Errorf("the answer is not the documented JSON: %w", err))
		}
		return nil
	}
	return statusError(resp, data, time.Now())
}

// apiError is the Public API's error body.
type apiError struct {
	Errors []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Data    struct {
			MsBeforeNext int64 `json:"msBeforeNext"`
		} `json:"data"`
	} `json:"errors"`
}

// maxRetryAfter bounds the pause Segment may ask for.
const maxRetryAfter = 24 * time.Hour

// statusError is the error of an answer other than 200.
func statusError(resp *http.Response, body []byte, now time.Time) error {
	code := resp.StatusCode
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	msg := fmt.Sprintf("Segment answered %d %s", code, http.StatusText(code))
	if len(ae.Errors) > 0 {
		e := ae.Errors[0]
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "..."
		}
		msg += ": " + strings.TrimSpace(e.Type+" "+e.Message)
	}
	err := errors.New(msg)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := retryDelay(resp.Header, ae, now); ok {
			return connectors.RetryAfter(d, err)
		}
		if code == http.StatusTooManyRequests {
			return connectors.RetryAfter(time.Minute, err)
		}
		return err
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default: // 400 (a bad request), 401 and 403 (the token), 404 (no such regulation)
		return connectors.Permanent(err)
	}
}

// retryDelay reads when Segment says to come back: Retry-After (seconds
// or an HTTP date), X-RateLimit-Reset (an RFC 5322 date),
// X-Regulation-RateLimit-Quota-Reset (ISO 8601), or the body's
// msBeforeNext, the first that is given.
func retryDelay(h http.Header, ae apiError, now time.Time) (time.Duration, bool) {
	clamp := func(d time.Duration) (time.Duration, bool) { return min(max(d, 0), maxRetryAfter), true }
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return clamp(time.Duration(n) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return clamp(t.Sub(now))
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		for _, layout := range []string{time.RFC1123Z, time.RFC1123, http.TimeFormat} {
			if t, err := time.Parse(layout, v); err == nil {
				return clamp(t.Sub(now))
			}
		}
	}
	if v := h.Get("X-Regulation-RateLimit-Quota-Reset"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return clamp(t.Sub(now))
		}
	}
	for _, e := range ae.Errors {
		if e.Data.MsBeforeNext > 0 {
			return clamp(time.Duration(e.Data.MsBeforeNext) * time.Millisecond)
		}
	}
	return 0, false
}
