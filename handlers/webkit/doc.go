// Package webkit is the pages' shared toolkit: what the privacy portal
// (package portalpage) and the agent console (package consolepage) have in
// common. It renders server-side HTML (html/template over one layout,
// everything embedded), translates from message catalogues chosen by a
// switch or Accept-Language, brands pages from settings, sets the pages'
// security headers (a strict Content-Security-Policy: no inline script or
// style, no framing, nothing cached), guards forms against cross-site posts
// (CSRF), and serves the static assets. Pages work without JavaScript; the
// scripts under /assets only enhance them.
package webkit
