package mailchimp_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mailchimp"
)

// TestSettings: each bad setting is refused with an error that names it
// (and its line) and never quotes the key.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, env, want string
	}{
		{"no key", "lists: [a1b2c3d4e5]", "", "line 2: api_key: required"},
		{"literal key", "api_key: 0123456789abcdef-us21\n    lists: [a1b2c3d4e5]", "", "line 4: api_key must come from the environment"},
		{"key without data center", "api_key: ${MC_KEY}\n    lists: [a1b2c3d4e5]", "0123456789abcdef", "line 4: api_key: not a Mailchimp API key"},
		{"key with a line break", "api_key: ${MC_KEY}\n    lists: [a1b2c3d4e5]", "0123456789abcdef-us21\n", "line 4: api_key: holds a space"},
		{"bearer without data center", "api_key: ${MC_KEY}\n    auth: bearer\n    lists: [a1b2c3d4e5]", "0123456789abcdef", "line 2: data_center: required with auth: bearer"},
		{"data center against the key", "api_key: ${MC_KEY}\n    data_center: us6\n    lists: [a1b2c3d4e5]", "0123456789abcdef-us21", "line 5: data_center: us6, but the API key is of data center us21"},
		{"bad data center", "api_key: ${MC_KEY}\n    data_center: https://x\n    lists: [a1b2c3d4e5]", "0123456789abcdef-us21", "line 5: data_center: want a Mailchimp data center"},
		{"no lists", "api_key: ${MC_KEY}", "0123456789abcdef-us21", "line 2: lists: required"},
		{"bad list", "api_key: ${MC_KEY}\n    lists: [a1b2c3d4e5, ../x]", "0123456789abcdef-us21", "line 5: lists: entry 2: want an audience id"},
		{"list twice", "api_key: ${MC_KEY}\n    lists: [a1b2c3d4e5, a1b2c3d4e5]", "0123456789abcdef-us21", "line 5: lists: audience a1b2c3d4e5 is listed twice"},
		{"empty tag", "api_key: ${MC_KEY}\n    lists: [a1]\n    segment_tags: ['']", "0123456789abcdef-us21", "line 6: segment_tags: entry 1"},
		{"unknown action", "api_key: ${MC_KEY}\n    lists: [a1]\n    actions: [correct]", "0123456789abcdef-us21", `line 6: actions: unknown action "correct"`},
		{"bad auth", "api_key: ${MC_KEY}\n    lists: [a1]\n    auth: digest", "0123456789abcdef-us21", `line 6: auth: want basic or bearer`},
		{"bad timeout", "api_key: ${MC_KEY}\n    lists: [a1]\n    timeout: 10m", "0123456789abcdef-us21", `line 6: timeout: want a duration from 1s to 5m0s`},
		{"plain http base", "api_key: ${MC_KEY}\n    lists: [a1]\n    base_url: http://mc.example.com/3.0", "0123456789abcdef-us21", `line 6: base_url: must be https`},
		{"unknown setting", "api_key: ${MC_KEY}\n    list: [a1]", "0123456789abcdef-us21", `line 5: unknown setting "list"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := "connectors:\n  - name: newsletter\n    type: mailchimp\n    " + tc.yaml + "\n"
			types := connectors.Types{mailchimp.Type: mailchimp.Factory(connectors.Deps{})}
			lookup := func(string) (string, bool) { return tc.env, true }
			_, err := connectors.Parse(t.Context(), []byte(file), types, lookup)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v; want an error with %q", err, tc.want)
			}
			if tc.env != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.env)) {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

// TestSettingsDefaults: a key's suffix names the API's host, and the three
// actions are done unless the file narrows them.
func TestSettingsDefaults(t *testing.T) {
	t.Parallel()
	c, err := mailchimp.New("newsletter", mailchimp.Spec{APIKey: "0123456789abcdef-us21", Lists: []string{"a1"}, Actions: []string{"export"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Handles(connectors.ActionExport) || c.Handles(connectors.ActionErase) || c.Handles(connectors.ActionOptOut) {
		t.Error("actions: [export] handles more than export")
	}
	if got, want := mailchimp.BaseURL(c), "https://us21.api.mailchimp.com/3.0"; got != want {
		t.Errorf("base URL = %s; want %s", got, want)
	}
}
