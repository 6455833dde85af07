package connectors_test

import (
	"errors"
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// TestAtSetting: a setting's error points at its line (a nested one at
// its top-level key's), any other error at the entry's.
func TestAtSetting(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("name: crm\ntype: x\nopt_out:\n  lists: [a]\n"), &doc); err != nil {
		t.Fatal(err)
	}
	entry := doc.Content[0]
	for _, tc := range []struct {
		err  error
		want string
	}{
		{connectors.SettingErrorf("type", "unknown %q", "x"), `line 2: type: unknown "x"`},
		{fmt.Errorf("build: %w", connectors.SettingErrorf("opt_out.lists", "list %s is dynamic", "a")), "line 3: opt_out.lists: list a is dynamic"},
		{connectors.SettingErrorf("token", "required"), "line 1: token: required"},
		{errors.New("boom"), "line 1: boom"},
	} {
		if got := connectors.AtSetting(entry, tc.err).Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
