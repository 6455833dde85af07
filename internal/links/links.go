// Package links knows dsar's public links: the portal API's paths for a
// request's status and its export download, the portal page that verifies
// a request, the agent API's path of a request, the signed links of manual
// task pages, and the names of the sources a request is filed through. The
// HTTP surfaces route on these paths and the workers put them in emails, so
// both call this package and neither spells a path out.
package links

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Portal is the prefix of the portal API's routes.
const Portal = "/v1/portal"

// Requests is the portal API's collection of requests: POST files one, and
// each request's status is under it (see StatusPath).
const Requests = Portal + "/requests"

// AgentRequests is the agent API's collection of requests.
const AgentRequests = "/v1/requests"

// AgentRequestPath is the agent API's path of request id.
func AgentRequestPath(id string) string { return AgentRequests + "/" + id }

// Sources a request is filed through (dsr.Request.Source).
const (
	// SourcePortal: the person filed it on the privacy portal.
	SourcePortal = "portal"
	// SourceGPC: the portal filed it for a Global Privacy Control signal.
	SourceGPC = "gpc"
	// SourceAgentAPI: an agent filed it through the agent API, for the
	// person.
	SourceAgentAPI = "agent_api"
)

// FiledBySubject reports whether a request of source came from the person
// themselves (the portal, or their browser's GPC signal), rather than from
// someone filing it for them.
func FiledBySubject(source string) bool {
	return source == SourcePortal || source == SourceGPC
}

// Signer signs an export download link (dsr.LinkSigner does).
type Signer interface {
	Sign(id string, exp time.Time) string
}

// StatusPath is the portal API's path of request id: its status, read
// with a status token.
func StatusPath(id string) string { return Requests + "/" + id }

// ExportPath is the path of the signed download link of request id's export,
// which works until exp (its Unix seconds are signed).
func ExportPath(id string, exp time.Time, s Signer) string {
	return StatusPath(id) + "/export?" + url.Values{"expires": {strconv.FormatInt(exp.Unix(), 10)}, "sig": {s.Sign(id, exp)}}.Encode()
}

// Status is the absolute URL of StatusPath under publicURL, where the API is
// reached from outside (e.g. https://privacy.example.com).
func Status(publicURL, id string) string { return publicURL + StatusPath(id) }

// Export is the absolute URL of ExportPath under publicURL.
func Export(publicURL, id string, exp time.Time, s Signer) string {
	return publicURL + ExportPath(id, exp, s)
}

// Verify is the portal page's link that verifies request id with token,
// under portalURL. The token goes in the fragment, which never reaches a
// server's log. Without a portalURL there is no link: "".
func Verify(portalURL, id, token string) string {
	if portalURL == "" {
		return ""
	}
	return portalURL + "/verify#" + url.Values{"request": {id}, "token": {token}}.Encode()
}

// TasksPrefix is the path under which the task pages are: the owner of a
// manual task answers it at TasksPrefix + token (see TaskToken).
const TasksPrefix = "/tasks/"

// Verifier checks a signature a Signer made (dsr.LinkSigner does).
type Verifier interface {
	Valid(id string, exp time.Time, sig string, now time.Time) bool
}

// The errors of ParseTaskToken.
var (
	// ErrLinkInvalid: the token is malformed or its signature does not
	// hold (tampered with, or signed under another key).
	ErrLinkInvalid = errors.New("link not valid")
	// ErrLinkExpired: the token is genuine but past its expiry.
	ErrLinkExpired = errors.New("link expired")
)

// TaskToken returns the token of a task page's link: payload (opaque here,
// no personal data; it travels in the URL in base64url), its expiry, and a
// signature over both. It is URL-safe.
func TaskToken(payload string, exp time.Time, s Signer) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return p + "." + strconv.FormatInt(exp.Unix(), 10) + "." + s.Sign(taskSigned(p), exp)
}

// taskSigned is what a task token's signature covers beside its expiry; the
// prefix keeps it apart from any request id.
func taskSigned(p string) string { return "task\x00" + p }

// TaskPath is the path of the task page of token.
func TaskPath(token string) string { return TasksPrefix + token }

// Task is the absolute URL of the task page for payload under publicURL,
// signed by s until exp.
func Task(publicURL, payload string, exp time.Time, s Signer) string {
	return publicURL + TaskPath(TaskToken(payload, exp, s))
}

// ParseTaskToken returns the payload and expiry of a task token whose
// signature holds. A token that is malformed or whose signature fails is
// ErrLinkInvalid; a genuine one at or past its expiry at now is
// ErrLinkExpired.
func ParseTaskToken(token string, v Verifier, now time.Time) (payload string, exp time.Time, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 4096 {
		return "", time.Time{}, ErrLinkInvalid
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || sec <= 0 {
		return "", time.Time{}, ErrLinkInvalid
	}
	exp = time.Unix(sec, 0)
	// Checked at the epoch first, so a genuine token past its expiry is
	// told apart from a forged one.
	if !v.Valid(taskSigned(parts[0]), exp, parts[2], time.Unix(0, 0)) {
		return "", time.Time{}, ErrLinkInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", time.Time{}, ErrLinkInvalid
	}
	if !now.Before(exp) {
		return "", exp, ErrLinkExpired
	}
	return string(b), exp, nil
}
