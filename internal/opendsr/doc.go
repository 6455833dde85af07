// Package opendsr is the wire format of OpenDSR 2.0 (opengdpr/OpenDSR,
// specification.md), by which controllers pass data subject requests to
// processors: the request and its identities, the processor's answers
// (creation, status, cancellation), its status callbacks, the discovery
// document, the errors, and the signatures that bind answers and callbacks
// to the processor's certificate (X-OpenDSR-Signature: base64 of a
// signature of the SHA-256 digest of the body). The OpenGDPR names of
// earlier versions (X-OpenGDPR-*) are read too, as section 10.1 requires.
//
// [StatusOf] maps a request's status onto OpenDSR's; the application maps
// the rest.
package opendsr
