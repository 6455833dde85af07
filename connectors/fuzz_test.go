package connectors_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
)

// yamlBlock is a fenced YAML block of a docs page.
var yamlBlock = regexp.MustCompile("(?s)```yaml[^\n]*\n(.*?)```")

// lineRef is how an error of the connectors file points at its line.
var lineRef = regexp.MustCompile(`line (\d+)`)

// FuzzParse: Parse, with every connector type of the catalog (built on a
// cancelled context, so none reaches its system) and any ${VAR} set,
// never panics; an error of a file that is YAML names a line of the file;
// a file holding a secret written literally (under password, token,
// secret, api_key or apikey, or as a URL's password) is always refused.
func FuzzParse(f *testing.F) {
	pages, err := filepath.Glob("../docs/connectors/*.md")
	if err != nil || len(pages) == 0 {
		f.Fatalf("no docs pages: %v", err)
	}
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatch(data, -1) {
			if strings.Contains(string(m[1]), "connectors:") {
				f.Add(m[1])
			}
		}
	}
	for _, s := range []string{
		"connectors:\n  - name: hooks\n    type: webhook\n    url: https://x.example/dsr\n    secret: whsec_literal\n",
		"connectors:\n  - name: shop\n    type: mongodb\n    uri: mongodb://app:hunter2@db:27017\n",
		"connectors:\n  - name: db\n    type: postgres\n    dsn: host=db password='pa ss' dbname=x\n",
		"x: &s hunter2\nconnectors:\n  - name: w\n    type: webhook\n    url: https://x.example\n    secret: *s\n",
		"connectors:\n  - name: w\n    type: webhook\n    max_concurrency: ${N}\n",
		"connectors:\n  - {name: BAD, type: nope}\n",
		"connectors: [\n",
		"",
	} {
		f.Add([]byte(s))
	}
	types := catalog.Types(connectors.Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := func(name string) (string, bool) {
		if strings.HasPrefix(name, "UNSET") {
			return "", false
		}
		return "env-" + strings.ToLower(name), true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := connectors.Parse(ctx, data, types, env)
		if err == nil {
			if reg == nil {
				t.Fatal("no registry and no error")
			}
			_ = reg.Close()
		} else if reg != nil {
			t.Fatal("a registry returned with an error")
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil || root.Kind == 0 {
			return
		}
		if literal := literalSecret(&root); literal != "" && err == nil {
			t.Fatalf("accepted a file with a literal %s:\n%s", literal, data)
		}
		if err == nil {
			return
		}
		m := lineRef.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("an error of a YAML file names no line: %v\n%s", err, data)
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines(data) {
			t.Fatalf("an error names line %d of a file of %d lines: %v", n, lines(data), err)
		}
	})
}

// secretKey are the settings whose value is a secret; urlKey those whose
// URL or connection string may hold a password.
var (
	secretKey = map[string]bool{"password": true, "token": true, "secret": true, "api_key": true, "apikey": true}
	urlKey    = map[string]bool{"uri": true, "url": true, "dsn": true}
	envVar    = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)
	// urlPass is the password of scheme://user:password@host.
	urlPass = regexp.MustCompile(`^[^:/]*://[^/@:]*:([^/@]*)@`)
)

// literalSecret returns the key under which n holds a secret written
// literally, or "": a non-empty scalar (or an alias of one) under a secret
// key without a ${VAR}, or the password of a URL without one.
func literalSecret(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := strings.ToLower(n.Content[i].Value), n.Content[i+1]
			for j := 0; j < 100 && v.Kind == yaml.AliasNode && v.Alias != nil; j++ {
				v = v.Alias
			}
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				continue
			}
			if secretKey[k] && !envVar.MatchString(v.Value) {
				return k
			}
			if m := urlPass.FindStringSubmatch(v.Value); urlKey[k] && m != nil && m[1] != "" && !envVar.MatchString(m[1]) {
				return k + " password"
			}
		}
	}
	for _, c := range n.Content {
		if s := literalSecret(c); s != "" {
			return s
		}
	}
	return ""
}

// lines counts the lines of data as YAML does: a line break is \n, \r\n
// or \r.
func lines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	return strings.Count(s, "\n") + strings.Count(s, "\r") + 1
}
