package app

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

// Subject is the identities a filing gives of its person (its JSON form is
// that of the APIs' "subject" objects).
type Subject struct {
	Email      *string `json:"email"`
	CustomerID *string `json:"customer_id"`
	Phone      *string `json:"phone"`
	// AdvertisingID and DeviceID are a device's advertising id (IDFA,
	// AAID, ...) and vendor-scoped id (ANDROID_ID, IDFV, ...): like a
	// customer id, nobody proves them, so a request that must be verified
	// keeps them claimed unless an agent vouches for them.
	AdvertisingID *string `json:"advertising_id"`
	DeviceID      *string `json:"device_id"`
}

// Identities normalises the identities given, email first, each with the
// source that source gives its kind; problems go to ve under
// "subject.<kind>".
func (s Subject) Identities(ve *dsr.ValidationError, source func(dsr.Kind) string) []dsr.Identity {
	given := []struct {
		kind dsr.Kind
		v    *string
	}{{dsr.KindEmail, s.Email}, {dsr.KindCustomerID, s.CustomerID}, {dsr.KindPhone, s.Phone},
		{dsr.KindAdvertisingID, s.AdvertisingID}, {dsr.KindDeviceID, s.DeviceID}}
	var out []dsr.Identity
	for _, g := range given {
		if g.v == nil {
			continue
		}
		v, err := dsr.NormalizeGiven(g.kind, *g.v)
		if err != nil {
			ve.Add("subject."+string(g.kind), "%s", err)
			continue
		}
		out = append(out, dsr.Identity{Kind: g.kind, Value: v, Source: source(g.kind)})
	}
	return out
}

// BaseIntake checks what every filing has (a type, a regulation, at least
// one identity of the person, each the subject's own) and returns the
// intake it describes, or every problem found.
func BaseIntake(typ, regulation string, subject Subject) (dsr.Intake, error) {
	var ve dsr.ValidationError
	in := dsr.Intake{Type: dsr.Type(typ), Regulation: dsr.Regulation(regulation)}
	switch {
	case typ == "":
		ve.Add("type", "required: one of %s", Join(dsr.FiledTypes))
	case in.Type == dsr.TypeOptIn:
		ve.Add("type", "opt_in requests are filed by the service when a person consents again: record the opt-in with POST /v1/consent/opt-in")
	case !in.Type.Valid():
		ve.Add("type", "must be one of %s", Join(dsr.FiledTypes))
	}
	switch {
	case regulation == "":
		ve.Add("regulation", "required: one of %s", Join(dsr.Regulations))
	case !in.Regulation.Valid():
		ve.Add("regulation", "must be one of %s", Join(dsr.Regulations))
	}
	in.Identities = subject.Identities(&ve, func(dsr.Kind) string { return dsr.SourceSubject })
	if subject == (Subject{}) {
		ve.Add("subject", "give at least one identity: %s", Join(dsr.Kinds))
	}
	return in, ve.Err()
}

// Join lists vals, comma-separated, for a message.
func Join[T ~string](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// AgentRequest is a request an agent files on behalf of a person.
type AgentRequest struct {
	Type       string  `json:"type"`
	Regulation string  `json:"regulation"`
	Subject    Subject `json:"subject"`
	// Channel is how the request reached the business; default "api".
	Channel string `json:"channel"`
	// Note is the agent's note, stored with the request and never logged.
	Note string `json:"note"`
	// ReceivedAt is when the request arrived, if earlier than now: the
	// legal clock starts then. RFC 3339; never in the future.
	ReceivedAt string `json:"received_at"`
	// Identity says whether the agent verified the person's identity
	// (and how), or whether the person is to be sent the portal's
	// verification. Absent: verified by the filing agent.
	Identity *Proof `json:"identity"`
	// Corrections are the changes a correction request asks for
	// (checkCorrections says what is accepted); none for other types.
	Corrections []CorrectionInput `json:"corrections"`
	// Scopes, for an opt_out only, are the uses the person refuses
	// (marketing, profiling, sale_share); none: every one of them.
	Scopes []string `json:"scopes"`
}

// Proof is how an agent says a person's identity is proven: verified by the
// agent (with the method), or to be verified by the portal's emailed code.
type Proof struct {
	Verified bool   `json:"verified"`
	Method   string `json:"method"`
}

// check adds to ve what is wrong with p and says what p asks for: the
// method the agent attests (p.Verified), or the portal's verification
// (verify). A nil p asks for neither.
func (p *Proof) check(ve *dsr.ValidationError) (attested string, verify bool) {
	switch {
	case p == nil:
	case p.Verified:
		attested = checkMethod(ve, p.Method)
	default:
		if p.Method != "" {
			ve.Add("identity.method", "only with verified: true")
		}
		verify = true
	}
	return attested, verify
}

// Channels lists how an agent may say a request reached the business.
var Channels = []string{"api", "phone", "email", "chat", "letter", "in_person", "web", "other"}

// MaxReason bounds free-text reasons and notes, in characters.
const MaxReason = 2000

// maxBackdate bounds how far before now an agent may date a request.
const maxBackdate = 366 * 24 * time.Hour

// agentIntake is the agent's intake policy: what BaseIntake checks, plus
// the channel, the note, the date of receipt (not in the future, within the
// last year), how identity was (or is to be) verified, and a correction's
// changes (checkCorrections). Filed by agent by
// at now, it returns the intake, or every problem found.
func (s *Service) agentIntake(b AgentRequest, by string, now time.Time) (dsr.Intake, error) {
	in, err := BaseIntake(b.Type, b.Regulation, b.Subject)
	var ve dsr.ValidationError
	if prior := (*dsr.ValidationError)(nil); errors.As(err, &prior) {
		ve = *prior
	}
	in.Source, in.FiledBy, in.Calendar = links.SourceAgentAPI, by, s.calendar
	in.Channel = b.Channel
	if in.Channel == "" {
		in.Channel = "api"
	}
	if !slices.Contains(Channels, in.Channel) {
		ve.Add("channel", "must be one of %s", strings.Join(Channels, ", "))
	}
	if utf8.RuneCountInString(strings.TrimSpace(b.Note)) > MaxReason {
		ve.Add("note", "must be at most %d characters", MaxReason)
	} else {
		ve.Text("note", strings.TrimSpace(b.Note), dsr.Lines)
	}
	in.Note = strings.TrimSpace(b.Note)
	in.ReceivedAt = now
	if b.ReceivedAt != "" {
		at, err := time.Parse(time.RFC3339, b.ReceivedAt)
		switch {
		case err != nil:
			ve.Add("received_at", "must be an RFC 3339 time, e.g. 2026-11-20T09:30:00Z")
		case at.After(now.Add(time.Minute)):
			ve.Add("received_at", "must not be in the future: the legal clock starts when the request arrived")
		case at.Before(now.Add(-maxBackdate)):
			ve.Add("received_at", "must be within the last year")
		default:
			in.ReceivedAt = at
		}
	}
	in.Corrections = checkCorrections(&ve, in.Type, b.Corrections, s.correctFields())
	checkScopes(&ve, &in, b.Scopes)
	in.Status, in.VerificationMethod = dsr.StatusVerified, "attested by the filing agent"
	// With an email, the person is told of the request as on the portal:
	// its receipt now, then a denial, an extension or its completion.
	for _, id := range in.Identities {
		if id.Kind == dsr.KindEmail {
			in.Notify, in.Notices = true, []string{dsr.NoticeReceipt}
		}
	}
	switch attested, verify := b.Identity.check(&ve); {
	case verify:
		has := false
		for _, i := range in.Identities {
			has = has || i.Kind == dsr.KindEmail
		}
		if !has {
			ve.Add("subject.email", "required to send the person the verification")
		}
		// The portal's verification: an emailed code; the person is told
		// of the request from the start. As on the portal, only the email
		// is proven: the other identities are kept as claimed.
		in.Status, in.VerificationMethod, in.Notify = dsr.StatusVerifying, "", true
		in.Notices = []string{dsr.NoticeReceipt, dsr.NoticeVerify}
		for i := range in.Identities {
			if in.Identities[i].Kind != dsr.KindEmail {
				in.Identities[i].Source = dsr.SourceClaimed
			}
		}
	case b.Identity != nil:
		in.VerificationMethod = attested
	}
	return in, ve.Err()
}

// checkScopes sets the scopes a filing names on in (before its GPC is
// known, or with it) and adds to ve what is wrong with them
// (dsr.Intake.CheckScopes; nothing when the type is wrong, which ve has
// already).
func checkScopes(ve *dsr.ValidationError, in *dsr.Intake, names []string) {
	in.Scopes = nil
	for _, n := range names {
		in.Scopes = append(in.Scopes, dsr.Scope(n))
	}
	if !slices.Contains(dsr.FiledTypes, in.Type) {
		return
	}
	if _, err := in.CheckScopes(); err != nil {
		var scoped *dsr.ValidationError
		if errors.As(err, &scoped) {
			ve.Fields = append(ve.Fields, scoped.Fields...)
		}
	}
}

// checkMethod checks how an agent says it verified a person (one line, at
// most 200 characters) and returns it trimmed.
func checkMethod(ve *dsr.ValidationError, method string) string {
	m := strings.TrimSpace(method)
	if m == "" || utf8.RuneCountInString(m) > 200 {
		ve.Add("identity.method", "required when verified: how the identity was verified, e.g. account login or ID document (at most 200 characters)")
	} else {
		ve.Text("identity.method", m, dsr.OneLine)
	}
	return m
}

// CheckReason trims a reason and adds to ve what is wrong with it; required
// says whether it may be empty.
func CheckReason(ve *dsr.ValidationError, reason string, required bool) string {
	r := strings.TrimSpace(reason)
	switch {
	case required && r == "":
		ve.Add("reason", "required: it is recorded, and told to the person where they are told")
	case utf8.RuneCountInString(r) > MaxReason:
		ve.Add("reason", "must be at most %d characters", MaxReason)
	default:
		ve.Text("reason", r, dsr.Lines)
	}
	return r
}

// checkReason is CheckReason for an action whose only input is the
// reason: it returns the trimmed reason, or the dsr.ValidationError.
func checkReason(reason string, required bool) (string, error) {
	var ve dsr.ValidationError
	reason = CheckReason(&ve, reason, required)
	return reason, ve.Err()
}
