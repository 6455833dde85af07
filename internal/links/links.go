// Package links knows dsar's public links: the portal API's paths for a
// request's status and its export download, the portal page that verifies
// a request, the agent API's path of a request, and the names of the
// sources a request is filed through. The
// HTTP surfaces route on these paths and the workers put them in emails, so
// both call this package and neither spells a path out.
package links

import (
	"net/url"
	"strconv"
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
