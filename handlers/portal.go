package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// PortalMaxBodyBytes is the largest body the public portal accepts (64 KiB).
const PortalMaxBodyBytes = 64 << 10

// PortalOptions tunes the public portal API.
type PortalOptions struct {
	// MaxTries is how many verification attempts a request gets; the last
	// wrong one denies it.
	MaxTries int
	// MaxPending is how many open requests of one type one email may have;
	// a further identical submission is merged into the newest.
	MaxPending int
	// LinkTTL is how long the download links the status view gives work.
	LinkTTL time.Duration
	// GPCLastUpdate is the lastUpdate of /.well-known/gpc.json.
	GPCLastUpdate string
}

// portalAPI serves data subjects: no API key, a status token per request.
type portalAPI struct {
	app      *app.Service
	calendar dsr.Calendar
	store    *mongostore.Store
	queue    Enqueuer
	index    *dsr.BlindIndex
	links    *dsr.LinkSigner
	limits   *Limits
	log      *slog.Logger
	now      func() time.Time
	opts     PortalOptions
}

// portalBody is the body of POST /v1/portal/requests.
type portalBody struct {
	Type         string      `json:"type"`
	Regulation   string      `json:"regulation"`
	Jurisdiction string      `json:"jurisdiction"`
	Subject      subjectBody `json:"subject"`
	Agent        *agentBody  `json:"agent"`
}

type agentBody struct {
	Name             string `json:"name"`
	Email            string `json:"email"`
	SignedPermission bool   `json:"signed_permission"`
}

// intake validates a portal submission: the regulation given or derived from
// the jurisdiction, an email (which the verification goes to), and the
// authorised agent's details when one files.
func (b portalBody) intake() (dsr.Intake, error) {
	var ve dsr.ValidationError
	in := dsr.Intake{Type: dsr.Type(b.Type)}
	switch {
	case b.Type == "":
		ve.Add("type", "required: one of %s", join(dsr.Types))
	case !in.Type.Valid():
		ve.Add("type", "must be one of %s", join(dsr.Types))
	}
	switch {
	case b.Regulation != "":
		if in.Regulation = dsr.Regulation(b.Regulation); !in.Regulation.Valid() {
			ve.Add("regulation", "must be one of %s", join(dsr.Regulations))
		}
		if b.Jurisdiction != "" {
			ve.Add("jurisdiction", "give regulation or jurisdiction, not both")
		}
	case b.Jurisdiction != "":
		r, ok := dsr.RegulationFor(b.Jurisdiction)
		if !ok {
			ve.Add("jurisdiction", "no regulation is known for this jurisdiction; give regulation instead (one of %s)", join(dsr.Regulations))
		}
		in.Regulation = r
	default:
		ve.Add("regulation", "required, or a jurisdiction such as DE or US-CA: one of %s", join(dsr.Regulations))
	}
	if b.Subject.Email == nil {
		ve.Add("subject.email", "required: the verification and every notice go there")
	}
	in.Identities = b.Subject.Identities(&ve, func(k dsr.Kind) string {
		if k != dsr.KindEmail && in.Type != dsr.TypeOptOut {
			// Only the email is proven (by the code sent to it): other
			// identities are kept but not acted on.
			return dsr.SourceClaimed
		}
		return dsr.SourceSubject
	})
	if a := b.Agent; a != nil {
		email, err := dsr.NormalizeGiven(dsr.KindEmail, a.Email)
		if err != nil {
			ve.Add("agent.email", "%s", err)
		}
		// The name is told to the person in the verification email: one
		// line of visible text, quoted there as the agent's words.
		name := strings.TrimSpace(a.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			ve.Add("agent.name", "required, at most 200 characters")
		} else {
			ve.Text("agent.name", name, dsr.OneLine)
		}
		if !a.SignedPermission {
			ve.Add("agent.signed_permission", "must be true: an agent files only with the consumer's signed permission (11 CCR 7063)")
		}
		in.Agent = &dsr.Agent{Name: name, Email: email, SignedPermission: a.SignedPermission}
	}
	return in, ve.Err()
}

// portalCreated answers a submission.
type portalCreated struct {
	ID         string         `json:"id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	Status     dsr.Status     `json:"status"`
	ReceivedAt time.Time      `json:"received_at"`
	DueAt      time.Time      `json:"due_at"`
	// StatusToken is shown once: only its hash is kept.
	StatusToken string `json:"status_token"`
	// VerificationRequired says a code was emailed to the subject.
	VerificationRequired bool   `json:"verification_required"`
	GPC                  bool   `json:"gpc"`
	LinkedRequestID      string `json:"linked_request_id,omitempty"`
}

// portalMerged answers a submission that joined an open identical request.
type portalMerged struct {
	Merged bool   `json:"merged"`
	Detail string `json:"detail"`
}

// submit files a request from the portal. Opt-outs need no proof of identity
// (11 CCR 7026) and go straight to processing; the others wait for the
// emailed code. A Sec-GPC: 1 header is recorded, and with another type it
// also files a linked opt-out.
func (p *portalAPI) submit(c *gin.Context) {
	var body portalBody
	if !decodeJSON(c, &body, PortalMaxBodyBytes) {
		return
	}
	in, err := body.intake()
	if err != nil {
		writeError(c, p.log, err)
		return
	}
	p.file(c, in, sourcePortal)
}

// Sources of portal requests.
const (
	sourcePortal = "portal"
	sourceGPC    = "gpc"
)

// file stores a portal intake (after the rate limit per identity and the
// merge of duplicates) and answers 202.
func (p *portalAPI) file(c *gin.Context, in dsr.Intake, source string) {
	ctx := c.Request.Context()
	first := in.Identities[0]
	hash := p.index.Hash(first.Kind, first.Value)
	limitKey := hash
	if first.Kind == dsr.KindEmail {
		limitKey = p.index.Hash(first.Kind, mailboxKey(first.Value))
	}
	if !p.limits.perIdentity(c, limitKey) {
		return
	}
	token, err := dsr.NewToken()
	if err != nil {
		writeError(c, p.log, err)
		return
	}
	// A GPC signal is honoured whatever becomes of the submission.
	in.GPC = c.GetHeader("Sec-GPC") == "1"
	if in.GPC && in.Type != dsr.TypeOptOut {
		linked, ok := p.gpcOptOut(c, in, token)
		if !ok {
			return
		}
		in.LinkedTo = linked
	}
	if in.Type == dsr.TypeOptOut {
		// Opt-outs are processed at once: a duplicate joins the open one
		// filed with the same identities (never one that only resolved
		// them). Exactly the same: an opt-out needs no proof, so what an
		// open one was filed with is its filer's word, and one filed with
		// Ada's customer id and Eve's email must not absorb Ada's signal
		// (its merge notice would go to Eve). A second opt-out is harmless.
		open, err := p.store.OpenIdentical(ctx, hash, in.Type, dsr.ActiveStatuses, p.opts.MaxPending)
		if err != nil {
			writeError(c, p.log, err)
			return
		}
		given := p.index.HashAll(dsr.Given(in.Identities))
		open = slices.DeleteFunc(open, func(r dsr.Request) bool { return !sameSet(r.ProvenHashes, given) })
		if len(open) > 0 && len(open) >= p.opts.MaxPending {
			p.merge(c, open[0].ID)
			return
		}
	} else if !p.supersede(c, hash, in.Type) {
		return
	}
	in.Source, in.FiledBy, in.StatusToken, in.Calendar = source, "portal", token, p.calendar
	in.Notify = in.Identities[0].Kind == dsr.KindEmail
	in.ReceivedAt = p.now()
	in.Status, in.Notices = dsr.StatusVerifying, []string{dsr.NoticeReceipt, dsr.NoticeVerify}
	if in.Type == dsr.TypeOptOut {
		in.Status, in.Notices = dsr.StatusVerified, []string{dsr.NoticeReceipt}
	}
	req, err := dsr.NewRequest(in, p.index)
	if err != nil {
		writeError(c, p.log, err)
		return
	}
	if err := p.store.CreateRequest(ctx, req); err != nil {
		writeError(c, p.log, err)
		return
	}
	p.dispatch(ctx, req)
	p.log.InfoContext(ctx, "request filed", "request_id", req.ID, "type", req.Type, "regulation", req.Regulation, "source", source, "gpc", req.GPC)
	c.Header("Location", "/v1/portal/requests/"+req.ID)
	c.JSON(http.StatusAccepted, portalCreated{
		ID: req.ID, Type: req.Type, Regulation: req.Regulation, Status: req.Status, ReceivedAt: req.ReceivedAt, DueAt: req.DueAt,
		StatusToken: token, VerificationRequired: req.Status == dsr.StatusVerifying, GPC: req.GPC, LinkedRequestID: req.LinkedTo,
	})
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// dispatch hands a stored request's work to the queue: its notices and, when
// verified, its fan-out. What fails here the sweep does later.
func (p *portalAPI) dispatch(ctx context.Context, req *dsr.Request) {
	for _, n := range req.PendingNotices {
		if err := p.queue.EnqueueNotice(ctx, req.ID, n); err != nil {
			p.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", req.ID, "notice", n, "error", err)
		}
	}
	if req.Status == dsr.StatusVerified {
		if err := p.queue.EnqueueFanout(ctx, req.ID); err != nil {
			p.log.WarnContext(ctx, "request stored but not enqueued; the sweep will retry", "request_id", req.ID, "error", err)
		}
	}
}

// supersede keeps at most MaxPending unverified requests of a type per
// email: the oldest beyond that is cancelled for the new one. Unverified
// requests are never merged into (whoever filed one may not own the
// mailbox); duplicates are merged when the new one is verified.
func (p *portalAPI) supersede(c *gin.Context, hash string, t dsr.Type) bool {
	ctx := c.Request.Context()
	open, err := p.store.Unverified(ctx, hash, t, p.opts.MaxPending)
	if err != nil {
		writeError(c, p.log, err)
		return false
	}
	for i := p.opts.MaxPending - 1; i >= 0 && i < len(open); i++ {
		if open[i].Source != sourcePortal {
			continue // an agent's filing is the agent's to close
		}
		_, err := p.store.Transition(ctx, open[i].ID, dsr.StatusVerifying, dsr.StatusCancelled, dsr.Change{Actor: "portal", Reason: "superseded by a newer submission"})
		if err != nil && !errors.Is(err, dsr.ErrConflict) {
			writeError(c, p.log, err)
			return false
		}
	}
	return true
}

// merge answers a duplicate opt-out: nothing new is stored, the open
// request gets a merge notice (which mails the person a fresh status token,
// so only the mailbox's owner can follow it), and the answer says no more.
func (p *portalAPI) merge(c *gin.Context, openID string) {
	if !p.noteMerge(c, openID) {
		return
	}
	c.JSON(http.StatusAccepted, portalMerged{Merged: true,
		Detail: "An identical request is already open for this identity, so nothing new was filed. If it was filed here, its details were emailed to its address."})
}

// noteMerge tells the owner of request id that a duplicate joined it. It
// returns false when it has written an error.
func (p *portalAPI) noteMerge(c *gin.Context, id string) bool {
	ctx := c.Request.Context()
	if err := p.store.AddNotice(ctx, id, dsr.NoticeMerged); err != nil {
		writeError(c, p.log, err)
		return false
	}
	if err := p.queue.EnqueueNotice(ctx, id, dsr.NoticeMerged); err != nil {
		p.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", id, "notice", dsr.NoticeMerged, "error", err)
	}
	p.log.InfoContext(ctx, "duplicate merged", "request_id", id)
	return true
}

// gpcOptOut files the opt-out a GPC signal adds to a request of another
// type, and returns its id. It can be followed with the same status token as
// the submission; it sends no notices of its own.
func (p *portalAPI) gpcOptOut(c *gin.Context, in dsr.Intake, token string) (string, bool) {
	ctx := c.Request.Context()
	// Always a new one, never an open opt-out found by identity: its id
	// would tell the caller that one exists. A second opt-out is harmless.
	// An opt-out needs no proof (11 CCR 7026): every identity given counts.
	ids := make([]dsr.Identity, len(in.Identities))
	for i, id := range in.Identities {
		ids[i] = dsr.Identity{Kind: id.Kind, Value: id.Value, Source: dsr.SourceSubject}
	}
	oo := dsr.Intake{Type: dsr.TypeOptOut, Regulation: in.Regulation, Source: sourceGPC, FiledBy: "portal", Status: dsr.StatusVerified,
		Identities: ids, ReceivedAt: p.now(), GPC: true, StatusToken: token, Calendar: p.calendar}
	req, err := dsr.NewRequest(oo, p.index)
	if err == nil {
		err = p.store.CreateRequest(ctx, req)
	}
	if err != nil {
		writeError(c, p.log, err)
		return "", false
	}
	p.dispatch(ctx, req)
	p.log.InfoContext(ctx, "GPC opt-out filed", "request_id", req.ID)
	return req.ID, true
}

// gpcBody is the body of POST /v1/portal/gpc.
type gpcBody struct {
	Regulation string      `json:"regulation"`
	Subject    subjectBody `json:"subject"`
}

// gpc records a Global Privacy Control signal a site forwards for a known
// person as an opt-out of sale and sharing (11 CCR 7025): no proof of
// identity, processed at once. The call must carry Sec-GPC: 1.
func (p *portalAPI) gpc(c *gin.Context) {
	if c.GetHeader("Sec-GPC") != "1" {
		var ve dsr.ValidationError
		ve.Add("Sec-GPC", `header required, exactly "1": this endpoint records Global Privacy Control signals`)
		writeError(c, p.log, &ve)
		return
	}
	var body gpcBody
	if !decodeJSON(c, &body, PortalMaxBodyBytes) {
		return
	}
	if body.Regulation == "" {
		body.Regulation = string(dsr.RegulationCCPA)
	}
	in, err := createBody{Type: string(dsr.TypeOptOut), Regulation: body.Regulation, Subject: body.Subject}.validate()
	if err != nil {
		writeError(c, p.log, err)
		return
	}
	p.file(c, in, sourceGPC)
}

// wellKnownGPC serves /.well-known/gpc.json: this site honours GPC.
func (p *portalAPI) wellKnownGPC(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"gpc": true, "lastUpdate": p.opts.GPCLastUpdate})
}

// verifyBody is the body of POST /v1/portal/requests/{id}/verify: the code
// or the link token, not both.
type verifyBody struct {
	Code  string `json:"code"`
	Token string `json:"token"`
}

var codePattern = regexp.MustCompile(`^[0-9]{6}$`)

// verify checks an emailed code or link token, presented with the request's
// status token: so nobody who merely knows the id can spend its tries, and
// the request ends up bound to a token its mailbox's owner holds. Each
// attempt is counted before it is checked, so no more than MaxTries are ever
// checked; the last wrong one denies the request and the person is told.
// Once verified, only the presented status token follows the request, and a
// verified open duplicate (same proven email) absorbs it. Neither secret is
// logged.
func (p *portalAPI) verify(c *gin.Context) {
	owner, ok := p.authorize(c)
	if !ok {
		return
	}
	var body verifyBody
	if !decodeJSON(c, &body, PortalMaxBodyBytes) {
		return
	}
	var ve dsr.ValidationError
	switch {
	case (body.Code == "") == (body.Token == ""):
		ve.Add("code", "give the 6-digit code or the link's token, one of the two")
	case body.Code != "" && !codePattern.MatchString(body.Code):
		ve.Add("code", "must be the 6 digits of the emailed code")
	case body.Token != "" && len(body.Token) > 100:
		ve.Add("token", "is not a token this service sent")
	}
	if err := ve.Err(); err != nil {
		writeError(c, p.log, err)
		return
	}
	ctx := c.Request.Context()
	req, err := p.store.ReserveTry(ctx, owner.ID, p.opts.MaxTries)
	switch {
	case errors.Is(err, dsr.ErrLocked):
		problem(c, Problem{Type: problemVerifyLocked, Title: "Verification locked", Status: http.StatusLocked,
			Detail: "No verification tries are left for this request."})
		return
	case errors.Is(err, dsr.ErrNoCode):
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "No code has been sent for this request yet; wait for the email and try again."})
		return
	case errors.Is(err, dsr.ErrConflict):
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "This request is not waiting for verification."})
		return
	case err != nil:
		writeError(c, p.log, err)
		return
	}
	v := req.Verification
	method, ok := "emailed code", false
	if body.Code != "" {
		ok = p.index.CodeMatches(req.ID, body.Code, v.CodeHash)
	} else {
		method, ok = "emailed link", dsr.TokenMatches(body.Token, []string{v.TokenHash})
	}
	if ok && p.now().Before(v.ExpiresAt) {
		p.verified(c, req, bearer(c), method)
		return
	}
	left := p.opts.MaxTries - v.Tries
	if left <= 0 {
		moved, err := p.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusDenied, dsr.Change{
			Actor: "portal", Reason: "identity could not be verified: " + strconv.Itoa(p.opts.MaxTries) + " wrong or expired codes",
			DenialBasis: dsr.DeniedUnverifiable,
			Notices:     []string{dsr.NoticeDenied},
		})
		if errors.Is(err, dsr.ErrConflict) {
			// A right answer won the race to the last try.
			problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: "This request is not waiting for verification."})
			return
		}
		if err != nil {
			writeError(c, p.log, err)
			return
		}
		p.dispatch(ctx, moved)
		p.log.InfoContext(ctx, "request denied: verification failed", "request_id", req.ID)
	}
	detail := "The code or link is wrong, or has expired."
	if left > 0 && !p.now().Before(v.ExpiresAt) {
		detail = "The code has expired; ask for a new one."
	}
	if left <= 0 {
		detail = "The code or link is wrong, and no tries are left: the request is closed. You may file a new one."
	}
	problem(c, Problem{Type: problemVerifyFailed, Title: "Verification failed", Status: http.StatusBadRequest, Detail: detail, TriesLeft: &left})
}

// verified completes a verification, which proves the request's email: the
// request is merged into a verified open request of the same type whose
// proven identities hold that email, if there is one, else it moves to
// verified, followed by token alone. A merged request is cancelled, its
// history naming the one it joined; its token follows it alone (it never
// reads the other, which may hold more than this email's data), and the
// other's owner is mailed a token of its own (NoticeMerged).
func (p *portalAPI) verified(c *gin.Context, req *dsr.Request, token, method string) {
	ctx := c.Request.Context()
	email := ""
	for _, id := range req.Identities {
		if id.Kind == dsr.KindEmail && id.Source == dsr.SourceSubject {
			email = id.Value
		}
	}
	proven := p.index.Hash(dsr.KindEmail, email)
	var dups []dsr.Request
	var err error
	if req.AppealOf == "" { // an appeal is decided on its own
		if dups, err = p.store.OpenIdentical(ctx, proven, req.Type, dsr.VerifiedOpenStatuses, 1); err != nil {
			writeError(c, p.log, err)
			return
		}
	}
	if len(dups) > 0 {
		into := dups[0].ID
		if _, err := p.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusCancelled, dsr.Change{
			Actor: "subject", Reason: "identity verified by " + method + "; merged into " + into,
		}); err != nil {
			writeError(c, p.log, err)
			return
		}
		if p.noteMerge(c, into) {
			c.JSON(http.StatusOK, gin.H{"id": req.ID, "status": dsr.StatusCancelled, "merged_into": into})
		}
		return
	}
	if req.PausedAt != nil {
		// The information the clock waited for has come: it runs again,
		// the due date later by the pause.
		if _, err := p.store.ResumeClock(ctx, req.ID); err != nil && !errors.Is(err, dsr.ErrConflict) {
			writeError(c, p.log, err)
			return
		}
	}
	moved, err := p.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusVerified, dsr.Change{
		Actor: "subject", Reason: "identity verified by " + method, StatusTokens: []string{dsr.HashToken(token)},
		ProvenHashes: []string{proven},
	})
	if err != nil {
		writeError(c, p.log, err)
		return
	}
	p.dispatch(ctx, moved)
	p.log.InfoContext(ctx, "request verified", "request_id", req.ID)
	c.JSON(http.StatusOK, gin.H{"id": moved.ID, "status": moved.Status})
}

// bearer is the token of the Authorization header, checked by authorize.
func bearer(c *gin.Context) string {
	_, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	return strings.TrimSpace(token)
}

// authorize loads the request named in the path for a caller holding one of
// its status tokens. A wrong token answers exactly as an unknown id does, so
// one request's token reveals nothing of another.
func (p *portalAPI) authorize(c *gin.Context) (*dsr.Request, bool) {
	scheme, _, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	token := bearer(c)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="dsar portal"`)
		problem(c, Problem{Status: http.StatusUnauthorized, Detail: "Send the request's status token as Authorization: Bearer <token>."})
		return nil, false
	}
	id := c.Param("id")
	if !dsr.ValidID(id) {
		writeError(c, p.log, dsr.ErrNotFound)
		return nil, false
	}
	req, err := p.store.Request(c.Request.Context(), id)
	if errors.Is(err, dsr.ErrNotFound) || (err == nil && !dsr.TokenMatches(token, req.StatusTokens)) {
		writeError(c, p.log, dsr.ErrNotFound)
		return nil, false
	}
	if err != nil {
		writeError(c, p.log, err)
		return nil, false
	}
	return req, true
}

// portalStatus is a request as its subject sees it.
type portalStatus struct {
	ID         string         `json:"id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	Status     dsr.Status     `json:"status"`
	ReceivedAt time.Time      `json:"received_at"`
	DueAt      time.Time      `json:"due_at"`
	ClosedAt   *time.Time     `json:"closed_at,omitempty"`
	GPC        bool           `json:"gpc"`
	// Reason explains a denial or an expiry.
	Reason          string        `json:"reason,omitempty"`
	LinkedRequestID string        `json:"linked_request_id,omitempty"`
	Download        *downloadLink `json:"download,omitempty"`
}

type downloadLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (p *portalAPI) status(c *gin.Context) {
	req, ok := p.authorize(c)
	if !ok {
		return
	}
	v := portalStatus{ID: req.ID, Type: req.Type, Regulation: req.Regulation, Status: req.Status, ReceivedAt: req.ReceivedAt,
		DueAt: req.DueAt, ClosedAt: req.ClosedAt, GPC: req.GPC, LinkedRequestID: req.LinkedTo}
	if (req.Status == dsr.StatusDenied || req.Status == dsr.StatusExpired || req.Status == dsr.StatusCancelled) && len(req.History) > 0 {
		v.Reason = req.History[len(req.History)-1].Reason
	}
	if req.Type == dsr.TypeAccess && req.Status == dsr.StatusCompleted {
		exp := p.now().Add(p.opts.LinkTTL).UTC().Truncate(time.Second)
		v.Download = &downloadLink{URL: p.exportLink(req.ID, exp), ExpiresAt: exp}
	}
	c.JSON(http.StatusOK, v)
}

// exportLink is the path of a signed download link.
func (p *portalAPI) exportLink(id string, exp time.Time) string {
	return "/v1/portal/requests/" + id + "/export?expires=" + strconv.FormatInt(exp.Unix(), 10) + "&sig=" + p.links.Sign(id, exp)
}

// export streams the export to a holder of the status token or of a signed
// link that has not expired.
func (p *portalAPI) export(c *gin.Context) {
	var req *dsr.Request
	if c.Query("sig") != "" || c.Query("expires") != "" {
		id := c.Param("id")
		sec, err := strconv.ParseInt(c.Query("expires"), 10, 64)
		if err != nil || !dsr.ValidID(id) || !p.links.Valid(id, time.Unix(sec, 0), c.Query("sig"), p.now()) {
			problem(c, Problem{Status: http.StatusForbidden, Detail: "This download link is not valid, or has expired; get a new one from the request's status."})
			return
		}
		if req, err = p.store.Request(c.Request.Context(), id); err != nil {
			writeError(c, p.log, err)
			return
		}
	} else {
		var ok bool
		if req, ok = p.authorize(c); !ok {
			return
		}
	}
	streamExport(c, p.app, p.log, req)
}

// resend sends a new code (the old one stops working) to the subject of a
// request still verifying, for a holder of its status token.
func (p *portalAPI) resend(c *gin.Context) {
	req, ok := p.authorize(c)
	if !ok {
		return
	}
	if req.Status != dsr.StatusVerifying {
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: "This request is not waiting for verification."})
		return
	}
	if req.Verification != nil && req.Verification.Round >= dsr.MaxVerificationRounds {
		problem(c, Problem{Type: problemVerifyLocked, Title: "Verification locked", Status: http.StatusLocked,
			Detail: "No more codes can be sent for this request."})
		return
	}
	ctx := c.Request.Context()
	if err := p.store.AddNotice(ctx, req.ID, dsr.NoticeVerify); err != nil {
		writeError(c, p.log, err)
		return
	}
	if err := p.queue.EnqueueNotice(ctx, req.ID, dsr.NoticeVerify); err != nil {
		p.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", req.ID, "notice", dsr.NoticeVerify, "error", err)
	}
	c.JSON(http.StatusAccepted, gin.H{"id": req.ID, "status": req.Status})
}
