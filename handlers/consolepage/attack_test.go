package consolepage

import (
	"net/http"
	"strings"
	"testing"
)

// The language switch of a page an action re-rendered (its address is the
// action's) leads back to the request's page in the language chosen, not
// to a 405 problem.
func TestLanguageSwitchAfterAFailedAction(t *testing.T) {
	e := newEnv(t, now, nil)
	id := e.file(filing{})
	res := e.post("/console/requests/"+id+"/approve", agent, nil)
	if res.code != http.StatusConflict {
		t.Fatalf("approve a verified request: %d", res.code)
	}
	link := "/console/requests/" + id + "/approve?lang=fr"
	if !strings.Contains(res.body, `href="`+link+`"`) {
		t.Fatalf("no switch to %s on the page:\n%s", link, res.body)
	}
	got := e.get(link, agent)
	if got.code != http.StatusSeeOther || got.hdr.Get("Location") != "/console/requests/"+id {
		t.Fatalf("GET %s: %d %q, want 303 to the request's page:\n%s", link, got.code, got.hdr.Get("Location"), got.body)
	}
	if c := got.hdr.Get("Set-Cookie"); !strings.Contains(c, "dsar_lang=fr") {
		t.Errorf("the switch was not kept: Set-Cookie %q", c)
	}
}
