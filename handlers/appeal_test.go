package handlers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// deniedUnverifiable files a portal deletion under VCDPA for email and
// spends its five tries on wrong codes: it is denied as unverifiable.
func (p *portal) deniedUnverifiable(email string) string {
	p.t.Helper()
	c := p.submit(`{"type":"deletion","regulation":"vcdpa","subject":{"email":"` + email + `"}}`)
	if err := p.proc.SendNotice(context.Background(), c.ID, dsr.NoticeVerify); err != nil {
		p.t.Fatal(err)
	}
	_, text := p.mail(email, c.ID, "verify")
	wrong := fmt.Sprintf("%06d", (mustAtoi(codeIn.FindStringSubmatch(text)[1])+1)%1_000_000)
	for range 5 {
		p.call("POST", "/v1/portal/requests/"+c.ID+"/verify", c.StatusToken, `{"code":"`+wrong+`"}`, nil)
	}
	r, err := p.store.Request(context.Background(), c.ID)
	if err != nil {
		p.t.Fatal(err)
	}
	if r.Status != dsr.StatusDenied || r.DenialBasis != dsr.DeniedUnverifiable {
		p.t.Fatalf("precondition: %s (%s), want denied as unverifiable", r.Status, r.DenialBasis)
	}
	return c.ID
}

type appealJSON struct {
	ID                 string `json:"id"`
	Status             string `json:"status"`
	AppealOf           string `json:"appeal_of"`
	VerificationMethod string `json:"verification_method"`
	Type               string `json:"type"`
}

// TestAppealNeedsNewProof is issue 9's second finding: a deletion denied
// because its email was never proven is appealed only with a new proof,
// the agent's attestation or the portal's verification, never on the
// unproven email alone.
func TestAppealNeedsNewProof(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	ctx := context.Background()
	denied := p.deniedUnverifiable("ada@example.com")

	// Refused without a new proof; the appeal is not used up.
	var pr problemJSON
	if resp := p.call("POST", "/v1/requests/"+denied+"/appeal", agentKey, `{"reason":"the person insists"}`, &pr); resp.StatusCode != 409 ||
		pr.Type != "urn:dsar:problem:proof-required" {
		t.Fatalf("appeal without a new proof: %d %+v, want 409 proof-required", resp.StatusCode, pr)
	}
	for _, body := range []string{
		`{"reason":"x","identity":{"verified":true}}`,
		`{"reason":"x","identity":{"verified":false,"method":"ID document"}}`,
		`{"identity":{"verified":false}}`,
		`{"reason":"x","identity":{"verified":true,"method":"ID\ndocument"}}`,
		`{"reason":"x","identity":{"verified":true,"method":"ID \u202edocument"}}`,
	} {
		if resp := p.call("POST", "/v1/requests/"+denied+"/appeal", agentKey, body, nil); resp.StatusCode != 400 {
			t.Errorf("appeal %s: %d, want 400", body, resp.StatusCode)
		}
	}
	if r, _ := p.store.Request(ctx, denied); r.AppealedBy != "" {
		t.Fatalf("a refused appeal used up the appeal: appealed_by %s", r.AppealedBy)
	}

	// With the portal's verification: the appeal waits for the emailed
	// code, then for an agent's decision.
	var a appealJSON
	if resp := p.call("POST", "/v1/requests/"+denied+"/appeal", agentKey, `{"reason":"the person insists","identity":{"verified":false}}`, &a); resp.StatusCode != 202 ||
		a.Status != "verifying" || a.AppealOf != denied {
		t.Fatalf("appeal with the portal's verification: %d %+v", resp.StatusCode, a)
	}
	if resp := p.call("POST", "/v1/requests/"+a.ID+"/approve", agentKey, "", nil); resp.StatusCode != 409 {
		t.Errorf("approve an appeal still verifying: %d, want 409", resp.StatusCode)
	}
	if err := p.proc.SendNotice(ctx, a.ID, dsr.NoticeVerify); err != nil {
		t.Fatal(err)
	}
	_, text := p.mail("ada@example.com", a.ID, "verify")
	code, tok := codeIn.FindStringSubmatch(text), regexpToken.FindStringSubmatch(text)
	if code == nil || tok == nil {
		t.Fatalf("the appeal's verification carries no code or status token:\n%s", text)
	}
	var out map[string]any
	if resp := p.call("POST", "/v1/portal/requests/"+a.ID+"/verify", tok[1], `{"code":"`+code[1]+`"}`, &out); resp.StatusCode != 200 || out["status"] != "verified" {
		t.Fatalf("verify the appeal: %d %v", resp.StatusCode, out)
	}
	if err := p.proc.Fanout(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if r, err := p.store.Request(ctx, a.ID); err != nil {
		t.Fatal(err)
	} else if r.Status != dsr.StatusAwaitingApproval || len(r.ProvenHashes) != 1 {
		t.Fatalf("the verified appeal: %s with %d proven identities, want awaiting an agent's decision with its email proven", r.Status, len(r.ProvenHashes))
	}
	if resp := p.call("POST", "/v1/requests/"+a.ID+"/approve", agentKey, "", &a); resp.StatusCode != 200 || a.Status != "verified" {
		t.Errorf("approve the verified appeal: %d %+v", resp.StatusCode, a)
	}

	// With the agent's attestation: it waits for a decision at once.
	other := p.deniedUnverifiable("grace@example.com")
	if resp := p.call("POST", "/v1/requests/"+other+"/appeal", agentKey, `{"reason":"sent a copy of her ID","identity":{"verified":true,"method":"ID document"}}`, &a); resp.StatusCode != 202 ||
		a.Status != "awaiting_approval" || a.VerificationMethod != "ID document" {
		t.Fatalf("appeal attested: %d %+v", resp.StatusCode, a)
	}
	if r, err := p.store.Request(ctx, a.ID); err != nil {
		t.Fatal(err)
	} else if len(r.ProvenHashes) != 1 {
		t.Errorf("the attested appeal's proven identities: %d, want the email", len(r.ProvenHashes))
	}
}

// TestAppealOfNeverVerified: a portal request an agent denied before it was
// verified (on any basis) has no proof for its appeal to inherit.
func TestAppealOfNeverVerified(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	c := p.submit(`{"type":"deletion","regulation":"ctdpa","subject":{"email":"ada@example.com"}}`)
	if resp := p.call("POST", "/v1/requests/"+c.ID+"/deny", agentKey, `{"reason":"looks like a prank","basis":"other"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	var pr problemJSON
	if resp := p.call("POST", "/v1/requests/"+c.ID+"/appeal", agentKey, `{"reason":"it was not"}`, &pr); resp.StatusCode != 409 || pr.Type != "urn:dsar:problem:proof-required" {
		t.Errorf("appeal of a request never verified: %d %+v, want 409 proof-required", resp.StatusCode, pr)
	}
}

// TestNewRequestNotMergedIntoAppeal: the denial email tells the person they
// may make a new request. One made while an appeal of the denied request is
// open is a request of its own, never merged into the appeal, whose
// decision is final and whose deadline is the appeal's.
func TestNewRequestNotMergedIntoAppeal(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	first := p.submit(`{"type":"deletion","regulation":"vcdpa","subject":{"email":"ada@example.com"}}`)
	if out := p.verifyCode(first, "ada@example.com"); out["status"] != "verified" {
		t.Fatalf("precondition: verify %v", out)
	}
	if resp := p.call("POST", "/v1/requests/"+first.ID+"/deny", agentKey, `{"reason":"an account is still open","basis":"other"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	var a appealJSON
	if resp := p.call("POST", "/v1/requests/"+first.ID+"/appeal", agentKey, `{"reason":"the person disagrees"}`, &a); resp.StatusCode != 202 || a.Status != "awaiting_approval" {
		t.Fatalf("precondition: appeal %d %+v", resp.StatusCode, a)
	}

	again := p.submit(`{"type":"deletion","regulation":"vcdpa","subject":{"email":"ada@example.com"}}`)
	if out := p.verifyCode(again, "ada@example.com"); out["status"] != "verified" || out["merged_into"] != nil {
		t.Errorf("a new request while the appeal %s is open: %v, want verified on its own", a.ID, out)
	}
}
