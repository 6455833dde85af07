package portalpage_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// correction is a correction form of the rows given as field, value pairs.
func correction(email string, rows ...string) url.Values {
	v := url.Values{"type": {"correction"}, "regulation": {"gdpr"}, "email": {email}}
	for i := 0; i+1 < len(rows); i += 2 {
		v.Add("correction_field", rows[i])
		v.Add("correction_value", rows[i+1])
	}
	return v
}

// TestCorrectionFlow: the form offers the fields the connectors can
// correct, three rows at once; the rows filled are filed in order (blank
// ones dropped), the code proves the email, and the request is then held
// for an agent by the workers' fan-out; every page says an agent checks the
// changes first. The value typed, markup and all, shows on no page.
func TestCorrectionFlow(t *testing.T) {
	p := startPortal(t, []string{"name", "address", "email", "loyalty_tier"})
	b := p.browser()
	_, home := b.get("/privacy")
	contains(t, home, `id="type-correction" value="correction"`, `id="type-correction-hint"`, `id="correction-fieldset"`, `id="correction-hint"`,
		`for="correction_field_0"`, `id="correction_field_0" name="correction_field"`, `for="correction_value_0"`, `id="correction_value_0" name="correction_value"`,
		`id="correction_field_2"`, `id="correction_value_2"`, `<option value="">Choose a detail</option>`,
		`<option value="address">Postal address</option>`, `<option value="email">Email address</option>`, `<option value="loyalty_tier">loyalty_tier</option>`,
		"checks every change before it is made", "see, correct or delete")
	lacks(t, home, `id="correction_field_3"`, `id="correction-info"`)

	const name = `Ada"><script>alert(1)</script> King`
	id := b.submit(correction("ada@example.com", "name", name, "", "", "email", "Ada.King@Example.com"))
	req := p.request(id)
	if req.Type != dsr.TypeCorrection || req.Status != dsr.StatusVerifying {
		t.Fatalf("filed %s %s", req.Type, req.Status)
	}
	if diff := cmp.Diff([]dsr.FieldValue{{Field: "name", Value: name}, {Field: "email", Value: "ada.king@example.com"}}, req.CorrectionValues()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	_, page := b.get("/privacy/requests/" + id + "?done=submitted")
	contains(t, page, "Correct my data", `id="correction-held"`, "nothing is changed until then", `id="verify-form"`)

	p.issueCode(id, "123456", "linktoken")
	if resp, page := b.post("/privacy/requests/"+id+"/verify", url.Values{"code": {"123456"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d\n%s", resp.StatusCode, page)
	}
	if got := p.request(id).Status; got != dsr.StatusVerified {
		t.Fatalf("after the code: %s", got)
	}
	p.fanout(id)
	held := p.request(id)
	if held.Status != dsr.StatusAwaitingApproval || held.ApprovedBy != "" {
		t.Fatalf("after the fan-out: %s; want awaiting_approval", held.Status)
	}
	_, page = b.get("/privacy/requests/" + id)
	contains(t, page, `data-status="awaiting_approval"`, "Being reviewed", `id="correction-held"`)
	lacks(t, page, `id="verify-form"`)
	for _, pg := range *b.pages {
		lacks(t, pg, "<script>alert", "ada.king@example.com")
	}
	checkMarkup(t, *b.pages)
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(line, "ada@example.com") || strings.Contains(line, "King") {
			t.Errorf("a log line holds personal data: %s", line)
		}
	}
}

// TestCorrectionErrors: each bad change is shown on its row, next to its
// select or input and in the summary, the input kept and escaped; too many
// rows, none, or a correction the form does not offer are refused as a
// whole. Nothing is filed.
func TestCorrectionErrors(t *testing.T) {
	p := startPortal(t, []string{"name", "email"})
	evil := `"><script>alert(1)</script><img src=x onerror=alert(2)>`

	t.Run("rows", func(t *testing.T) {
		b := p.browser()
		b.get("/privacy")
		// Row 3 is beyond the form's rows: a crafted post, shown all the same.
		resp, page := b.post("/privacy/requests", correction("ada@example.com", "name", evil, "shoe_size", evil, "email", "not an email", "name", "again"))
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d", resp.StatusCode)
		}
		contains(t, page, `id="error-summary"`, `href="#correction_field_1"`, `href="#correction_value_2"`, `href="#correction_field_3"`,
			`id="correction_field_1-error"`, `aria-describedby="correction_field_1-error" aria-invalid="true"`,
			`id="correction_value_2-error"`, `aria-describedby="correction_value_2-error" aria-invalid="true"`,
			`id="correction_field_3-error"`, "Choose a detail from the list", "a valid email address or phone number",
			`id="type-correction" value="correction" checked`, `<option value="name" selected>`, `value="not an email"`, `value="again"`,
			"&lt;script&gt;alert(1)&lt;/script&gt;")
		lacks(t, page, "<script>alert", "<img src=x", `href="#correction_value_0"`, `id="correction_field_4"`)
		checkMarkup(t, *b.pages)
	})

	t.Run("100 rows", func(t *testing.T) {
		b := p.browser()
		b.get("/privacy")
		var rows []string
		for range 100 {
			rows = append(rows, "name", "x")
		}
		resp, page := b.post("/privacy/requests", correction("ada@example.com", rows...))
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d", resp.StatusCode)
		}
		contains(t, page, `id="corrections-error"`, "at most 20 changes", `href="#correction_field_0"`, `aria-describedby="correction-hint corrections-error"`)
		if n := strings.Count(page, `name="correction_field"`); n != dsr.MaxCorrections {
			t.Errorf("%d rows shown, want %d", n, dsr.MaxCorrections)
		}
	})

	t.Run("none", func(t *testing.T) {
		b := p.browser()
		b.get("/privacy")
		resp, page := b.post("/privacy/requests", correction("ada@example.com", "", "  ", "", ""))
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d", resp.StatusCode)
		}
		contains(t, page, `id="corrections-error"`, "Choose at least one detail")
	})

	t.Run("french", func(t *testing.T) {
		b := p.browser()
		b.get("/privacy?lang=fr")
		_, page := b.post("/privacy/requests", correction("ada@example.com", "shoe_size", "42"))
		contains(t, page, `<html lang="fr">`, "Choisissez une information dans la liste", "Corriger mes données", "Valeur correcte de l&#39;information 1")
	})

	t.Run("rows of another type", func(t *testing.T) {
		b := p.browser()
		v := correction("ada@example.com", "name", "Ada")
		v.Set("type", "access")
		if got := p.request(b.submit(v)); got.Type != dsr.TypeAccess || len(got.Corrections) != 0 {
			t.Errorf("filed %s with %+v", got.Type, got.Corrections)
		}
	})
	filed := p.count()

	t.Run("not offered", func(t *testing.T) {
		q := startPortal(t, nil)
		b := q.browser()
		_, home := b.get("/privacy")
		lacks(t, home, `id="type-correction"`, `id="correction-fieldset"`)
		resp, page := b.post("/privacy/requests", correction("ada@example.com", "name", "Ada"))
		if resp.StatusCode != http.StatusUnprocessableEntity || q.count() != 0 {
			t.Fatalf("status %d, %d filed", resp.StatusCode, q.count())
		}
		contains(t, page, `id="type-error"`)
	})
	if n := p.count(); n != filed || n != 1 {
		t.Errorf("%d requests filed, want only the access", n)
	}
}
