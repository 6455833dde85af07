package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
)

// ScreenshotsDir is where screenshots go: DSAR_SCREENSHOTS_DIR, else
// os.TempDir()/dsar-screenshots.
func ScreenshotsDir() string {
	if d := os.Getenv("DSAR_SCREENSHOTS_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "dsar-screenshots")
}

var screenshotName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Screenshot saves a full-page PNG of the tab as ScreenshotsDir()/name.png
// (name like "portal-home-desktop") and returns its path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	if !screenshotName.MatchString(name) {
		t.Fatalf("browsertest: screenshot name %q: use lower-case letters, digits and dashes", name)
	}
	png := Run(t, ctx, chromedp.FullScreenshot(100))
	dir := ScreenshotsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return p
}

// scrollsSideways reports whether the page is wider than the window, and
// both widths.
func scrollsSideways(t testing.TB, ctx context.Context) (bool, [2]int) {
	t.Helper()
	w := Run(t, ctx, chromedp.Evaluate[[2]int](`[document.documentElement.scrollWidth, Math.min(window.innerWidth, document.documentElement.clientWidth)]`))
	return w[0] > w[1], w
}

// NoHorizontalScroll fails t if the tab's page is wider than its window
// (document.documentElement.scrollWidth > window.innerWidth): at 375 px,
// something would overflow the screen.
func NoHorizontalScroll(t testing.TB, ctx context.Context) {
	t.Helper()
	if over, w := scrollsSideways(t, ctx); over {
		loc := Run(t, ctx, chromedp.Location())
		t.Errorf("browsertest: %s is %d px wide in a window of %d px (%s): it scrolls sideways", loc, w[0], w[1], tabOf(ctx).viewportNow().Name)
	}
}

// Check is what every page visited gets: axe-core finds no serious or
// critical violation, the page does not scroll sideways, it raised no
// script error or CSP violation, and a screenshot named
// name-<viewport>.png is saved.
func Check(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	Axe(t, ctx)
	NoHorizontalScroll(t, ctx)
	NoConsoleErrors(t, ctx)
	Screenshot(t, ctx, fmt.Sprintf("%s-%s", name, tabOf(ctx).viewportNow().Name))
}
