package webhook_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/webhook"
)

func env(name string) (string, bool) {
	if name == "CRM_WEBHOOK_SECRET" {
		return testSecret, true
	}
	return "", false
}

// TestFile: a webhook entry of the connectors file builds a connector that
// handles the actions it lists; every mistake is refused at load with its
// line.
func TestFile(t *testing.T) {
	t.Parallel()
	types := connectors.Types{webhook.Type: webhook.Factory(connectors.Deps{PublicURL: "https://dsar.example.com"})}
	reg, err := connectors.Parse(t.Context(), []byte(`connectors:
  - name: crm
    type: webhook
    url: https://crm.example.com/dsar
    secret: ${CRM_WEBHOOK_SECRET}
    actions: [erase, opt_out]
    timeout: 10s
`), types, env)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Lookup("crm")
	if connectors.Supports(c, connectors.ActionExport) || !connectors.Supports(c, connectors.ActionErase) || !connectors.Supports(c, connectors.ActionOptOut) {
		t.Error("the connector does not handle exactly the actions listed")
	}
	if _, ok := c.(connectors.CallbackVerifier); !ok {
		t.Error("a webhook connector takes no callbacks")
	}

	for _, tt := range []struct{ name, entry, want string }{
		{"literal secret", "url: https://crm.example.com/\n    secret: whsec_abc", "line 5: secret must come from the environment"},
		{"unset secret", "url: https://crm.example.com/\n    secret: ${NOPE}", "line 5: environment variable NOPE is not set"},
		{"no url", "secret: ${CRM_WEBHOOK_SECRET}", "line 2: url: required"},
		{"plain http", "url: http://crm.example.com/\n    secret: ${CRM_WEBHOOK_SECRET}", "line 4: url: must be https"},
		{"loopback", "url: https://127.0.0.1/\n    secret: ${CRM_WEBHOOK_SECRET}", "line 4: url: 127.0.0.1 is a loopback"},
		{"metadata", "url: http://169.254.169.254/\n    allow_insecure: true\n    secret: ${CRM_WEBHOOK_SECRET}", "line 4: url: 169.254.169.254"},
		{"user info", "url: https://u:${CRM_WEBHOOK_SECRET}@crm.example.com/\n    secret: ${CRM_WEBHOOK_SECRET}", "line 4: url: want an https:// URL with a host and no user info"},
		{"short secret", "url: https://crm.example.com/\n    secret: ${SHORT}", "line 5: environment variable SHORT"},
		{"unknown action", "url: https://crm.example.com/\n    secret: ${CRM_WEBHOOK_SECRET}\n    actions: [sell]", "line 6: actions: unknown action"},
		{"bad timeout", "url: https://crm.example.com/\n    secret: ${CRM_WEBHOOK_SECRET}\n    timeout: 1h", "line 6: timeout"},
		{"typo", "url: https://crm.example.com/\n    secret: ${CRM_WEBHOOK_SECRET}\n    allow_privat: true", `line 6: unknown setting "allow_privat"`},
	} {
		_, err := connectors.Parse(t.Context(), []byte("connectors:\n  - name: crm\n    type: webhook\n    "+tt.entry+"\n"), types, env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
}
