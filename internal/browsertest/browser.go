// Package browsertest drives the pages in a real browser (Chromium through
// chromedp) for tests: it starts a headless browser, opens tabs at a desktop
// or a phone's size, and checks a page the way a person with a browser
// would meet it: accessibility by axe-core (no serious or critical
// violation), no horizontal scrolling, no script error or Content Security
// Policy violation, and a full-page screenshot for the docs.
//
// The environment decides where things come from:
//
//   - DSAR_TEST_CHROMIUM: the browser to run; else the first of
//     /usr/bin/chromium, chromium, chromium-browser, google-chrome found.
//   - DSAR_TEST_AXE_JS: axe-core's axe.min.js (4.14.1); else a copy cached
//     under os.UserCacheDir()/dsar/axe-core-4.14.1, fetched once with
//     `npm pack axe-core@4.14.1`.
//   - DSAR_SCREENSHOTS_DIR: where screenshots go; else
//     os.TempDir()/dsar-screenshots (`make screenshots` points it at
//     docs/screenshots).
//   - DSAR_TEST_REQUIRE_BROWSER=1 (set by CI): a missing browser or axe-core
//     fails the test instead of skipping it.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Timeout bounds one call of Do or Run: a page that does not answer in it
// fails the test rather than hang it.
const Timeout = 30 * time.Second

// Browser is a running headless Chromium, stopped when the test that
// started it ends.
type Browser struct {
	ctx context.Context
	axe []byte
}

// Start starts a headless Chromium for t and loads axe-core. Without a
// browser or axe-core it skips t, saying what is missing, or fails it when
// DSAR_TEST_REQUIRE_BROWSER=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		skipOrFail(t, "browsertest: %v", err)
	}
	src, err := axeSource()
	if err != nil {
		skipOrFail(t, "browsertest: axe-core: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"),
		// No user-data-dir: the allocator makes a fresh one and removes it.
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	return &Browser{ctx: ctx, axe: src}
}

// RequireBrowser reports whether a missing browser or axe-core is a
// failure (DSAR_TEST_REQUIRE_BROWSER=1) rather than a reason to skip.
func RequireBrowser() bool { return os.Getenv("DSAR_TEST_REQUIRE_BROWSER") == "1" }

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequireBrowser() {
		t.Fatalf(format+" (DSAR_TEST_REQUIRE_BROWSER=1)", args...)
	}
	t.Skipf(format+" (set DSAR_TEST_REQUIRE_BROWSER=1 to fail instead)", args...)
}

// findChromium returns the browser to run: DSAR_TEST_CHROMIUM, else the
// first one installed.
func findChromium() (string, error) {
	if p := os.Getenv("DSAR_TEST_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("DSAR_TEST_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser, google-chrome; set DSAR_TEST_CHROMIUM)")
}

// Viewport is the size a tab lays pages out at.
type Viewport struct {
	// Name ends screenshot names ("desktop", "mobile").
	Name          string
	Width, Height int64
	// Mobile emulates a phone: the meta viewport applies, touch is on.
	Mobile bool
}

// The two sizes the pages must work at: a laptop, and a small phone 375 CSS
// pixels wide (device scale 1, so screenshots stay small).
var (
	Desktop = Viewport{Name: "desktop", Width: 1280, Height: 900}
	Mobile  = Viewport{Name: "mobile", Width: 375, Height: 812, Mobile: true}
)

// TabOptions configure a tab. The zero value is a desktop tab.
type TabOptions struct {
	Viewport Viewport
	// GPC makes navigator.globalPrivacyControl true in every page, as a
	// browser with Global Privacy Control on does.
	GPC bool
}

type tabKey struct{}

// tab is what a tab's context carries: the errors its pages raised.
type tab struct {
	viewport Viewport
	axe      []byte
	mu       sync.Mutex
	errs     []string
}

// NewTab opens a tab with its own cookies (a fresh browser context), closed
// when t ends, and returns its context for chromedp and this package's
// helpers. Any script error or Content Security Policy violation in its
// pages fails t: at the next Check or NoConsoleErrors, else when t ends.
func (b *Browser) NewTab(t testing.TB, o TabOptions) context.Context {
	t.Helper()
	if o.Viewport.Width == 0 {
		o.Viewport = Desktop
	}
	st := &tab{viewport: o.Viewport, axe: b.axe}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(st.listen))
	ctx = context.WithValue(ctx, tabKey{}, st)
	t.Cleanup(func() {
		for _, e := range st.take() {
			t.Errorf("browsertest: the page raised: %s", e)
		}
		cancel()
	})
	steps := []chromedp.Action[chromedp.Void]{emulate(o.Viewport)}
	if o.GPC {
		steps = append(steps, addScript(`Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {get: () => true, configurable: true});`))
	}
	// The first Run opens the tab: it must not run under a timeout, which
	// would close the tab when it ends.
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browsertest: open a tab: %v", err)
	}
	return ctx
}

// emulate lays the tab's pages out at v.
func emulate(v Viewport) chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1), chromedp.EmulatePortrait}
	if v.Mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return chromedp.EmulateViewport(v.Width, v.Height, opts...)
}

// SetViewport lays the tab's page out at v from now on, reloading it if
// the window did not take the new width at once (a phone's meta viewport
// applies at load): the same page can be checked at both sizes without
// signing in again.
func SetViewport(t testing.TB, ctx context.Context, v Viewport) {
	t.Helper()
	tabOf(ctx).setViewport(v)
	Do(t, ctx, emulate(v))
	if Run(t, ctx, chromedp.Evaluate[int64](`window.innerWidth`)) != v.Width {
		Do(t, ctx, chromedp.Reload())
	}
}

func addScript(src string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	})
}

func tabOf(ctx context.Context) *tab {
	st, _ := ctx.Value(tabKey{}).(*tab)
	if st == nil {
		panic("browsertest: the context is not a tab of Browser.NewTab")
	}
	return st
}

// listen keeps the events that mean the page is broken: an uncaught
// exception, and any message about the Content Security Policy (the
// browser reports a blocked inline script or style, or a resource from
// another origin, that way). It runs on chromedp's reading goroutine: it
// only appends.
func (st *tab) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		if d.URL != "" {
			msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			}
		}
		if text := strings.Join(parts, " "); mentionsCSP(text) {
			msg = "console." + string(e.Type) + ": " + text
		}
	case *log.EventEntryAdded:
		if mentionsCSP(e.Entry.Text) {
			msg = string(e.Entry.Level) + ": " + e.Entry.Text
		}
	}
	if msg != "" {
		st.mu.Lock()
		st.errs = append(st.errs, msg)
		st.mu.Unlock()
	}
}

func (st *tab) setViewport(v Viewport) {
	st.mu.Lock()
	st.viewport = v
	st.mu.Unlock()
}

func (st *tab) viewportNow() Viewport {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.viewport
}

func mentionsCSP(s string) bool { return strings.Contains(s, "Content Security Policy") }

func (st *tab) take() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.errs
	st.errs = nil
	return out
}

// ConsoleErrors returns the script errors and Content Security Policy
// violations the tab's pages raised since the last call, and forgets them:
// for a test that expects one.
func ConsoleErrors(ctx context.Context) []string { return tabOf(ctx).take() }

// NoConsoleErrors fails t if the tab's pages raised a script error or a
// Content Security Policy violation so far.
func NoConsoleErrors(t testing.TB, ctx context.Context) {
	t.Helper()
	for _, e := range ConsoleErrors(ctx) {
		t.Errorf("browsertest: the page raised: %s", e)
	}
}

// Do runs steps in the tab within Timeout and fails t on the first error.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	Run(t, ctx, chromedp.Steps(steps...))
}

// Run runs a in the tab within Timeout and returns its value; it fails t
// on an error.
func Run[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		loc, _ := chromedp.Run(lctx, chromedp.Location())
		lcancel()
		t.Fatalf("browsertest: at %s: %v", loc, err)
	}
	return v
}
