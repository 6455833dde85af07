package catalog_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// docsDir holds a page per connector type, docs/connectors/<type>.md.
const docsDir = "../../docs/connectors"

// exampleFence opens a complete connectors file in a docs page: a fenced
// block whose info string is "yaml connectors". Other yaml blocks
// (fragments) are not loaded.
const exampleFence = "```yaml connectors"

// setup gives the examples of one connector type what they need to be
// built: a value for each ${VAR} they use (lookup), and the shared Deps.
// Every variable lookup does not answer gets a dummy value.
type setup func(t *testing.T) (lookup func(name string) (string, bool), deps connectors.Deps)

// setups holds, per type, how its examples reach this machine's test server
// for the type. A type that checks its system when it is built (a schema
// read at load) needs one here; a type without one is built with dummy
// variables and Deps holding only a Mask (keyed with a test key).
var setups = map[string]setup{
	// mongodb connects lazily; ${..._URI} and a connector without uri (the
	// service's own store) point at the test store anyway.
	"mongodb": func(t *testing.T) (func(string) (string, bool), connectors.Deps) {
		uri := testenv.MongoURI(t)
		return func(name string) (string, bool) {
			if strings.HasSuffix(name, "_URI") {
				return uri, true
			}
			return "", false
		}, connectors.Deps{Mongo: testenv.Client(t)}
	},
	// redis pings its server when it is built: ${..._URL} and ${..._ADDR}
	// point at the test Redis (database 0, whose keys the test leaves alone).
	"redis": func(t *testing.T) (func(string) (string, bool), connectors.Deps) {
		addr := testenv.RedisServer(t).Addr
		return func(name string) (string, bool) {
			switch {
			case strings.HasSuffix(name, "_URL"):
				return "redis://" + addr + "/0", true
			case strings.HasSuffix(name, "_ADDR"):
				return addr, true
			}
			return "", false
		}, connectors.Deps{}
	},
	// postgres and mysql read the schema when they are built: ${..._DSN}
	// reaches a fresh database on the test server holding the tables of
	// the page's ```sql blocks.
	// mailchimp reads the data center from its key's suffix when it is
	// built (and calls nothing): ${..._API_KEY} is a well-formed dummy key.
	"mailchimp": func(*testing.T) (func(string) (string, bool), connectors.Deps) {
		return func(name string) (string, bool) {
			if strings.HasSuffix(name, "_API_KEY") {
				return "0123456789abcdef0123456789abcdef-us21", true
			}
			return "", false
		}, connectors.Deps{}
	},
	"postgres": sqlSetup("postgres", sqlenv.Postgres),
	"mysql":    sqlSetup("mysql", sqlenv.MySQL),
}

// sqlSetup makes a database on server, runs there the statements of the
// ```sql blocks of docs/connectors/<typ>.md, and points ${..._DSN} at it.
func sqlSetup(typ string, server func(testing.TB) sqlenv.Server) setup {
	return func(t *testing.T) (func(string) (string, bool), connectors.Deps) {
		db := server(t).NewDatabase(t)
		for _, block := range fenced(t, filepath.Join(docsDir, typ+".md"), "```sql") {
			for _, stmt := range strings.Split(string(block.text), ";") {
				if strings.TrimSpace(stmt) != "" {
					db.Exec(t, stmt)
				}
			}
		}
		return func(name string) (string, bool) {
			if strings.HasSuffix(name, "_DSN") {
				return db.DSN, true
			}
			return "", false
		}, connectors.Deps{}
	}
}

// example is one connectors file in a docs page.
type example struct {
	line int // of its first line in the page
	text []byte
}

// examples returns the connectors files of a docs page.
func examples(t *testing.T, path string) []example {
	t.Helper()
	return fenced(t, path, exampleFence)
}

// fenced returns the blocks of a docs page opened by the line fence.
func fenced(t *testing.T, path, fence string) []example {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	var cur *example
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == fence:
			cur = &example{line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text = append(append(cur.text, line...), '\n')
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: example not closed with ```", path, cur.line-1)
	}
	return out
}

// TestDocsExamples loads every example connectors file of every page in
// docs/connectors with the catalog's types, so the docs cannot rot: each
// page names a type of the catalog, each type has a page, each page has at
// least one example, every example builds, what each built connector can
// do is what the catalog says of its type, and a page's examples together
// show every action its type supports.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range catalog.Names() {
		if !slices.Contains(pages, filepath.Join(docsDir, name+".md")) {
			t.Errorf("type %s has no docs page: write docs/connectors/%s.md with a complete example file (%s)", name, name, exampleFence)
		}
	}
	for _, page := range pages {
		typ := strings.TrimSuffix(filepath.Base(page), ".md")
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			kind, ok := catalog.Lookup(typ)
			if !ok {
				t.Fatalf("docs/connectors/%s.md documents type %q, which connectors/catalog does not list (known: %s): register the type in catalog's kinds",
					typ, typ, strings.Join(catalog.Names(), ", "))
			}
			exs := examples(t, page)
			if len(exs) == 0 {
				t.Fatalf("docs/connectors/%s.md has no example file: put a complete one in a %s block", typ, exampleFence)
			}
			shown := map[connectors.Action]bool{}
			for _, ex := range exs {
				where := fmt.Sprintf("docs/connectors/%s.md, example from line %d", typ, ex.line)
				for k, a := range load(t, where, ex) {
					if k == typ {
						for _, x := range a {
							shown[x] = true
						}
					}
				}
			}
			var got []connectors.Action
			for a := range shown {
				got = append(got, a)
			}
			slices.Sort(got)
			if diff := cmp.Diff(kind.Actions, got); diff != "" {
				t.Errorf("docs/connectors/%s.md: the examples do not show every action of the type (-catalog +examples):\n%s", typ, diff)
			}
		})
	}
}

// load builds the connectors of one example and checks each against its
// type's Kind. It returns, per type, the actions its connectors do.
func load(t *testing.T, where string, ex example) map[string][]connectors.Action {
	t.Helper()
	var file struct {
		Connectors []struct {
			Name string `yaml:"name"`
			Type string `yaml:"type"`
		} `yaml:"connectors"`
	}
	if err := yaml.Unmarshal(ex.text, &file); err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	lookups := []func(string) (string, bool){}
	masker, err := mask.NewMasker([]byte("docs-example-mask-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	deps := connectors.Deps{Mask: masker}
	set := map[string]bool{}
	for _, c := range file.Connectors {
		if _, ok := catalog.Lookup(c.Type); !ok {
			t.Errorf("%s: connector %q has type %q, which connectors/catalog does not list (known: %s)", where, c.Name, c.Type, strings.Join(catalog.Names(), ", "))
			return nil
		}
		if s, ok := setups[c.Type]; ok && !set[c.Type] {
			set[c.Type] = true
			l, d := s(t)
			lookups = append(lookups, l)
			deps = merge(deps, d)
		}
	}
	lookup := func(name string) (string, bool) {
		for _, l := range lookups {
			if v, ok := l(name); ok {
				return v, true
			}
		}
		return "docs-example-" + strings.ToLower(name), true
	}
	reg, err := connectors.Parse(t.Context(), ex.text, catalog.Types(deps), lookup)
	if err != nil {
		// The file's lines are the example's: point at the page's.
		msg := lineRef.ReplaceAllStringFunc(err.Error(), func(ref string) string {
			n, _ := strconv.Atoi(lineRef.FindStringSubmatch(ref)[1])
			return fmt.Sprintf("line %d", n+ex.line-1)
		})
		t.Errorf("%s: %s", where, msg)
		return nil
	}
	t.Cleanup(func() { _ = reg.Close() })
	out := map[string][]connectors.Action{}
	for _, name := range reg.Names() {
		c, _ := reg.Lookup(name)
		typ := reg.Type(name)
		kind, _ := catalog.Lookup(typ)
		for _, a := range connectors.Actions() {
			if connectors.Supports(c, a) {
				if !slices.Contains(kind.Actions, a) {
					t.Errorf("%s: connector %s does %s, which the catalog does not list for type %s", where, name, a, typ)
				}
				out[typ] = append(out[typ], a)
			}
		}
		_, resolves := c.(connectors.Resolver)
		_, checks := c.(connectors.Checker)
		_, discovers := c.(connectors.Discoverer)
		if _, lists := c.(connectors.SegmentLister); lists != kind.ListsSegments {
			t.Errorf("%s: connector %s lists segment members %v; the catalog says %v for type %s", where, name, lists, kind.ListsSegments, typ)
		}
		if resolves != kind.Resolves || checks != kind.Checks || discovers != kind.Discovers {
			t.Errorf("%s: connector %s resolves %v, checks %v, discovers %v; the catalog says %v, %v, %v for type %s",
				where, name, resolves, checks, discovers, kind.Resolves, kind.Checks, kind.Discovers, typ)
		}
	}
	return out
}

var lineRef = regexp.MustCompile(`\bline (\d+)`)

// merge returns a with the fields b sets.
func merge(a, b connectors.Deps) connectors.Deps {
	if b.Mongo != nil {
		a.Mongo = b.Mongo
	}
	if b.HTTP != nil {
		a.HTTP = b.HTTP
	}
	if b.Log != nil {
		a.Log = b.Log
	}
	if b.Limiter != nil {
		a.Limiter = b.Limiter
	}
	if b.Mask != nil {
		a.Mask = b.Mask
	}
	return a
}
