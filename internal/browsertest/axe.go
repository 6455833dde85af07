package browsertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core release the pages are checked with.
const AxeVersion = "4.14.1"

// AxeTags are the rule sets run: WCAG 2.0 and 2.1, levels A and AA.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

var axeOnce struct {
	sync.Once
	src []byte
	err error
}

// axeSource returns axe.min.js: DSAR_TEST_AXE_JS, else the user cache,
// filled from npm on first use. It is read once per test binary.
func axeSource() ([]byte, error) {
	axeOnce.Do(func() { axeOnce.src, axeOnce.err = loadAxe() })
	return axeOnce.src, axeOnce.err
}

func loadAxe() ([]byte, error) {
	if p := os.Getenv("DSAR_TEST_AXE_JS"); p != "" {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("DSAR_TEST_AXE_JS: %w", err)
		}
		if err := checkAxe(src); err != nil {
			return nil, fmt.Errorf("DSAR_TEST_AXE_JS=%s: %w", p, err)
		}
		return src, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	cached := filepath.Join(dir, "dsar", "axe-core-"+AxeVersion, "axe.min.js")
	if src, err := os.ReadFile(cached); err == nil && checkAxe(src) == nil {
		return src, nil
	}
	src, err := npmAxe()
	if err != nil {
		return nil, err
	}
	// Written beside and renamed: a test binary running at the same time
	// reads the whole file or none.
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(cached), "axe-*.js")
	if err != nil {
		return nil, err
	}
	_, err = tmp.Write(src)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), cached)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("cache axe-core: %w", err)
	}
	return src, nil
}

// checkAxe says whether src is the expected axe.min.js, by its banner.
func checkAxe(src []byte) error {
	if !bytes.HasPrefix(src, []byte("/*! axe v"+AxeVersion)) {
		return fmt.Errorf("not axe-core %s's axe.min.js", AxeVersion)
	}
	return nil
}

// npmAxe fetches axe-core's package with `npm pack` (npm checks its
// integrity against the registry) and returns its axe.min.js.
func npmAxe() ([]byte, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, errors.New("not cached and npm is not installed to fetch it (or set DSAR_TEST_AXE_JS)")
	}
	dir, err := os.MkdirTemp("", "dsar-axe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", "axe-core@"+AxeVersion)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("npm pack axe-core@%s: %w\n%s", AxeVersion, err, out)
	}
	f, err := os.Open(filepath.Join(dir, "axe-core-"+AxeVersion+".tgz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("axe-core package: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("axe-core package has no package/axe.min.js")
		}
		if err != nil {
			return nil, fmt.Errorf("axe-core package: %w", err)
		}
		if h.Name != "package/axe.min.js" {
			continue
		}
		src, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return nil, err
		}
		return src, checkAxe(src)
	}
}

// Violation is one axe-core rule the page breaks, with the elements that
// break it.
type Violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"` // minor, moderate, serious, critical
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []string `json:"target"`
		HTML    string   `json:"html"`
		Summary string   `json:"summary"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %s %s\n      %s", strings.Join(n.Target, " "), n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
	}
	return b.String()
}

// Serious reports whether v is one the pages must not have: serious or
// critical.
func (v Violation) Serious() bool { return v.Impact == "serious" || v.Impact == "critical" }

// axeRun is axe.run over the document for AxeTags, its violations made
// plain values.
var axeRun = `(async () => {
  const r = await axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.map(String), html: n.html, summary: n.failureSummary || ""}))}));
})()`

// violations runs axe-core on the tab's page: it injects axe.min.js
// (bypassing the page's CSP just for that, as a browser extension would),
// and returns every violation.
func violations(ctx context.Context) ([]Violation, error) {
	tags := `["` + strings.Join(AxeTags, `","`) + `"]`
	return chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]Violation, error) {
		// axe-core runs in a world of its own (as a browser extension's
		// scripts do), which has its own CSP: the page's would refuse the
		// stylesheets axe-core builds to read the page's CSS, and report
		// them as the page's violations.
		tree, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		world, err := cdp.Call(ctx, t, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{
			FrameID: tree.FrameTree.Frame.ID, WorldName: "dsar-axe", ContentSecurityPolicy: axeWorldCSP})
		if err != nil {
			return nil, err
		}
		inWorld := func(p *runtime.EvaluateParams) { p.ContextID = world.ExecutionContextID }
		if _, err := chromedp.Evaluate[chromedp.Void](string(tabOf(ctx).axe), inWorld)(ctx, t); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
		return chromedp.Evaluate[[]Violation](fmt.Sprintf(axeRun, tags), chromedp.EvalAwaitPromise, inWorld)(ctx, t)
	})
}

// axeWorldCSP is the CSP of axe-core's world.
const axeWorldCSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"

// Axe runs axe-core (WCAG 2.1 A and AA rules) on the tab's page and fails
// t, listing them, if it finds a serious or critical violation; lesser
// ones are logged.
func Axe(t testing.TB, ctx context.Context) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	vs, err := violations(tctx)
	if err != nil {
		t.Fatalf("browsertest: axe-core: %v", err)
	}
	loc := Run(t, ctx, chromedp.Location())
	for _, v := range vs {
		if v.Serious() {
			t.Errorf("browsertest: axe-core at %s: %s", loc, v)
		} else {
			t.Logf("browsertest: axe-core at %s (not failing): %s", loc, v)
		}
	}
}
