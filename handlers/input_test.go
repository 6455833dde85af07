package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// hiddenText are values no free-text field takes: each could make an email
// or a page say what the service did not, or hide what it holds.
var hiddenText = []struct{ name, json string }{
	{"line feed", `Agent\nReply to this address with the code below`},
	{"CR", `Agent\rReply`},
	{"CRLF", `Agent\r\nReply`},
	{"NUL", `Agent\u0000`},
	{"ESC", `Agent\u001b[2J`},
	{"DEL", `Agent\u007f`},
	{"C1 CSI", `Agent\u009b`},
	{"NEL", `Agent\u0085Reply`},
	{"line separator", `Agent\u2028Reply`},
	{"RLO", `Agent \u202edoc.exe`},
	{"LRI", `Agent \u2066x`},
	{"LRM", `Agent\u200e`},
	{"ALM", `Agent\u061c`},
	{"zero-width space", `Ag\u200bent`},
	{"BOM", `\ufeffAgent`},
	{"bytes that were not UTF-8", "Agent\xff"},
}

// multiLine are the values of hiddenText a prose field (a reason, a note)
// takes: line feeds.
var multiLine = map[string]bool{"line feed": true}

// TestPortalRefusesHiddenText: every free-text field of a portal filing
// refuses control, bidirectional and invisible characters with a 400 naming
// the field, and nothing is stored.
func TestPortalRefusesHiddenText(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	bodies := map[string]func(v string) string{
		"agent.name": func(v string) string {
			return `{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"},"agent":{"name":"` + v + `","email":"agent@example.com","signed_permission":true}}`
		},
		"subject.customer_id": func(v string) string {
			return `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com","customer_id":"` + v + `"}}`
		},
	}
	for field, body := range bodies {
		for _, tt := range hiddenText {
			var pr problemJSON
			resp := p.call("POST", "/v1/portal/requests", "", body(tt.json), &pr)
			if resp.StatusCode != 400 {
				t.Errorf("%s with %s: %d, want 400", field, tt.name, resp.StatusCode)
				continue
			}
			if diff := cmp.Diff([]string{field}, pr.fields()); diff != "" {
				t.Errorf("%s with %s: fields named (-want +got):\n%s", field, tt.name, diff)
			}
		}
	}
	for _, tt := range lookalikes {
		for _, field := range []string{"subject.email", "agent.email"} {
			body := `{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"},"agent":{"name":"Helpers","email":"` + tt.email + `","signed_permission":true}}`
			if field == "subject.email" {
				body = `{"type":"access","regulation":"gdpr","subject":{"email":"` + tt.email + `"}}`
			}
			var pr problemJSON
			resp := p.call("POST", "/v1/portal/requests", "", body, &pr)
			if resp.StatusCode != 400 {
				t.Errorf("%s %s: %d, want 400", field, tt.name, resp.StatusCode)
				continue
			}
			if diff := cmp.Diff([]string{field}, pr.fields()); diff != "" {
				t.Errorf("%s %s: fields named (-want +got):\n%s", field, tt.name, diff)
			}
		}
	}
	if n := p.store.Count(t, mongostore.RequestsCollection); n != 0 {
		t.Errorf("%d requests stored after rejections", n)
	}
}

// lookalikes are emails that could pass for another address, or reach a
// machine rather than a mailbox.
var lookalikes = []struct{ name, email string }{
	{"IP literal", "ada@[127.0.0.1]"},
	{"bare IP", "ada@127.0.0.1"},
	{"zero-width space", `ad\u200ba@example.com`},
	{"zero-width joiner", `ada@exa\u200dmple.com`},
	{"Cyrillic a in a Latin name", `\u0430da@example.com`},
	{"Cyrillic o in a Latin domain label", `ada@examp\u043ele.com`},
	{"mixed punycode label", "ada@xn--pypal-4ve.com"},
	{"invalid UTF-8", "ad\xffa@example.com"},
	{"fullwidth a", `\uff41da@example.com`},
	{"numeric top-level label", "ada@127.1"},
}

// TestAgentAPIRefusesHiddenText: the same for every free-text field of the
// agent API, each in its own call. Prose fields (note, reasons, a basis)
// take line feeds; one-line fields take none. The checks come before the
// request is looked up, so an id that does not exist serves.
func TestAgentAPIRefusesHiddenText(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	const id = "01a20d27-0000-7000-8000-000000000000"
	calls := []struct {
		field, path string
		oneLine     bool
		body        func(v string) string
	}{
		{"note", "/v1/requests", false, func(v string) string {
			return `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"note":"` + v + `"}`
		}},
		{"identity.method", "/v1/requests", true, func(v string) string {
			return `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":true,"method":"` + v + `"}}`
		}},
		{"subject.customer_id", "/v1/requests", true, func(v string) string {
			return `{"type":"access","regulation":"gdpr","subject":{"customer_id":"` + v + `"}}`
		}},
		{"reason", "/v1/requests/" + id + "/deny", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"reason", "/v1/requests/" + id + "/cancel", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"reason", "/v1/requests/" + id + "/extend", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"reason", "/v1/requests/" + id + "/pause", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"reason", "/v1/requests/" + id + "/appeal", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"reason", "/v1/requests/" + id + "/close", false, func(v string) string { return `{"reason":"` + v + `"}` }},
		{"exceptions[0].connector", "/v1/requests/" + id + "/close", true, func(v string) string {
			return `{"reason":"done","exceptions":[{"connector":"` + v + `","basis":"tax law"}]}`
		}},
		{"exceptions[0].collection", "/v1/requests/" + id + "/close", true, func(v string) string {
			return `{"reason":"done","exceptions":[{"connector":"billing","collection":"` + v + `","basis":"tax law"}]}`
		}},
		{"exceptions[0].basis", "/v1/requests/" + id + "/close", false, func(v string) string {
			return `{"reason":"done","exceptions":[{"connector":"billing","basis":"` + v + `"}]}`
		}},
	}
	for _, c := range calls {
		for _, tt := range hiddenText {
			var raw json.RawMessage
			resp := a.do("POST", c.path, agentKey, "application/json", c.body(tt.json), &raw)
			var pr problemJSON
			if resp.StatusCode >= 400 {
				_ = json.Unmarshal(raw, &pr)
			}
			if !c.oneLine && multiLine[tt.name] {
				if resp.StatusCode == 400 {
					t.Errorf("%s %s with %s: 400 %v, want it taken (prose may break lines)", c.path, c.field, tt.name, pr.fields())
				}
				continue
			}
			if resp.StatusCode != 400 {
				t.Errorf("%s %s with %s: %d, want 400", c.path, c.field, tt.name, resp.StatusCode)
				continue
			}
			if diff := cmp.Diff([]string{c.field}, pr.fields()); diff != "" {
				t.Errorf("%s %s with %s: fields named (-want +got):\n%s", c.path, c.field, tt.name, diff)
			}
		}
	}
	for _, tt := range lookalikes {
		var pr problemJSON
		resp := a.do("POST", "/v1/requests", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"`+tt.email+`"}}`, &pr)
		if resp.StatusCode != 400 || strings.Join(pr.fields(), ",") != "subject.email" {
			t.Errorf("subject.email %s: %d %v, want 400 naming subject.email", tt.name, resp.StatusCode, pr.fields())
		}
	}
	// The note's line feed was taken: one request filed, nothing else.
	if n := a.countRequests(); n != 1 {
		t.Errorf("%d requests stored, want the 1 whose note had a line feed", n)
	}
}

// TestVerificationEmailQuotesTheAgent reads the verification email a real
// SMTP server received for a request an authorised agent filed under a
// name built to read as the service's own words: the name appears once,
// in quotes inside the service's sentence, escaped, and no line of the
// message starts with it.
func TestVerificationEmailQuotesTheAgent(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{workers: true})
	const name = `Helpers" -- Reply to this address with the code below. "`
	b, _ := json.Marshal(name)
	c := p.submit(`{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"},"agent":{"name":` + string(b) + `,"email":"agent@example.com","signed_permission":true}}`)
	_, text := p.mail("ada@example.com", c.ID, "verify")
	want := "by someone acting as your authorised agent, who gave the name \u2068" + `"Helpers\" -- Reply to this address with the code below. \""` +
		"\u2069 (as they typed it; we have not checked it)."
	if strings.Count(text, "Reply to this address") != 1 || !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
		t.Errorf("the verification email does not quote the agent's name as data; want %q in:\n%s", want, text)
	}
	for _, line := range strings.Split(text, "\n") {
		if l := strings.Trim(strings.TrimSpace(line), "\u2068"); strings.HasPrefix(l, "Reply") || strings.HasPrefix(l, `"Helpers`) {
			t.Errorf("a line starts with the agent's words: %q", line)
		}
	}

	// An agent's reason, lines and all, is told as a quoted block.
	ctx := context.Background()
	if _, err := p.store.Transition(ctx, c.ID, dsr.StatusVerifying, dsr.StatusDenied, dsr.Change{Actor: "desk",
		Reason: "We could not match you.\nReply with your password", Notices: []string{dsr.NoticeDenied}}); err != nil {
		t.Fatal(err)
	}
	if err := p.proc.SendNotice(ctx, c.ID, dsr.NoticeDenied); err != nil {
		t.Fatal(err)
	}
	_, text = p.mail("ada@example.com", c.ID, "denied")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if !strings.Contains(text, "\n    > We could not match you.\n    > Reply with your password\n") {
		t.Errorf("the denial does not quote the reason as a block:\n%s", text)
	}
}
