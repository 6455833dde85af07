package connectors_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// fakeSpec is the fake connector type's settings.
type fakeSpec struct {
	URI      string `yaml:"uri"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	Fail     bool   `yaml:"fail"`
	Nested   struct {
		Tables []struct {
			Name string `yaml:"name"`
		} `yaml:"tables"`
	} `yaml:"nested"`
}

// fakeConn is a connector of the fake type that records being closed.
type fakeConn struct {
	name   string
	spec   fakeSpec
	closed int
}

func (c *fakeConn) Name() string { return c.name }
func (c *fakeConn) Close() error { c.closed++; return nil }

// fakeTypes returns connector types "fake" and "other" and every connector
// they built, in order.
func fakeTypes() (connectors.Types, func() []*fakeConn) {
	var (
		mu    sync.Mutex
		built []*fakeConn
	)
	f := func(_ context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var spec fakeSpec
		if err := connectors.DecodeStrict(node, &spec); err != nil {
			return nil, err
		}
		if spec.Fail {
			return nil, errors.New("refused by the fake")
		}
		c := &fakeConn{name: name, spec: spec}
		mu.Lock()
		built = append(built, c)
		mu.Unlock()
		return c, nil
	}
	return connectors.Types{"fake": f, "other": f}, func() []*fakeConn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*fakeConn(nil), built...)
	}
}

// env is a lookupEnv over a fixed set of variables.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

var testEnv = env(map[string]string{
	"SHOP_HOST":     "db.example.com",
	"SHOP_DB":       "shop",
	"SHOP_PASSWORD": "from-env-pw",
	"SHOP_TOKEN":    "from-env-token",
	"EMPTY":         "",
})

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want map[string]fakeSpec // by connector name
	}{
		{
			name: "env expansion",
			file: `
connectors:
  - name: shop
    type: fake
    uri: mongodb://${SHOP_HOST}:27017/${SHOP_DB}?appName=dsar
`,
			want: map[string]fakeSpec{"shop": {URI: "mongodb://db.example.com:27017/shop?appName=dsar"}},
		},
		{
			name: "empty variable",
			file: `
connectors:
  - {name: shop, type: fake, uri: "x${EMPTY}y"}
`,
			want: map[string]fakeSpec{"shop": {URI: "xy"}},
		},
		{
			name: "secrets from the environment",
			file: `
connectors:
  - name: shop
    type: fake
    uri: mongodb://dsar:${SHOP_PASSWORD}@${SHOP_HOST}/
    password: ${SHOP_PASSWORD}
    token: ${SHOP_TOKEN}
`,
			want: map[string]fakeSpec{"shop": {
				URI:      "mongodb://dsar:from-env-pw@db.example.com/",
				Password: "from-env-pw",
				Token:    "from-env-token",
			}},
		},
		{
			name: "passwords from the environment in mysql and key=value connection strings",
			file: `
connectors:
  - {name: shop, type: fake, uri: "dsar:${SHOP_PASSWORD}@tcp(db.example.com:3306)/shop"}
  - {name: crm, type: fake, uri: "host=db.example.com password=${SHOP_PASSWORD} dbname=crm"}
  - {name: erp, type: fake, uri: "dsar@tcp(db.example.com:3306)/erp"}
`,
			want: map[string]fakeSpec{
				"shop": {URI: "dsar:from-env-pw@tcp(db.example.com:3306)/shop"},
				"crm":  {URI: "host=db.example.com password=from-env-pw dbname=crm"},
				"erp":  {URI: "dsar@tcp(db.example.com:3306)/erp"},
			},
		},
		{
			name: "user without password",
			file: `
connectors:
  - {name: shop, type: fake, uri: "mongodb://dsar@db.example.com/?authMechanism=MONGODB-X509"}
`,
			want: map[string]fakeSpec{"shop": {URI: "mongodb://dsar@db.example.com/?authMechanism=MONGODB-X509"}},
		},
		{
			name: "@ in a URL's query is no password",
			file: `
connectors:
  - {name: hook, type: fake, uri: "https://hooks.example.com/dsr?cc=ada@example.com&t=a:b"}
`,
			want: map[string]fakeSpec{"hook": {URI: "https://hooks.example.com/dsr?cc=ada@example.com&t=a:b"}},
		},
		{
			name: "several connectors and types",
			file: `
connectors:
  - {name: web-shop, type: fake}
  - {name: crm_2, type: other}
  - {name: 0legacy, type: fake}
`,
			want: map[string]fakeSpec{"web-shop": {}, "crm_2": {}, "0legacy": {}},
		},
		{
			name: "no connectors",
			file: "connectors: []\n",
			want: map[string]fakeSpec{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			types, built := fakeTypes()
			reg, err := connectors.Parse(t.Context(), []byte(tt.file), types, testEnv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := map[string]fakeSpec{}
			for _, name := range reg.Names() {
				c, _ := reg.Lookup(name)
				got[name] = c.(*fakeConn).spec
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("connectors (-want +got):\n%s", diff)
			}
			for _, c := range built() {
				if c.closed != 0 {
					t.Errorf("connector %s closed by a successful Parse", c.name)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want string // the whole error message
	}{
		{
			name: "unset variable",
			file: `
connectors:
  - name: shop
    type: fake
    uri: mongodb://${SHOP_HOST}/${NO_SUCH_DB}
`,
			want: "line 5: environment variable NO_SUCH_DB is not set",
		},
		{
			name: "unset variables",
			file: `
connectors:
  - {name: shop, type: fake, uri: "${NO_USER}:${NO_HOST}"}
`,
			want: "line 3: environment variable NO_USER, NO_HOST is not set",
		},
		{
			name: "literal password in uri",
			file: `
connectors:
  - name: shop
    type: fake
    uri: mongodb://dsar:hunter2@db.example.com/
`,
			want: "line 5: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password in URL, upper-case key",
			file: `
connectors:
  - {name: hook, type: fake, URL: "https://dsar:hunter2@hooks.example.com/dsr"}
`,
			want: "line 3: the password in url must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password in a multi-host uri",
			file: `
connectors:
  - {name: shop, type: fake, uri: "mongodb://dsar:hunter2@db1.example.com:27017,db2.example.com:27017/?replicaSet=rs0"}
`,
			want: "line 3: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			// The mongo driver accepts these; url.Parse does not.
			name: "literal password in an IPv6 multi-host uri",
			file: `
connectors:
  - {name: shop, type: fake, uri: "mongodb://dsar:hunter2@[::1]:27017,[::2]:27017/"}
`,
			want: "line 3: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password with braces in uri",
			file: `
connectors:
  - {name: shop, type: fake, uri: "mongodb://dsar:hunter{2}@db.example.com/"}
`,
			want: "line 3: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password in dsn",
			file: `
connectors:
  - {name: shop, type: fake, dsn: "postgres://dsar:hunter2@db.example.com/shop"}
`,
			want: "line 3: the password in dsn must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password in a mysql dsn",
			file: `
connectors:
  - {name: shop, type: fake, dsn: "dsar:hunter2@tcp(db.example.com:3306)/shop?parseTime=true"}
`,
			want: "line 3: the password in dsn must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password with @ and / in a mysql dsn over a socket",
			file: `
connectors:
  - {name: shop, type: fake, dsn: "dsar:hun@ter/2@unix(/run/mysqld/mysqld.sock)/shop"}
`,
			want: "line 3: the password in dsn must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password in a key=value dsn",
			file: `
connectors:
  - {name: shop, type: fake, dsn: "host=db.example.com user=dsar password='hunter 2' dbname=shop"}
`,
			want: "line 3: the password in dsn must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password",
			file: `
connectors:
  - name: shop
    type: fake
    password: hunter2
`,
			want: "line 5: password must come from the environment, e.g. ${SHOP_PASSWORD}, never be written in the file",
		},
		{
			name: "literal token, nested",
			file: `
connectors:
  - name: shop
    type: fake
    nested:
      auth: {token: hunter2}
`,
			want: "line 6: token must come from the environment, e.g. ${SHOP_TOKEN}, never be written in the file",
		},
		{
			name: "duplicate name",
			file: `
connectors:
  - {name: shop, type: fake}
  - {name: crm, type: fake}
  - {name: shop, type: other}
`,
			want: `line 5: add connector: duplicate name "shop"`,
		},
		{
			name: "duplicate name on its own line",
			file: `
connectors:
  - {name: shop, type: fake}
  - type: other
    name: shop
`,
			want: `line 5: add connector: duplicate name "shop"`,
		},
		{
			name: "unknown type",
			file: `
connectors:
  - {name: shop, type: postgres}
`,
			want: `line 3: connector "shop": unknown type "postgres" (known: fake, other)`,
		},
		{
			name: "unknown type, on its own line",
			file: `
connectors:
  - name: shop
    uri: mongodb://db.example.com/
    type: postgres
`,
			want: `line 5: connector "shop": unknown type "postgres" (known: fake, other)`,
		},
		{
			name: "missing type",
			file: `
connectors:
  - {name: shop}
`,
			want: `line 3: connector "shop": type: required (known: fake, other)`,
		},
		{
			name: "type not a word",
			file: `
connectors:
  - name: shop
    type: [fake]
`,
			want: `line 4: connector "shop": unknown type "" (known: fake, other)`,
		},
		{
			name: "literal password through an alias",
			file: `
connectors:
  - name: shop
    type: fake
    nested: &u "mongodb://dsar:hunter2@db.example.com/"
    uri: *u
`,
			want: "line 6: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal password through an alias to a list item",
			file: `
hosts:
  - &u "mongodb://dsar:hunter2@db.example.com/"
connectors:
  - {name: shop, type: fake, uri: *u}
`,
			want: "line 5: the password in uri must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file",
		},
		{
			name: "literal token through an alias",
			file: `
connectors:
  - name: shop
    type: fake
    nested: {tables: [{name: &t hunter2}]}
    token: *t
`,
			want: "line 6: token must come from the environment, e.g. ${SHOP_TOKEN}, never be written in the file",
		},
		{
			name: "literal password in a !!binary uri",
			file: `
connectors:
  - name: shop
    type: fake
    uri: !!binary bW9uZ29kYjovL2RzYXI6aHVudGVyMkBkYi5leGFtcGxlLmNvbS8=
`,
			want: "line 5: !!binary is not allowed: write the value as text",
		},
		{
			name: "literal password under an alias used as a key",
			file: `
connectors:
  - name: shop
    type: fake
    nested: {tables: [{name: &uri password}]}
    *uri : hunter2
`,
			want: "line 6: an alias (*uri) cannot be a key: write the key itself",
		},
		{
			name: "literal uri password under an alias used as a key",
			file: `
connectors:
  - name: shop
    type: fake
    nested: {tables: [{name: &token uri}]}
    ? *token
    : mongodb://dsar:hunter2@db.example.com/
`,
			want: "line 6: an alias (*token) cannot be a key: write the key itself",
		},
		{
			name: "max_concurrency zero",
			file: `
connectors:
  - name: shop
    type: fake
    max_concurrency: 0
`,
			want: `line 5: connector "shop": max_concurrency: want a whole number from 1 to 1000, not "0"`,
		},
		{
			name: "max_concurrency not a number",
			file: `
connectors:
  - name: shop
    type: fake
    max_concurrency: many
`,
			want: `line 5: connector "shop": max_concurrency: want a whole number from 1 to 1000, not "many"`,
		},
		{
			name: "max_rate without a unit",
			file: `
connectors:
  - name: shop
    type: fake
    max_concurrency: 2
    max_rate: 10
`,
			want: `line 6: connector "shop": max_rate: want N/s, N/m or N/h with N from 1 to 1000000 (jobs started per second, minute or hour), not "10"`,
		},
		{
			name: "max_rate zero",
			file: `
connectors:
  - {name: shop, type: fake, max_rate: 0/s}
`,
			want: `line 3: connector "shop": max_rate: want N/s, N/m or N/h with N from 1 to 1000000 (jobs started per second, minute or hour), not "0/s"`,
		},
		{
			name: "max_rate as a mapping",
			file: `
connectors:
  - name: shop
    type: fake
    max_rate:
      n: 10
`,
			want: `line 6: connector "shop": max_rate: want N/s, N/m or N/h with N from 1 to 1000000 (jobs started per second, minute or hour), not ""`,
		},
		{
			name: "upper-case name",
			file: `
connectors:
  - {name: Shop, type: fake}
`,
			want: `line 3: connector name "Shop": want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`,
		},
		{
			name: "name starting with a dash",
			file: `
connectors:
  - {name: -shop, type: fake}
`,
			want: `line 3: connector name "-shop": want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`,
		},
		{
			name: "name with a slash",
			file: `
connectors:
  - {name: ../shop, type: fake}
`,
			want: `line 3: connector name "../shop": want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`,
		},
		{
			name: "name too long",
			file: `
connectors:
  - {name: ` + strings.Repeat("a", 64) + `, type: fake}
`,
			want: `line 3: connector name "` + strings.Repeat("a", 64) + `": want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`,
		},
		{
			name: "missing name",
			file: `
connectors:
  - {type: fake}
`,
			want: `line 3: connector: name: required (1 to 63 of a-z, 0-9, _ and -)`,
		},
		{
			name: "bad name on its own line",
			file: `
connectors:
  - type: fake
    name: Shop
`,
			want: `line 4: connector name "Shop": want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`,
		},
		{
			name: "unknown top-level key",
			file: `
connector:
  - {name: shop, type: fake}
`,
			want: `line 2: unknown setting "connector" (known: connectors)`,
		},
		{
			name: "unknown setting of a type",
			file: `
connectors:
  - name: shop
    type: fake
    nested:
      tables:
        - {nme: orders}
`,
			want: `connector "shop": line 7: unknown setting "nme" (known: name)`,
		},
		{
			name: "factory error",
			file: `
connectors:
  - {name: shop, type: fake, fail: true}
`,
			want: `line 3: connector "shop": refused by the fake`,
		},
		{
			name: "entry not a mapping",
			file: `
connectors:
  - shop
`,
			want: "line 3: each connector must be a mapping with name and type",
		},
		{
			name: "empty file",
			file: "",
			want: "empty file: want a top-level 'connectors:' list",
		},
		{
			name: "only comments",
			file: "# connectors: none yet\n",
			want: "empty file: want a top-level 'connectors:' list",
		},
		{
			name: "invalid YAML",
			file: "connectors:\n  - {name: shop\n",
			want: "not valid YAML: yaml: line 1: did not find expected ',' or '}'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			types, built := fakeTypes()
			reg, err := connectors.Parse(t.Context(), []byte(tt.file), types, testEnv)
			if err == nil {
				t.Fatalf("Parse succeeded with connectors %v; want error %q", reg.Names(), tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "hunter") {
				t.Errorf("error %q quotes the secret", err)
			}
			if reg != nil {
				t.Error("Parse returned a registry with its error")
			}
			for _, c := range built() {
				if c.closed != 1 {
					t.Errorf("connector %s closed %d times after a failed Parse; want 1", c.name, c.closed)
				}
			}
		})
	}
}

// TestParseClosesOnError checks that a failed Parse closes every connector it
// built before the failure, and only those.
func TestParseClosesOnError(t *testing.T) {
	t.Parallel()
	types, built := fakeTypes()
	file := `
connectors:
  - {name: a, type: fake}
  - {name: b, type: fake}
  - {name: c, type: fake, fail: true}
  - {name: d, type: fake}
`
	if _, err := connectors.Parse(t.Context(), []byte(file), types, testEnv); err == nil {
		t.Fatal("Parse succeeded; want the fake's error")
	}
	got := map[string]int{}
	for _, c := range built() {
		got[c.name] = c.closed
	}
	if diff := cmp.Diff(map[string]int{"a": 1, "b": 1}, got); diff != "" {
		t.Errorf("times closed per connector (-want +got):\n%s", diff)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(good, []byte("connectors:\n  - {name: shop, type: fake, uri: \"mongodb://${SHOP_HOST}/\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("connectors:\n  - {name: shop, type: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	types, _ := fakeTypes()

	reg, err := connectors.LoadFile(t.Context(), good, types, testEnv)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	c, ok := reg.Lookup("shop")
	if !ok {
		t.Fatalf("no connector shop; have %v", reg.Names())
	}
	if got, want := c.(*fakeConn).spec.URI, "mongodb://db.example.com/"; got != want {
		t.Errorf("uri = %q; want %q", got, want)
	}

	_, err = connectors.LoadFile(t.Context(), bad, types, testEnv)
	want := "connectors file " + bad + `: line 2: connector "shop": unknown type "nope" (known: fake, other)`
	if err == nil || err.Error() != want {
		t.Errorf("LoadFile(bad) error = %v; want %q", err, want)
	}

	_, err = connectors.LoadFile(t.Context(), filepath.Join(dir, "missing.yaml"), types, testEnv)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) error = %v; want one wrapping os.ErrNotExist", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	type table struct {
		Name    string            `yaml:"name"`
		Columns map[string]string `yaml:"columns"`
	}
	type spec struct {
		Database string  `yaml:"database"`
		Tables   []table `yaml:"tables"`
		ByName   map[string]table
		Raw      yaml.Node `yaml:"raw"`
		Ignored  string    `yaml:"-"`
		Timeout  int       `yaml:"timeout,omitempty"`
	}
	tests := []struct {
		name    string
		in      string
		want    spec
		wantErr string
	}{
		{
			name: "every known key",
			in:   "database: shop\ntables:\n  - {name: orders, columns: {email: email}}\nbyname: {o: {name: o}}\ntimeout: 5\n",
			want: spec{
				Database: "shop",
				Tables:   []table{{Name: "orders", Columns: map[string]string{"email": "email"}}},
				ByName:   map[string]table{"o": {Name: "o"}},
				Timeout:  5,
			},
		},
		{
			name:    "typo at the top",
			in:      "database: shop\ndatabse: shop\n",
			wantErr: `line 2: unknown setting "databse" (known: database, tables, byname, raw, timeout)`,
		},
		{
			name:    "typo in a list element",
			in:      "tables:\n  - name: orders\n  - nam: customers\n",
			wantErr: `line 3: unknown setting "nam" (known: name, columns)`,
		},
		{
			name:    "typo in a map value",
			in:      "byname:\n  o: {name: o, colums: {}}\n",
			wantErr: `line 2: unknown setting "colums" (known: name, columns)`,
		},
		{
			name:    "a field named -",
			in:      "ignored: x\n",
			wantErr: `line 1: unknown setting "ignored" (known: database, tables, byname, raw, timeout)`,
		},
		{
			name:    "type mismatch",
			in:      "timeout: soon\n",
			wantErr: "line 1: cannot unmarshal !!str `soon` into int",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.in), &doc); err != nil {
				t.Fatal(err)
			}
			var got spec
			err := connectors.DecodeStrict(doc.Content[0], &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("DecodeStrict error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeStrict: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore())); diff != "" {
				t.Errorf("DecodeStrict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeStrictRawNode checks that a yaml.Node field takes any keys.
func TestDecodeStrictRawNode(t *testing.T) {
	t.Parallel()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("raw: {anything: [goes, here]}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Raw yaml.Node `yaml:"raw"`
	}
	if err := connectors.DecodeStrict(doc.Content[0], &got); err != nil {
		t.Fatalf("DecodeStrict: %v", err)
	}
	if got.Raw.Kind != yaml.MappingNode || len(got.Raw.Content) != 2 || got.Raw.Content[0].Value != "anything" {
		t.Errorf("raw = kind %v with %d nodes; want the mapping {anything: ...}", got.Raw.Kind, len(got.Raw.Content))
	}
}

func TestErrorf(t *testing.T) {
	t.Parallel()
	err := connectors.Errorf(&yaml.Node{Line: 42}, "bad %s %d", "value", 7)
	if got, want := err.Error(), "line 42: bad value 7"; got != want {
		t.Errorf("Errorf = %q; want %q", got, want)
	}
}

// TestParseMaxConcurrency checks that max_concurrency, common to every type,
// reaches the registry and not the type's own settings.
func TestParseMaxConcurrency(t *testing.T) {
	t.Parallel()
	types, _ := fakeTypes()
	file := `
connectors:
  - {name: shop, type: fake, max_concurrency: 3}
  - {name: crm, type: fake}
`
	reg, err := connectors.Parse(t.Context(), []byte(file), types, testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	got := map[string]int{"shop": reg.MaxConcurrency("shop"), "crm": reg.MaxConcurrency("crm")}
	if diff := cmp.Diff(map[string]int{"shop": 3, "crm": 0}, got); diff != "" {
		t.Errorf("MaxConcurrency (-want +got):\n%s", diff)
	}
}

// TestParseTypes checks that the registry knows each connector's type as
// its entry gives it, and none for a connector added in Go.
func TestParseTypes(t *testing.T) {
	t.Parallel()
	types, _ := fakeTypes()
	file := `
connectors:
  - {name: shop, type: fake}
  - {name: crm, type: other}
`
	reg, err := connectors.Parse(t.Context(), []byte(file), types, testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if err := reg.Add(&fakeConn{name: "go"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range reg.Names() {
		got[n] = reg.Type(n)
	}
	if diff := cmp.Diff(map[string]string{"shop": "fake", "crm": "other", "go": ""}, got); diff != "" {
		t.Errorf("Type (-want +got):\n%s", diff)
	}
}

// TestParseMaxRate checks that max_rate, common to every type, reaches the
// registry and not the type's own settings.
func TestParseMaxRate(t *testing.T) {
	t.Parallel()
	types, _ := fakeTypes()
	file := `
connectors:
  - {name: shop, type: fake, max_rate: 10/s}
  - {name: crm, type: fake, max_rate: 600/m, max_concurrency: 2}
  - {name: erp, type: fake, max_rate: "5000/h"}
  - {name: cms, type: fake}
`
	reg, err := connectors.Parse(t.Context(), []byte(file), types, testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	got := map[string]connectors.Rate{}
	for _, n := range reg.Names() {
		got[n] = reg.MaxRate(n)
	}
	want := map[string]connectors.Rate{"shop": {N: 10, Per: time.Second}, "crm": {N: 600, Per: time.Minute},
		"erp": {N: 5000, Per: time.Hour}, "cms": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MaxRate (-want +got):\n%s", diff)
	}
	if got := reg.MaxConcurrency("crm"); got != 2 {
		t.Errorf("MaxConcurrency(crm) = %d; want 2", got)
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want connectors.Rate
		ok   bool
	}{
		{"10/s", connectors.Rate{N: 10, Per: time.Second}, true},
		{"1/m", connectors.Rate{N: 1, Per: time.Minute}, true},
		{"1000000/h", connectors.Rate{N: 1000000, Per: time.Hour}, true},
		{"1000001/h", connectors.Rate{}, false},
		{"0/s", connectors.Rate{}, false},
		{"-1/s", connectors.Rate{}, false},
		{"10", connectors.Rate{}, false},
		{"10/d", connectors.Rate{}, false},
		{"10/sec", connectors.Rate{}, false},
		{" 10/s", connectors.Rate{}, false},
		{"", connectors.Rate{}, false},
	} {
		got, err := connectors.ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("ParseRate(%q).String() = %q", tt.in, got.String())
		}
	}
	if !(connectors.Rate{}).IsZero() || (connectors.Rate{N: 1, Per: time.Second}).IsZero() {
		t.Error("IsZero: only the zero Rate sets no limit")
	}
}

// TestLoadFileOnly: only the entries of the types asked for are built;
// the others are skipped unread (an unset variable or an unknown setting
// in them is no error), while the whole file is still checked for literal
// secrets.
func TestLoadFileOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(path, []byte(`connectors:
  - {name: shop, type: fake, uri: "mongodb://${NOT_SET}/", whatever: 1}
  - {name: hook, type: other, uri: "mongodb://${SHOP_HOST}/"}
  - {name: lost, type: nope}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	all, built := fakeTypes()
	reg, err := connectors.LoadFileOnly(t.Context(), path, connectors.Types{"other": all["other"]}, testEnv)
	if err != nil {
		t.Fatalf("LoadFileOnly: %v", err)
	}
	if got := reg.Names(); len(got) != 1 || got[0] != "hook" || len(built()) != 1 {
		t.Fatalf("built %v; want only hook", got)
	}
	if c, _ := reg.Lookup("hook"); c.(*fakeConn).spec.URI != "mongodb://db.example.com/" {
		t.Errorf("hook's uri %q; want it expanded", c.(*fakeConn).spec.URI)
	}
	if _, err := connectors.LoadFile(t.Context(), path, all, testEnv); err == nil {
		t.Error("LoadFile of the same file: no error; want the unset variable")
	}
	secret := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(secret, []byte("connectors:\n  - {name: shop, type: fake, password: hunter2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := connectors.LoadFileOnly(t.Context(), secret, connectors.Types{"other": all["other"]}, testEnv); err == nil || !strings.Contains(err.Error(), "line 2: password must come from the environment") {
		t.Errorf("a literal secret in a skipped entry: %v; want refused", err)
	}
}

// TestErrorsHideTheEnvironment: a value from the environment written under
// a setting that quotes what it refuses (a password put in
// max_concurrency) is named by its variable in the error, never shown.
func TestErrorsHideTheEnvironment(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-db-password"
	file := []byte(`connectors:
  - name: shop
    type: fake
    max_concurrency: ${SHOP_PASSWORD}
`)
	lookup := func(name string) (string, bool) {
		if name == "SHOP_PASSWORD" {
			return secret, true
		}
		return "", false
	}
	_, err := connectors.Parse(t.Context(), file, connectors.Types{"fake": func(context.Context, string, *yaml.Node) (connectors.Connector, error) {
		return nil, errors.New("not reached")
	}}, lookup)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "${SHOP_PASSWORD}") {
		t.Fatalf("error %v; want it naming ${SHOP_PASSWORD}, never its value", err)
	}
}
