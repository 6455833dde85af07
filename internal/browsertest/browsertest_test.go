package browsertest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/handlers/webkit"
)

// testPage is a test page's content block.
func testPage(content string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(`{{define "title"}}{{.T "selftest.title"}}{{end}}{{define "content"}}` + content + `{{end}}`)}
}

// serve serves test pages the way the portal and the console are served:
// webkit's layout, security headers (CSP) and assets.
func serve(t *testing.T) string {
	t.Helper()
	gin.SetMode(gin.TestMode)
	kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Brand: webkit.Brand{Name: "Example Shop"}})
	fsys := fstest.MapFS{
		// Accessible: a labelled field.
		"templates/ok.html": testPage(`<h1>{{.T "selftest.title"}}</h1><form method="get"><label for="email">{{.T "selftest.email"}}</label><input id="email" name="email" type="email"><button type="submit">{{.T "selftest.send"}}</button></form>`),
		// A field with no label: axe-core's "label" rule, critical.
		"templates/broken.html": testPage(`<h1>{{.T "selftest.title"}}</h1><form method="get"><input name="email" type="email"><button type="submit">{{.T "selftest.send"}}</button></form>`),
		// An inline script, which the CSP must block.
		"templates/inline.html": testPage(`<h1>{{.T "selftest.title"}}</h1><script>document.documentElement.dataset.inline = "ran";</script>`),
		// Wider than a phone, narrower than a laptop.
		"templates/wide.html": testPage(`<h1>{{.T "selftest.title"}}</h1><svg width="1000" height="10" aria-hidden="true"></svg>`),
		"messages/en.json":    {Data: []byte(`{"selftest.title":"Hello","selftest.email":"Email","selftest.send":"Send"}`)},
		"messages/fr.json":    {Data: []byte(`{"selftest.title":"Bonjour","selftest.email":"E-mail","selftest.send":"Envoyer"}`)},
	}
	pages := kit.Parse(fsys, "selftest", "/t/ok")
	if m := pages.Missing(); len(m) > 0 {
		t.Fatalf("catalogues incomplete: %v", m)
	}
	r := gin.New()
	kit.RegisterAssets(r)
	g := r.Group("/t", kit.Headers())
	g.GET("/:page", func(c *gin.Context) { pages.Render(c, http.StatusOK, c.Param("page"), nil) })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBrowserKit proves the helpers see what they are for, on one browser:
// a page renders and passes; a missing label, an inline script and a page
// wider than a phone are each caught; screenshots are PNG files.
func TestBrowserKit(t *testing.T) {
	base := serve(t)
	b := Start(t)
	t.Setenv("DSAR_SCREENSHOTS_DIR", t.TempDir()) // never docs/screenshots

	t.Run("renders and passes", func(t *testing.T) {
		for _, v := range []Viewport{Desktop, Mobile} {
			ctx := b.NewTab(t, TabOptions{Viewport: v})
			Do(t, ctx, chromedp.Navigate(base+"/t/ok"))
			if h1 := Run(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h1 != "Hello" {
				t.Errorf("%s: h1 %q", v.Name, h1)
			}
			if w := Run(t, ctx, chromedp.Evaluate[int](`window.innerWidth`)); w != int(v.Width) {
				t.Errorf("%s: window %d px wide, want %d", v.Name, w, v.Width)
			}
			Check(t, ctx, "selftest-ok")
			png, err := os.ReadFile(filepath.Join(ScreenshotsDir(), "selftest-ok-"+v.Name+".png"))
			if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("%s: no PNG screenshot: %v", v.Name, err)
			}
		}
	})

	t.Run("a field without a label is a serious violation", func(t *testing.T) {
		ctx := b.NewTab(t, TabOptions{})
		Do(t, ctx, chromedp.Navigate(base+"/t/broken"))
		vs, err := violations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(vs, func(v Violation) bool { return v.ID == "label" })
		if i < 0 || !vs[i].Serious() || len(vs[i].Nodes) != 1 || !strings.Contains(vs[i].Nodes[0].HTML, `name="email"`) {
			t.Fatalf("axe-core did not report the unlabelled input as serious: %v", vs)
		}
		// A second run on the same page (a fresh world) agrees.
		if again, err := violations(ctx); err != nil || len(again) != len(vs) {
			t.Fatalf("second run: %v %v", again, err)
		}
	})

	t.Run("the CSP blocks an inline script and the tab notices", func(t *testing.T) {
		ctx := b.NewTab(t, TabOptions{})
		Do(t, ctx, chromedp.Navigate(base+"/t/inline"), chromedp.WaitVisible(chromedp.CSS("h1")))
		if ran := Run(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.inline || ""`)); ran != "" {
			t.Fatal("the inline script ran: the CSP did not apply")
		}
		// The report may come just after the load.
		var errs []string
		for range 50 {
			if errs = append(errs, ConsoleErrors(ctx)...); len(errs) > 0 {
				break
			}
			Do(t, ctx, chromedp.Sleep(20*time.Millisecond))
		}
		if len(errs) == 0 || !strings.Contains(errs[0], "Content Security Policy") {
			t.Fatalf("no CSP violation reported: %q", errs)
		}
		// After axe-core (which bypasses the CSP), the next page has its CSP again.
		Axe(t, ctx)
		Do(t, ctx, chromedp.Navigate(base+"/t/inline"), chromedp.WaitVisible(chromedp.CSS("h1")))
		if ran := Run(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.inline || ""`)); ran != "" {
			t.Fatal("after axe-core, the inline script ran: the CSP bypass stayed on")
		}
		ConsoleErrors(ctx)
	})

	t.Run("a page wider than a phone scrolls sideways", func(t *testing.T) {
		ctx := b.NewTab(t, TabOptions{Viewport: Mobile})
		Do(t, ctx, chromedp.Navigate(base+"/t/wide"))
		if over, w := scrollsSideways(t, ctx); !over {
			t.Fatalf("not seen: widths %v", w)
		}
		Do(t, ctx, chromedp.Navigate(base+"/t/ok"))
		if over, w := scrollsSideways(t, ctx); over {
			t.Fatalf("the narrow page scrolls: widths %v", w)
		}
		// The same tab, wider and back.
		SetViewport(t, ctx, Desktop)
		Do(t, ctx, chromedp.Navigate(base+"/t/wide"))
		if over, w := scrollsSideways(t, ctx); over {
			t.Fatalf("the wide page scrolls on a desktop: widths %v", w)
		}
		SetViewport(t, ctx, Mobile)
		if over, w := scrollsSideways(t, ctx); !over || w[1] != 375 {
			t.Fatalf("back at 375 px: widths %v", w)
		}
	})

	t.Run("global privacy control", func(t *testing.T) {
		for _, gpc := range []bool{false, true} {
			ctx := b.NewTab(t, TabOptions{GPC: gpc})
			Do(t, ctx, chromedp.Navigate(base+"/t/ok"))
			if got := Run(t, ctx, chromedp.Evaluate[bool](`navigator.globalPrivacyControl === true`)); got != gpc {
				t.Errorf("GPC %v: navigator.globalPrivacyControl is %v", gpc, got)
			}
		}
	})
}
