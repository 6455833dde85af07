package redis_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/redis"
	"github.com/dsar-project/dsar/internal/testenv"
)

// checks renders c's checks as "what: ok", "what: FAIL" or "what: unknown".
func checks(t *testing.T, c connectors.Checker) []string {
	t.Helper()
	var out []string
	for _, ch := range c.Check(t.Context()) {
		switch {
		case ch.Unknown():
			out = append(out, ch.What+": unknown")
		case ch.Passed():
			out = append(out, ch.What+": ok")
		default:
			out = append(out, ch.What+": FAIL")
		}
	}
	return out
}

// permissionChecks are goSpec's permission checks, in order.
var permissionChecks = []string{
	"permission to export in profiles", "permission to erase in profiles", "permission to opt_out in profiles",
	"permission to export in user_data", "permission to erase in user_data",
	"permission to export in segments", "permission to erase in segments", "permission to opt_out in segments",
}

// withResults returns the checks of goSpec's connector, reachable and
// credentials ok, each permission check "ok" but those in result.
func withResults(result map[string]string) []string {
	out := []string{"reachable: ok", "credentials accepted: ok"}
	for _, c := range permissionChecks {
		r, ok := result[c]
		if !ok {
			r = "ok"
		}
		out = append(out, c+": "+r)
	}
	return out
}

// TestCheck checks what Check reports for the server's default user, an
// ACL user who may only read, one who may not ask ACL DRYRUN, a rejected
// password and an unreachable server.
func TestCheck(t *testing.T) {
	t.Parallel()
	srv, rdb, p := server(t)
	unknown := map[string]string{}
	for _, c := range permissionChecks {
		unknown[c] = "unknown"
	}
	t.Run("unreachable", func(t *testing.T) {
		got := checks(t, build(t, goSpec(testenv.ClosedAddr(t), p)))
		if diff := cmp.Diff([]string{"reachable: FAIL"}, got); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
	})
	if !srv.Real {
		// The in-process stand-in has no ACL: every permission is unknown.
		if diff := cmp.Diff(withResults(unknown), checks(t, build(t, goSpec(srv.Addr, p)))); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
		return
	}
	t.Run("default user", func(t *testing.T) {
		if diff := cmp.Diff(withResults(nil), checks(t, build(t, goSpec(srv.Addr, p)))); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
	})
	// reader may read and run scripts under p, not write; asker may also
	// ask ACL DRYRUN and WHOAMI.
	user := func(t *testing.T, extra ...any) redis.Spec {
		name, pw := aclUser(t, rdb, p), testenv.Name("pw")
		args := append([]any{"ACL", "SETUSER", name, "resetpass", ">" + pw, "-@all", "+@read", "+eval", "+ping", "+scan", "+type", "+hello", "+auth"}, extra...)
		testenv.Must(t, rdb.Do(t.Context(), args...).Err())
		spec := goSpec(srv.Addr, p)
		spec.Username, spec.Password = name, pw
		return spec
	}
	t.Run("read only", func(t *testing.T) {
		c := build(t, user(t, "+acl|dryrun", "+acl|whoami"))
		want := withResults(map[string]string{
			"permission to erase in profiles": "FAIL", "permission to opt_out in profiles": "FAIL",
			"permission to erase in user_data": "FAIL",
			"permission to erase in segments":  "FAIL", "permission to opt_out in segments": "FAIL",
		})
		got := checks(t, c)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
		for _, ch := range c.Check(t.Context()) {
			if ch.What == "permission to erase in user_data" && (ch.Err == nil || !strings.Contains(ch.Err.Error(), "UNLINK")) {
				t.Errorf("erase in user_data: %v; want the command it may not run, UNLINK", ch.Err)
			}
		}
	})
	t.Run("may not ask", func(t *testing.T) {
		if diff := cmp.Diff(withResults(unknown), checks(t, build(t, user(t)))); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		spec := user(t)
		spec.Password = "not-the-password"
		want := []string{"reachable: ok", "credentials accepted: FAIL"}
		if diff := cmp.Diff(want, checks(t, build(t, spec))); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
	})
}

var _ connectors.Checker = (*redis.Connector)(nil)
