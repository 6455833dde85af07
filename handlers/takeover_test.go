package handlers_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// regexpToken finds the status token an email gives.
var regexpToken = regexp.MustCompile(`\(keep it secret\):\s+([A-Za-z0-9_-]{43})`)

// verifyCode sends request c its code, reads it from the mailbox of email
// and presents it with c's status token; it returns the answer.
func (p *portal) verifyCode(c created, email string) map[string]any {
	p.t.Helper()
	if err := p.proc.SendNotice(context.Background(), c.ID, dsr.NoticeVerify); err != nil {
		p.t.Fatal(err)
	}
	_, text := p.mail(email, c.ID, "verify")
	var out map[string]any
	if resp := p.call("POST", "/v1/portal/requests/"+c.ID+"/verify", c.StatusToken, `{"code":"`+codeIn.FindStringSubmatch(text)[1]+`"}`, &out); resp.StatusCode != 200 {
		p.t.Fatalf("verify %s: %d %v", c.ID, resp.StatusCode, out)
	}
	return out
}

// filedTwice is the setting of a merge: Ada's access request, filed and
// verified (first), and the same filed again (second, verifying).
func (p *portal) filedTwice() (first, second created) {
	p.t.Helper()
	const ada = `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`
	first = p.submit(ada)
	p.verifyCode(first, "ada@example.com")
	return first, p.submit(ada)
}

// resolved reports whether request id holds value among the identities
// resolution found.
func (p *portal) resolved(id, value string) bool {
	p.t.Helper()
	r, err := p.store.Request(context.Background(), id)
	if err != nil {
		p.t.Fatal(err)
	}
	return slices.ContainsFunc(r.Identities, func(i dsr.Identity) bool { return i.Value == value && strings.Contains(i.Source, "/") })
}

// TestMergeTakeover is issue 9's first finding: one of Ada's orders carries
// Eve's address, so resolving Ada's open access request finds it. Eve then
// files and proves her own address. She must get a request of her own, and
// her status token must read nothing of Ada's: not the request, not its
// export once done.
func TestMergeTakeover(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{orders: true}) // no workers: Ada's request stays open until its jobs are run
	ctx := context.Background()
	ada := p.submit(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	if out := p.verifyCode(ada, "ada@example.com"); out["status"] != "verified" {
		t.Fatalf("Ada verifies: %v", out)
	}
	if err := p.proc.Fanout(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	p.waitStatus(ada.ID, ada.StatusToken, "in_progress")
	if !p.resolved(ada.ID, "eve@attacker.example") {
		t.Fatal("precondition: Ada's request did not resolve the address on her order")
	}

	eve := p.submit(`{"type":"access","regulation":"gdpr","subject":{"email":"eve@attacker.example","customer_id":"cus_ada"}}`)
	out := p.verifyCode(eve, "eve@attacker.example")
	if out["status"] != "verified" || out["merged_into"] != nil {
		t.Fatalf("Eve verifies her own address: %v, want verified on its own", out)
	}
	eveView := p.waitStatus(eve.ID, eve.StatusToken, "verified")
	if eveView.ID != eve.ID {
		t.Fatalf("Eve's token reads %s", eveView.ID)
	}

	// Ada's jobs run; her request completes with an export.
	jobs, err := p.store.Jobs(ctx, ada.ID)
	if err != nil || len(jobs) == 0 {
		t.Fatalf("Ada's jobs: %v %v", jobs, err)
	}
	for _, j := range jobs {
		if err := p.proc.RunJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	p.waitStatus(ada.ID, ada.StatusToken, "completed")
	for _, tt := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"Eve's token on Ada's request", "GET", "/v1/portal/requests/" + ada.ID, eve.StatusToken, 404},
		{"Eve's token on Ada's export", "GET", "/v1/portal/requests/" + ada.ID + "/export", eve.StatusToken, 404},
		{"Eve's token on Ada's resend", "POST", "/v1/portal/requests/" + ada.ID + "/verification", eve.StatusToken, 404},
		{"Ada's token on Ada's export", "GET", "/v1/portal/requests/" + ada.ID + "/export", ada.StatusToken, 200},
	} {
		if resp := p.call(tt.method, tt.path, tt.token, "", nil); resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	r, err := p.store.Request(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.StatusTokens) != 1 || slices.Contains(r.PendingNotices, dsr.NoticeMerged) {
		t.Errorf("Ada's request: %d status tokens, notices %v; want her own token only and no merge", len(r.StatusTokens), r.PendingNotices)
	}
}

// TestOptOutTakeover: an opt-out is merged into an open one only on the
// identities that one was filed with, never on those resolved for it.
func TestOptOutTakeover(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{orders: true})
	ctx := context.Background()
	ada := p.submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"ada@example.com"}}`)
	if err := p.proc.Fanout(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	if !p.resolved(ada.ID, "eve@attacker.example") {
		t.Fatal("precondition: Ada's opt-out did not resolve the address on her order")
	}
	eve := p.submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"eve@attacker.example"}}`)
	if eve.Merged || eve.ID == "" || eve.Status != "verified" {
		t.Errorf("Eve's opt-out: %+v, want one of her own", eve)
	}
	// The same address again is merged, as before.
	if again := p.submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"ADA@example.com"}}`); !again.Merged {
		t.Errorf("Ada's second opt-out: %+v, want merged", again)
	}
}

// TestMergeKeepsTokensApart: a legitimate merge (the same proven address)
// joins the open request, but the merged filer's token still reads only
// the filer's own request, which says where it went; the open request's
// owner is mailed a token of its own.
func TestMergeKeepsTokensApart(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	ctx := context.Background()
	first, second := p.filedTwice()
	if out := p.verifyCode(second, "ada@example.com"); out["merged_into"] != first.ID {
		t.Fatalf("second verification: %v, want merged into %s", out, first.ID)
	}
	if resp := p.call("GET", "/v1/portal/requests/"+first.ID, second.StatusToken, "", nil); resp.StatusCode != 404 {
		t.Errorf("the merged filer's token on the open request: %d, want 404", resp.StatusCode)
	}
	if v := p.waitStatus(second.ID, second.StatusToken, "cancelled"); !strings.Contains(v.Reason, "merged into "+first.ID) {
		t.Errorf("the merged request's reason %q does not say where it went", v.Reason)
	}
	if err := p.proc.SendNotice(ctx, first.ID, dsr.NoticeMerged); err != nil {
		t.Fatal(err)
	}
	_, text := p.mail("ada@example.com", first.ID, "merged")
	tok := regexpToken.FindStringSubmatch(text)
	if tok == nil {
		t.Fatalf("no status token in the merge notice:\n%s", text)
	}
	p.waitStatus(first.ID, tok[1], "verified")
}

// TestDuplicatesByProvenIdentity: an agent's filing is a duplicate of an
// open request only when they share an identity that request stands on,
// never one it resolved from customer data.
func TestDuplicatesByProvenIdentity(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	ada := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	// Its fan-out resolved an address from one of Ada's orders.
	ids := []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}, {Kind: dsr.KindEmail, Value: "eve@attacker.example", Source: "shop/orders"}}
	if _, err := a.store.Transition(ctx, ada, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "worker", Identities: ids, Hashes: a.index.HashAll(ids)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, body, want string
	}{
		{"Eve's address, to verify", `{"type":"deletion","regulation":"gdpr","subject":{"email":"eve@attacker.example"},"identity":{"verified":false}}`, "verifying"},
		{"Eve's own address", `{"type":"deletion","regulation":"gdpr","subject":{"email":"eve@attacker.example"}}`, "verified"},
		{"Ada's address again", `{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, "duplicate"},
	} {
		var v workflowView
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", tt.body, &v); resp.StatusCode != 202 || v.Status != tt.want {
			t.Errorf("%s: %d %s, want %s", tt.name, resp.StatusCode, v.Status, tt.want)
		}
	}
}

// TestMergeRace: two verifications of one request at once, the right code
// in both, while a verified open request of the same proven email exists.
// One merges it; the other finds it no longer verifying. Neither token is
// ever added to the open request.
func TestMergeRace(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	ctx := context.Background()
	first, second := p.filedTwice()
	if err := p.proc.SendNotice(ctx, second.ID, dsr.NoticeVerify); err != nil {
		t.Fatal(err)
	}
	_, text := p.mail("ada@example.com", second.ID, "verify")
	code := codeIn.FindStringSubmatch(text)[1]
	codes := atOnce(2, func() int {
		return p.call("POST", "/v1/portal/requests/"+second.ID+"/verify", second.StatusToken, `{"code":"`+code+`"}`, nil).StatusCode
	})
	slices.Sort(codes)
	if codes[0] != 200 || codes[1] != 409 {
		t.Errorf("two verifications at once: %v, want one 200 and one 409", codes)
	}
	r, err := p.store.Request(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.StatusTokens) != 1 {
		t.Errorf("the open request has %d status tokens, want its own only", len(r.StatusTokens))
	}
	if resp := p.call("GET", "/v1/portal/requests/"+first.ID, second.StatusToken, "", nil); resp.StatusCode != 404 {
		t.Errorf("the merged filer's token on the open request: %d, want 404", resp.StatusCode)
	}
}

// TestOptOutMergeSameIdentities: an opt-out needs no proof, so the
// identities an open one was filed with are anyone's word. A new opt-out is
// merged only into one filed with exactly its identities: never into Eve's,
// filed with her address and Ada's customer id (or the advertising id of
// Ada's phone), which would drop Ada's signal into a request Eve follows
// and mail Eve that Ada opted out.
func TestOptOutMergeSameIdentities(t *testing.T) {
	t.Parallel()
	for _, adas := range []string{`"customer_id":"cus_ada"`, `"advertising_id":"` + strings.ToUpper(graceIDFA) + `"`} {
		p := startPortal(t, portalConfig{}) // no workers: opt-outs stay open
		eve := p.submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"eve@attacker.example",` + adas + `}}`)
		if eve.Status != "verified" || eve.Merged {
			t.Fatalf("precondition: Eve's opt-out %+v", eve)
		}

		var ada created
		if resp := p.call("POST", "/v1/portal/gpc", "", `{"subject":{`+adas+`}}`, &ada, "Sec-GPC", "1"); resp.StatusCode != 202 {
			t.Fatalf("Ada's GPC signal with %s: %d", adas, resp.StatusCode)
		}
		if ada.Merged || ada.ID == "" || ada.ID == eve.ID {
			t.Fatalf("Ada's GPC signal with %s: %+v, want an opt-out of its own", adas, ada)
		}
		r, err := p.store.Request(context.Background(), eve.ID)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(r.PendingNotices, dsr.NoticeMerged) {
			t.Errorf("%s: Eve is to be mailed that someone else's opt-out joined hers", adas)
		}

		// The same submission again is still merged.
		if again := p.submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"eve@attacker.example",` + adas + `}}`); !again.Merged {
			t.Errorf("Eve's opt-out again with %s: %+v, want merged", adas, again)
		}
	}
}
