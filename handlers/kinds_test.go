package handlers_test

import (
	"strings"
	"testing"
)

// TestAgentDeviceIDs: the agent API takes advertising and device ids as it
// takes a customer id: normalised (an IDFA in upper case stored in lower),
// vouched for by an agent who files verified, kept as claimed when the
// person is to verify (only the email is then proven), and refused, naming
// the field and never quoting the value, when the id is a placeholder that
// names no one device.
func TestAgentDeviceIDs(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	type view struct {
		Status  string            `json:"status"`
		Subject map[string]string `json:"subject"`
		Claimed []struct {
			Kind, Value string
		} `json:"claimed_identities"`
	}
	var v view
	if resp := a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"deletion","regulation":"gdpr","subject":{"advertising_id":" 6D92078A-8246-4BA4-AE5B-76104861E7DC ","device_id":"A1B2C3D4E5F60718"},"identity":{"verified":true,"method":"in the app, signed in"}}`, &v); resp.StatusCode != 202 {
		t.Fatalf("file by advertising id: %d", resp.StatusCode)
	}
	if v.Subject["advertising_id"] != "6d92078a-8246-4ba4-ae5b-76104861e7dc" || v.Subject["device_id"] != "a1b2c3d4e5f60718" || len(v.Claimed) != 0 {
		t.Errorf("filed verified: subject %v, claimed %v; want both ids normalised, acted on", v.Subject, v.Claimed)
	}

	v = view{}
	if resp := a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com","advertising_id":"6d92078a-8246-4ba4-ae5b-76104861e7dc"},"identity":{"verified":false}}`, &v); resp.StatusCode != 202 {
		t.Fatalf("file to verify: %d", resp.StatusCode)
	}
	if v.Status != "verifying" || len(v.Subject) != 1 || v.Subject["email"] != "ada@example.com" ||
		len(v.Claimed) != 1 || v.Claimed[0].Kind != "advertising_id" {
		t.Errorf("filed to verify: %s, subject %v, claimed %v; want the advertising id claimed", v.Status, v.Subject, v.Claimed)
	}

	for _, tt := range []struct{ name, subject, field string }{
		{"the all-zero advertising id", `{"advertising_id":"00000000-0000-0000-0000-000000000000"}`, "subject.advertising_id"},
		{"an advertising id that is no UUID", `{"advertising_id":"38400000-8cf0-11bd-b23e"}`, "subject.advertising_id"},
		{"the Android ID many devices share", `{"email":"ada@example.com","device_id":"9774d56d682e549c"}`, "subject.device_id"},
		{"a device id with a space", `{"device_id":"a1b2c3d4 e5f60718"}`, "subject.device_id"},
	} {
		resp, body := a.send("POST", "/v1/requests", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":`+tt.subject+`}`)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"field":"`+tt.field+`"`) {
			t.Errorf("%s: %d %s; want 400 naming %s", tt.name, resp.StatusCode, body, tt.field)
		}
		for _, quoted := range []string{"00000000-0000", "38400000", "9774d56d682e549c", "a1b2c3d4 e5f60718"} {
			if strings.Contains(string(body), quoted) {
				t.Errorf("%s: the problem quotes the value: %s", tt.name, body)
			}
		}
	}
}
