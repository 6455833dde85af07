package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dsar-project/dsar/internal/browsertest"
	"github.com/dsar-project/dsar/internal/testenv"
)

// The browser tests drive the running binary's pages in headless Chromium
// (package browsertest): every page visited passes axe-core, fits 375 px,
// raises no script error or CSP violation, and is screenshotted at both
// sizes into DSAR_SCREENSHOTS_DIR (`make screenshots`: docs/screenshots).
// Without Chromium or axe-core they skip, unless DSAR_TEST_REQUIRE_BROWSER=1.

// checkPage runs browsertest.Check on the tab's page at the desktop size,
// then at 375 px, and leaves the tab at 375 px.
func checkPage(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.SetViewport(t, ctx, browsertest.Desktop)
	browsertest.Check(t, ctx, name)
	browsertest.SetViewport(t, ctx, browsertest.Mobile)
	browsertest.Check(t, ctx, name)
}

// exists reports whether the tab's page has an element matching css.
func exists(t *testing.T, ctx context.Context, css string) bool {
	t.Helper()
	return browsertest.Run(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, css)))
}

// reloadUntil reloads the tab's page until it has an element matching css.
func reloadUntil(t *testing.T, ctx context.Context, css string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !exists(t, ctx, css) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s still has no %s", within, browsertest.Run(t, ctx, chromedp.Location()), css)
		}
		browsertest.Do(t, ctx, chromedp.Sleep(300*time.Millisecond), chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("main")))
	}
}

// mailText waits for the message of kind (X-DSAR-Kind) to to, and returns
// its body.
func mailText(t *testing.T, mailbox *testenv.SMTPServer, to, kind string) string {
	t.Helper()
	m := mailbox.WaitMessage(t, to, func(r testenv.Received) bool {
		return strings.Contains(string(r.Data), "X-DSAR-Kind: "+kind)
	}, time.Minute)
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	return string(body)
}

// frenchSkip is the French of the layout's "Skip to content" link, from
// the catalogue.
func frenchSkip(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "handlers", "webkit", "messages", "fr.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fr map[string]string
	if err := json.Unmarshal(data, &fr); err != nil || fr["common.skip"] == "" {
		t.Fatalf("webkit's fr.json: %v", err)
	}
	return fr["common.skip"]
}

// TestBrowserPortal is a person using the privacy portal: they ask for
// their data with the keyboard, type the emailed code, wait for the
// export, download it, switch to French; and a browser with Global Privacy
// Control on is told its signal was honoured.
func TestBrowserPortal(t *testing.T) {
	b := browsertest.Start(t) // skips before anything starts when there is no browser
	r := testenv.RedisServer(t)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=none",
		"DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password, "DSAR_SMTP_FROM=Privacy <privacy@shop.example>")
	p := startDSAR(t, env, "dev", "--demo")

	ctx := b.NewTab(t, browsertest.TabOptions{Viewport: browsertest.Mobile})
	browsertest.Do(t, ctx, chromedp.Navigate(p.base+"/privacy"), chromedp.WaitVisible(chromedp.CSS("#request-form")))
	checkPage(t, ctx, "portal-home")

	// Ask for a copy of the data, at 375 px, sending the form with Enter.
	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS(`#request-form input[name="type"][value="access"]`)),
		chromedp.SendKeys(chromedp.CSS(`#request-form input[name="email"]`), "ada@example.com"),
	)
	browsertest.Do(t, ctx, chromedp.SetValue(chromedp.CSS(`#request-form select[name="regulation"]`), "gdpr"))
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.CSS(`#request-form input[name="email"]`), kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#verify-form")),
	)
	status := browsertest.Run(t, ctx, chromedp.Location())
	if !regexp.MustCompile(`/privacy/requests/[^/?#]+(\?[^#]*)?$`).MatchString(status) {
		t.Fatalf("after sending the form, the tab is at %s, not a request's status page", status)
	}
	checkPage(t, ctx, "portal-status-verify")

	// The emailed code, typed.
	code := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(mailText(t, mailbox, "ada@example.com", "verify"))
	if code == nil {
		t.Fatal("no code in the verification email")
	}
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.CSS(`#verify-form input[name="code"]`), code[1]),
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitNotPresent(chromedp.CSS("#verify-form")),
		chromedp.WaitVisible(chromedp.CSS("#status")),
	)
	if st := browsertest.Run(t, ctx, chromedp.AttributeValue(chromedp.CSS("#status"), "data-status")); st.Value == "verifying" {
		t.Fatalf("after the code, the request is still %q", st.Value)
	}
	checkPage(t, ctx, "portal-status-verified")

	// Completed: the download link appears; the export is Ada's data.
	reloadUntil(t, ctx, "#download", time.Minute)
	if !exists(t, ctx, `#status[data-status="completed"]`) {
		t.Error("the download link is there, the status is not completed")
	}
	checkPage(t, ctx, "portal-status-completed")
	got := browsertest.Run(t, ctx, chromedp.Evaluate[struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Data   string `json:"data"`
	}](`fetch(document.querySelector("#download").href).then(async r => {
		const u = new Uint8Array(await r.arrayBuffer());
		let s = "";
		for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
		return {status: r.status, type: r.headers.get("content-type") || "", data: btoa(s)};
	})`, chromedp.EvalAwaitPromise))
	data, err := base64.StdEncoding.DecodeString(got.Data)
	if err != nil || got.Status != http.StatusOK || got.Type != "application/zip" {
		t.Fatalf("download: %d %s %v", got.Status, got.Type, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	found := false
	for _, f := range zr.File {
		found = found || f.Name == "shop/orders.json"
	}
	if !found {
		t.Errorf("the download lacks Ada's orders: %v", zr.File)
	}

	// The language switch: the same page in French.
	english := browsertest.Run(t, ctx, chromedp.Text(chromedp.CSS("h1")))
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`footer a[hreflang="fr"]`)), chromedp.WaitReady(chromedp.CSS(`html[lang="fr"]`)))
	if skip := browsertest.Run(t, ctx, chromedp.TextContent(chromedp.CSS("a.skip"))); skip != frenchSkip(t) {
		t.Errorf("in French the skip link reads %q", skip)
	}
	if french := browsertest.Run(t, ctx, chromedp.Text(chromedp.CSS("h1"))); french == english {
		t.Errorf("the heading stayed %q in French", french)
	}
	checkPage(t, ctx, "portal-status-fr")

	// Global Privacy Control: the browser's signal, read by privacy.js.
	gpc := b.NewTab(t, browsertest.TabOptions{GPC: true})
	browsertest.Do(t, gpc, chromedp.Navigate(p.base+"/privacy"), chromedp.WaitVisible(chromedp.CSS("#gpc-notice")))
	checkPage(t, gpc, "portal-gpc")
}

// TestBrowserConsole is an agent at the console: they sign in with their
// API key, find the requests in the queue, approve a deletion that waits
// for them and see it completed, look at the dashboard and the job queues,
// and sign out.
func TestBrowserConsole(t *testing.T) {
	b := browsertest.Start(t)
	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_APPROVAL_REQUIRED=deletion", "DSAR_APPROVAL_FOUR_EYES=none")
	p := startDSAR(t, env, "dev", "--demo")

	access := p.file("access", "gdpr", "ada@example.com") // a completed one, for the queue and the dashboard
	var deletion request
	if code := p.call("POST", "/v1/requests", `{"type":"deletion","regulation":"gdpr","subject":{"email":"grace@example.com"}}`, &deletion); code != http.StatusAccepted {
		t.Fatalf("file the deletion: %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); deletion.Status != "awaiting_approval"; time.Sleep(100 * time.Millisecond) {
		if p.call("GET", "/v1/requests/"+deletion.ID, "", &deletion); time.Now().After(deadline) {
			t.Fatalf("the deletion is %s, not awaiting approval", deletion.Status)
		}
	}

	// Signed out, the console sends to the sign-in page.
	ctx := b.NewTab(t, browsertest.TabOptions{})
	browsertest.Do(t, ctx, chromedp.Navigate(p.base+"/console"), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	checkPage(t, ctx, "console-sign-in")
	browsertest.SetViewport(t, ctx, browsertest.Desktop)
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#key"), apiKey),
		chromedp.Click(chromedp.CSS("#sign-in-button")),
		chromedp.WaitVisible(chromedp.CSS("#queue")),
	)
	for _, id := range []string{access.ID, deletion.ID} {
		if !exists(t, ctx, fmt.Sprintf(`#queue a[href="/console/requests/%s"]`, id)) {
			t.Errorf("the queue does not link request %s", id)
		}
	}
	checkPage(t, ctx, "console-queue")

	// The deletion: approve it, and see it completed.
	browsertest.SetViewport(t, ctx, browsertest.Desktop)
	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#queue a[href="/console/requests/%s"]`, deletion.ID))),
		chromedp.WaitVisible(chromedp.CSS("#action-approve")),
	)
	checkPage(t, ctx, "console-request-awaiting-approval")
	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS("#approve-submit")),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if loc := browsertest.Run(t, ctx, chromedp.Location()); !strings.Contains(loc, "done=approve") {
		t.Errorf("after approving, the tab is at %s", loc)
	}
	reloadUntil(t, ctx, `#request-status[data-status="completed"]`, time.Minute)
	checkPage(t, ctx, "console-request-completed")

	browsertest.Do(t, ctx, chromedp.Navigate(p.base+"/console/dashboard"), chromedp.WaitVisible(chromedp.CSS("#weekly-chart")))
	checkPage(t, ctx, "console-dashboard")
	browsertest.Do(t, ctx, chromedp.Navigate(p.base+"/console/queues"), chromedp.WaitVisible(chromedp.CSS("#queues-table")))
	checkPage(t, ctx, "console-queues")

	// Sign out: the session is gone.
	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS("#sign-out-button")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
		chromedp.Navigate(p.base+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
	)
}
