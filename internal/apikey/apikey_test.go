package apikey_test

import (
	"crypto/sha256"
	"testing"

	"github.com/dsar-project/dsar/internal/apikey"
)

func TestRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role         apikey.Role
		valid, works bool
	}{
		{apikey.RoleAdmin, true, true},
		{apikey.RoleAgent, true, true},
		{apikey.RoleAuditor, true, false},
		{"god", false, false},
		{"", false, false},
		{"Admin", false, false},
	}
	for _, tt := range tests {
		if got := tt.role.Valid(); got != tt.valid {
			t.Errorf("%q.Valid() = %v, want %v", tt.role, got, tt.valid)
		}
		if got := tt.role.WorksOnRequests(); got != tt.works {
			t.Errorf("%q.WorksOnRequests() = %v, want %v", tt.role, got, tt.works)
		}
	}
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	key := func(name string, r apikey.Role, secret string) apikey.Key {
		return apikey.Key{Name: name, Role: r, Hash: sha256.Sum256([]byte(secret))}
	}
	k := apikey.NewKeyring(key("ops", apikey.RoleAdmin, "ops-secret"), key("desk", apikey.RoleAgent, "desk-secret"), key("audit", apikey.RoleAuditor, "audit-secret"))
	tests := []struct {
		secret string
		want   apikey.Principal
		ok     bool
	}{
		{"ops-secret", apikey.Principal{Name: "ops", Role: apikey.RoleAdmin}, true},
		{"desk-secret", apikey.Principal{Name: "desk", Role: apikey.RoleAgent}, true},
		{"audit-secret", apikey.Principal{Name: "audit", Role: apikey.RoleAuditor}, true},
		{"wrong", apikey.Principal{}, false},
		{"", apikey.Principal{}, false},
	}
	for _, tt := range tests {
		got, ok := k.Authenticate(tt.secret)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tt.secret, got, ok, tt.want, tt.ok)
		}
	}
	for name, want := range map[string]bool{"ops": true, "desk": true, "audit": false, "nobody": false} {
		if got := k.HasAgent(name); got != want {
			t.Errorf("HasAgent(%q) = %v, want %v", name, got, want)
		}
	}
	if got, ok := k.Lookup("desk"); !ok || got != key("desk", apikey.RoleAgent, "desk-secret") {
		t.Errorf("Lookup(desk) = %+v, %v", got, ok)
	}
	if _, ok := k.Lookup("nobody"); ok {
		t.Error("Lookup(nobody) found a key")
	}
	if got := k.Principals(); len(got) != 3 || got[1] != (apikey.Principal{Name: "desk", Role: apikey.RoleAgent}) {
		t.Errorf("Principals() = %+v", got)
	}
}
