package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/drp"
)

// DRPOptions configure the Data Rights Protocol: the covered business's
// side (handlers/drpapi). Without a BusinessID and Agents, the protocol is
// off.
type DRPOptions struct {
	// BusinessID is this business's id in the protocol's directory: the
	// business-id every message must name.
	BusinessID string
	// Agents are the authorised agents trusted, from the directory.
	Agents drp.Directory
	// Tokens issues and checks the pair-wise bearer tokens.
	Tokens *drp.Tokens
	// PortalURL is the public address of the portal, for the
	// user_verification_url of requests waiting for the person.
	PortalURL string
	// AllowInternalCallbacks lets a status_callback name a private or
	// loopback address (tests, one machine); otherwise only public https
	// addresses are taken.
	AllowInternalCallbacks bool
}

// The ways the protocol's calls fail, beside the message's own errors
// (drp.ErrEncoding ... drp.ErrMalformed); the surface maps each onto the
// protocol's error.
var (
	// ErrDRPOff: the protocol is not configured.
	ErrDRPOff = errors.New("the Data Rights Protocol is not configured here")
	// ErrDRPForbidden: an unknown agent, a token not this service's or not
	// the agent's, or another agent's request.
	ErrDRPForbidden = errors.New("forbidden")
)

// DRPOn reports whether the protocol is configured.
func (s *Service) DRPOn() bool {
	return s.drp.BusinessID != "" && len(s.drp.Agents) > 0 && s.drp.Tokens != nil
}

// DRPPair answers the pair-wise key setup of agentID (POST
// /v1/agent/{agent-id}): body, signed by the agent, names it and this
// business and stands now. It returns a new bearer token for the agent;
// any failure is ErrDRPForbidden (the protocol answers 403 with no body),
// wrapping why.
func (s *Service) DRPPair(ctx context.Context, agentID string, body []byte) (string, error) {
	if !s.DRPOn() {
		return "", ErrDRPOff
	}
	agent, ok := s.drp.Agents[agentID]
	if !ok {
		return "", fmt.Errorf("%w: the agent of the path is not in the directory", ErrDRPForbidden)
	}
	msg, err := drp.Open(body, agent.Key())
	if err == nil {
		var env drp.Envelope
		if err = json.Unmarshal(msg, &env); err == nil {
			err = env.Check(agentID, s.drp.BusinessID, s.now())
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDRPForbidden, err)
	}
	s.log.InfoContext(ctx, "drp agent paired", "agent", agentID)
	return s.drp.Tokens.Issue(agentID), nil
}

// DRPAgent returns the agent token was issued to, if it is still in the
// directory (and, when agentID is not empty, is that agent); otherwise
// ErrDRPForbidden.
func (s *Service) DRPAgent(token, agentID string) (drp.Agent, error) {
	if !s.DRPOn() {
		return drp.Agent{}, ErrDRPOff
	}
	id := s.drp.Tokens.Agent(token)
	agent, ok := s.drp.Agents[id]
	if id == "" || !ok || (agentID != "" && agentID != id) {
		return drp.Agent{}, ErrDRPForbidden
	}
	return agent, nil
}

// DRPExercise files the exercise in body, signed by agent (whose token the
// call carried), and returns its status. The message is checked in the
// protocol's order before anything is parsed or stored. A message sent
// again (a replay, or a retry), and another message with the same
// agent-request-id asking the same, answer the request the first filed; the
// same agent-request-id asking something else is dsr.ErrIdempotencyMismatch.
//
// The rights map onto the service's types: sale:opt_out onto an opt-out of
// sale and sharing; sale:opt_in onto the consent given again (an opt-in:
// the suppression lifted, the systems told); deletion onto a deletion; and
// the three access rights onto an access request (its package holds the
// categories with the data). The identities are the email and the phone
// number; the person's name and address are not kept (nothing matches on
// them here). An identity the agent verified (email_verified,
// phone_number_verified), or a power of attorney, is taken as proven by the
// agent; otherwise the person is sent the portal's verification to their
// email, and the request is in_progress with need_user_verification.
//
// limit, when set, counts an exercise that mails the person a verification
// against the limit of their mailbox (the portal's, by the same key), so
// an agent cannot have the business mail anyone without end; its error is
// returned as it is, and nothing is filed.
func (s *Service) DRPExercise(ctx context.Context, agent drp.Agent, body []byte, limit func(ctx context.Context, key string) error) (drp.Status, error) {
	msg, err := drp.Open(body, agent.Key())
	if err != nil {
		return drp.Status{}, err
	}
	x, err := drp.ParseExercise(msg)
	if err != nil {
		var env drp.Envelope
		if json.Unmarshal(msg, &env) == nil {
			if cerr := env.Check(agent.ID, s.drp.BusinessID, s.now()); cerr != nil {
				return drp.Status{}, cerr // the envelope's failure comes first
			}
		}
		return drp.Status{}, err
	}
	if err := x.Envelope.Check(agent.ID, s.drp.BusinessID, s.now()); err != nil {
		return drp.Status{}, err
	}
	if err := checkCallback(x.StatusCallback, s.drp.AllowInternalCallbacks); err != nil {
		return drp.Status{}, fmt.Errorf("%w: status_callback %w", drp.ErrMalformed, err)
	}
	by := drp.ActorPrefix + agent.ID
	link := &dsr.DRPLink{Agent: agent.ID, AgentRequestID: x.AgentRequestID, Exercise: x.Right(), Callback: x.StatusCallback}
	key := x.AgentRequestID
	if key == "" {
		sum := sha256.Sum256(msg)
		key = "message:" + hex.EncodeToString(sum[:])
	}
	if x.Right() == drp.RightOptIn {
		return s.drpOptIn(ctx, x, by, key, link)
	}
	in, err := s.agentIntake(drpRequest(x, agent), by, s.now())
	if err != nil {
		return drp.Status{}, fmt.Errorf("%w: %w", drp.ErrMalformed, err)
	}
	in.Source, in.DRP = dsr.SourceDRP, link
	claimUnverified(&in, x)
	if in.Status == dsr.StatusVerifying && limit != nil {
		if err := limit(ctx, s.index.Hash(dsr.KindEmail, MailboxKey(x.Email))); err != nil {
			return drp.Status{}, err
		}
	}
	replay, err := s.reserve(ctx, by, key, &in)
	if err != nil {
		return drp.Status{}, err
	}
	if replay {
		filed, err := s.replay(ctx, in.ID)
		if err != nil {
			return drp.Status{}, err
		}
		return drp.StatusOf(filed.Request, s.drp.PortalURL), nil
	}
	// Not parked as a duplicate of an open identical request (another
	// agent's, the person's own): a duplicate waits for staff to unlink it,
	// and nothing runs it when the one it duplicates is revoked or denied,
	// while its agent is told it is in progress. It runs on its own.
	req, err := s.file(ctx, in, filing{})
	if errors.Is(err, dsr.ErrConflict) {
		filed, err := s.replay(ctx, in.ID) // the first attempt stored it meanwhile
		if err != nil {
			return drp.Status{}, err
		}
		return drp.StatusOf(filed.Request, s.drp.PortalURL), nil
	}
	if err != nil {
		return drp.Status{}, err
	}
	s.log.InfoContext(ctx, "drp exercise filed", "request_id", req.ID, "agent", agent.ID, "exercise", x.Right())
	return drp.StatusOf(req, s.drp.PortalURL), nil
}

// drpRequest is the agent filing an exercise stands for.
func drpRequest(x *drp.Exercise, agent drp.Agent) AgentRequest {
	b := AgentRequest{Regulation: string(dsr.RegulationCCPA), Channel: "api"}
	switch x.Right() {
	case drp.RightOptOut:
		b.Type, b.Scopes = string(dsr.TypeOptOut), []string{string(dsr.ScopeSaleShare)}
	case drp.RightDeletion:
		b.Type = string(dsr.TypeDeletion)
	default:
		b.Type = string(dsr.TypeAccess)
	}
	if x.Email != "" {
		b.Subject.Email = &x.Email
	}
	if x.PhoneNumber != "" {
		b.Subject.Phone = &x.PhoneNumber
	}
	switch {
	case x.PowerOfAttorney != "":
		b.Identity = &Proof{Verified: true, Method: "DRP: agent " + agent.ID + " holds the person's power of attorney"}
	case x.EmailVerified && x.Email != "":
		b.Identity = &Proof{Verified: true, Method: "DRP: agent " + agent.ID + " verified the email"}
	case x.PhoneNumberVerified && x.PhoneNumber != "":
		b.Identity = &Proof{Verified: true, Method: "DRP: agent " + agent.ID + " verified the phone number"}
	case x.Right() == drp.RightOptOut:
		// An opt-out needs no proof of identity (CCPA 7026).
		b.Identity = &Proof{Verified: true, Method: "DRP: opt-out from agent " + agent.ID + " (no proof needed)"}
	default:
		b.Identity = &Proof{} // the portal's verification, to the email
	}
	var note []string
	note = append(note, "Filed through the Data Rights Protocol by authorised agent "+agent.ID+", exercise "+x.Right()+".")
	if x.Regime == "" {
		note = append(note, "No regime given: voluntary processing, under the CCPA's rules.")
	}
	if len(x.Relationships) > 0 {
		note = append(note, "Relationships the agent names: "+strings.Join(x.Relationships, ", ")+".")
	}
	if x.PowerOfAttorney != "" {
		note = append(note, "Power of attorney: "+x.PowerOfAttorney)
	}
	b.Note = strings.Join(note, "\n")
	return b
}

// claimUnverified marks claimed the identities of in that the agent did
// not verify when the request stands on the one it did verify: an agent
// that verified a phone number does not prove the email given with it, and
// no deletion or access is carried out on that email. They are kept, as the
// portal keeps what it did not prove, but nothing acts on them. A power of
// attorney covers the person, and an opt-out needs no proof: both leave
// every identity as given.
func claimUnverified(in *dsr.Intake, x *drp.Exercise) {
	if in.Status != dsr.StatusVerified || x.PowerOfAttorney != "" || x.Right() == drp.RightOptOut {
		return
	}
	for i, id := range in.Identities {
		if (id.Kind == dsr.KindEmail && !x.EmailVerified) || (id.Kind == dsr.KindPhone && !x.PhoneNumberVerified) {
			in.Identities[i].Source = dsr.SourceClaimed
		}
	}
}

// drpOptIn records a sale:opt_in as consent given again, and files the
// opt-in request that carries it to the systems, linked to the agent. Only
// the identities the agent verified (all, under a power of attorney) are
// opted in; with none, the opt-in is refused.
func (s *Service) drpOptIn(ctx context.Context, x *drp.Exercise, by, key string, link *dsr.DRPLink) (drp.Status, error) {
	var ve dsr.ValidationError
	sub := Subject{}
	// An opt-in undoes the person's opt-out at once: it stands only on
	// the identities the agent verified (every one given, under a power of
	// attorney), never on one nobody proved.
	poa := x.PowerOfAttorney != ""
	if x.Email != "" && (poa || x.EmailVerified) {
		sub.Email = &x.Email
	}
	if x.PhoneNumber != "" && (poa || x.PhoneNumberVerified) {
		sub.Phone = &x.PhoneNumber
	}
	if sub == (Subject{}) {
		return drp.Status{}, fmt.Errorf("%w: sale:opt_in gives the consent back at once: it needs an identity the agent verified (email_verified, phone_number_verified) or a power_of_attorney", drp.ErrMalformed)
	}
	ids := sub.Identities(&ve, func(dsr.Kind) string { return dsr.SourceSubject })
	if err := ve.Err(); err != nil {
		return drp.Status{}, fmt.Errorf("%w: %w", drp.ErrMalformed, err)
	}
	fresh, err := dsr.NewRequestID()
	if err != nil {
		return drp.Status{}, err
	}
	fp := dsr.Intake{Type: dsr.TypeOptIn, Regulation: dsr.RegulationCCPA, Identities: ids, Scopes: []dsr.Scope{dsr.ScopeSaleShare}}
	// A first attempt made before the blind index key changed stored its
	// fingerprint under the previous key.
	var id string
	for _, f := range fp.Fingerprints(s.index) {
		if id, err = s.store.ClaimIdempotencyKey(ctx, dsr.IdempotencyID(by, key), fresh, f); !errors.Is(err, dsr.ErrIdempotencyMismatch) {
			break
		}
	}
	if err != nil {
		return drp.Status{}, err
	}
	if id != fresh {
		req, err := s.store.Request(ctx, id)
		if err == nil {
			return drp.StatusOf(req, s.drp.PortalURL), nil
		}
		if !errors.Is(err, dsr.ErrNotFound) {
			return drp.Status{}, err
		}
		// The first attempt died before filing: file it now, under its id.
	}
	in := OptInInput{Identities: ids, Scopes: []string{string(dsr.ScopeSaleShare)}, Regulation: string(dsr.RegulationCCPA),
		adjust: []func(*dsr.Intake){func(in *dsr.Intake) { in.ID, in.DRP, in.Source = id, link, dsr.SourceDRP }}}
	ch, err := s.OptIn(ctx, in, dsr.ConsentProtocol, by)
	if err != nil {
		return drp.Status{}, err
	}
	req, err := s.store.Request(ctx, ch.OptInRequest)
	if err != nil {
		return drp.Status{}, err
	}
	s.log.InfoContext(ctx, "drp opt-in recorded", "request_id", req.ID, "agent", link.Agent)
	return drp.StatusOf(req, s.drp.PortalURL), nil
}

// DRPStatus returns the status of request id to agent: ErrDRPForbidden
// when it is not a request agent filed, dsr.ErrNotFound when there is none.
func (s *Service) DRPStatus(ctx context.Context, agent drp.Agent, id string) (drp.Status, error) {
	req, err := s.drpRequestOf(ctx, agent, id)
	if err != nil {
		return drp.Status{}, err
	}
	return drp.StatusOf(req, s.drp.PortalURL), nil
}

// DRPRevoke revokes request id for agent, with the reason in body (signed
// by the agent): the request is cancelled if it has not been processed yet
// (dsr.ErrConflict otherwise; always for an opt-in, which took effect when
// filed), and its status answered. Revoking a revoked
// request answers its status again. The envelope fields the message gives
// (agent-id, business-id, issued-at, expires-at) are checked as an
// exercise's are. The reason, free text from the person, is not kept.
func (s *Service) DRPRevoke(ctx context.Context, agent drp.Agent, id string, body []byte) (drp.Status, error) {
	msg, err := drp.Open(body, agent.Key())
	if err != nil {
		return drp.Status{}, err
	}
	var revoke struct {
		drp.Envelope
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(msg, &revoke); err != nil {
		return drp.Status{}, fmt.Errorf("%w: %v", drp.ErrMalformed, err)
	}
	// The protocol's example is a bare reason; what envelope is given is
	// checked, so a revocation meant for another business, or expired, is
	// not taken here.
	if err := revoke.Envelope.CheckGiven(agent.ID, s.drp.BusinessID, s.now()); err != nil {
		return drp.Status{}, err
	}
	req, err := s.drpRequestOf(ctx, agent, id)
	if err != nil {
		return drp.Status{}, err
	}
	if st := drp.StatusOf(req, s.drp.PortalURL); st.Status == drp.StateRevoked {
		return st, nil
	}
	if req.Type == dsr.TypeOptIn {
		// The consent was given again when the opt-in was filed; cancelling
		// its request would answer "revoked" while the person stays opted
		// in.
		return drp.Status{}, dsr.Refuse(dsr.ErrConflict, "The opt-in took effect when it was filed: the consent is recorded. Send a sale:opt_out to undo it.")
	}
	rec, err := s.Cancel(ctx, id, "revoked by the authorised agent through the Data Rights Protocol", drp.ActorPrefix+agent.ID)
	if err != nil {
		return drp.Status{}, err
	}
	s.log.InfoContext(ctx, "drp request revoked", "request_id", id, "agent", agent.ID)
	return drp.StatusOf(rec.Request, s.drp.PortalURL), nil
}

// drpRequestOf reads request id if agent filed it.
func (s *Service) drpRequestOf(ctx context.Context, agent drp.Agent, id string) (*dsr.Request, error) {
	if !dsr.ValidID(id) {
		return nil, dsr.ErrNotFound
	}
	req, err := s.store.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if req.DRP == nil || req.DRP.Agent != agent.ID {
		return nil, ErrDRPForbidden
	}
	return req, nil
}
