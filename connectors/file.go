package connectors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Factory builds a connector of one type from its settings: the mapping of
// its entry in the connectors file, without name and type, with ${VAR}
// references already expanded. It decodes spec with [DecodeStrict].
type Factory func(ctx context.Context, name string, spec *yaml.Node) (Connector, error)

// Types maps a connector type, as written in the file, to its factory.
type Types map[string]Factory

// File is the top level of a connectors file.
//
//	connectors:
//	  - name: shop        # unique, [a-z0-9_-], names jobs and export folders
//	    type: mongodb     # a key of Types
//	    ...               # the type's own settings
type fileSpec struct {
	Connectors []yaml.Node `yaml:"connectors"`
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// LoadFile reads and builds the connectors of the file at path. lookupEnv
// resolves ${VAR} references (os.LookupEnv in production). On error nothing
// is left open.
func LoadFile(ctx context.Context, path string, types Types, lookupEnv func(string) (string, bool)) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("connectors file: %w", err)
	}
	reg, err := Parse(ctx, data, types, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("connectors file %s: %w", path, err)
	}
	return reg, nil
}

// LoadFileOnly is LoadFile building only the connectors whose type is one
// of types: the others are skipped unbuilt, their settings unchecked and
// the environment variables they name unread (so a process that needs
// some connectors, as the API needs those that take callbacks, needs
// neither the others' credentials nor their systems). The file as a whole
// is still checked: valid YAML, no literal secret anywhere.
func LoadFileOnly(ctx context.Context, path string, types Types, lookupEnv func(string) (string, bool)) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("connectors file: %w", err)
	}
	reg, err := parse(ctx, data, types, lookupEnv, true)
	if err != nil {
		return nil, fmt.Errorf("connectors file %s: %w", path, err)
	}
	return reg, nil
}

// Parse builds the connectors described by a connectors file's content.
func Parse(ctx context.Context, data []byte, types Types, lookupEnv func(string) (string, bool)) (reg *Registry, err error) {
	return parse(ctx, data, types, lookupEnv, false)
}

// parse is Parse; with only set it skips the entries of types not in
// types, unexpanded (see LoadFileOnly).
func parse(ctx context.Context, data []byte, types Types, lookupEnv func(string) (string, bool), only bool) (reg *Registry, err error) {
	// A value from the environment may be a secret written under the wrong
	// setting (max_concurrency: ${DB_PASSWORD}): an error quoting it
	// names its variable instead.
	expanded := map[string]string{}
	lookup := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		if ok {
			expanded[v] = name
		}
		return v, ok
	}
	defer func() {
		if err != nil {
			err = hideExpanded(err, expanded)
		}
	}()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("empty file: want a top-level 'connectors:' list")
	}
	if err := checkPlain(&root); err != nil {
		return nil, err
	}
	if err := checkSecrets(&root); err != nil {
		return nil, err
	}
	if !only {
		if err := expandEnv(&root, lookup); err != nil {
			return nil, err
		}
	}
	var spec fileSpec
	if err := DecodeStrict(root.Content[0], &spec); err != nil {
		return nil, err
	}
	reg = NewRegistry()
	defer func() {
		if err != nil {
			_ = reg.Close()
			reg = nil
		}
	}()
	for i := range spec.Connectors {
		entry := &spec.Connectors[i]
		if only {
			if t := deref(valueOf(entry, "type")); entry.Kind != yaml.MappingNode || t == entry || types[t.Value] == nil {
				continue
			}
			if err := expandEnv(entry, lookup); err != nil {
				return reg, err
			}
		}
		c, lim, dm, err := build(ctx, entry, types)
		if err != nil {
			return reg, err
		}
		if err := reg.Add(c); err != nil {
			if cl, ok := c.(interface{ Close() error }); ok {
				_ = cl.Close()
			}
			return reg, Errorf(valueOf(entry, "name"), "%v", err)
		}
		reg.limits[c.Name()] = lim
		reg.types[c.Name()] = deref(valueOf(entry, "type")).Value
		if dm != nil {
			reg.dataMaps[c.Name()] = *dm
		}
	}
	return reg, nil
}

// hideExpanded returns err with every value of expanded (value ->
// variable) its message quotes replaced by ${VARIABLE}; err itself when it
// quotes none. Values under 4 bytes are left: they would match words.
func hideExpanded(err error, expanded map[string]string) error {
	msg := err.Error()
	hidden := msg
	// Longest first, so that a value holding another is hidden whole.
	values := make([]string, 0, len(expanded))
	for v := range expanded {
		if len(v) >= 4 {
			values = append(values, v)
		}
	}
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		hidden = strings.ReplaceAll(hidden, v, "${"+expanded[v]+"}")
	}
	if hidden == msg {
		return err
	}
	return &hiddenError{msg: hidden, err: err}
}

// hiddenError is an error whose message hides what it quoted of the
// environment; it wraps the original for errors.Is.
type hiddenError struct {
	msg string
	err error
}

func (e *hiddenError) Error() string { return e.msg }
func (e *hiddenError) Unwrap() error { return e.err }

// entrySettings are the settings every connector's entry has, apart from
// the type's own (rest).
type entrySettings struct {
	name                 string
	nameNode, typ        *yaml.Node
	limit, rate, dataMap *yaml.Node
	rest                 *yaml.Node
}

// common splits a connector's entry (a mapping) into the settings common to
// every type and the rest, and checks its name.
func common(entry *yaml.Node) (entrySettings, error) {
	var c entrySettings
	c.rest = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: entry.Line, Column: entry.Column}
	for i := 0; i+1 < len(entry.Content); i += 2 {
		k, v := entry.Content[i], deref(entry.Content[i+1])
		switch k.Value {
		case "name":
			c.nameNode = v
		case "type":
			c.typ = v
		case KeyMaxConcurrency:
			c.limit = v
		case KeyMaxRate:
			c.rate = v
		case KeyDataMap:
			c.dataMap = v
		default:
			c.rest.Content = append(c.rest.Content, k, entry.Content[i+1])
		}
	}
	if c.nameNode == nil {
		return c, Errorf(entry, "connector: name: required (1 to 63 of a-z, 0-9, _ and -)")
	}
	c.name = c.nameNode.Value
	if c.nameNode.Kind != yaml.ScalarNode || !namePattern.MatchString(c.name) {
		return c, Errorf(c.nameNode, "connector name %q: want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit", c.name)
	}
	return c, nil
}

// build makes one connector from its entry and returns it with its limits
// (max_concurrency, max_rate; zero when the entry sets none) and its data
// map (nil when it declares none).
func build(ctx context.Context, entry *yaml.Node, types Types) (Connector, limits, *DataMap, error) {
	var none limits
	if entry.Kind != yaml.MappingNode {
		return nil, none, nil, Errorf(entry, "each connector must be a mapping with name and type")
	}
	set, err := common(entry)
	if err != nil {
		return nil, none, nil, err
	}
	name, typeNode := set.name, set.typ
	if typeNode == nil {
		return nil, none, nil, Errorf(entry, "connector %q: type: required (known: %s)", name, knownTypes(types))
	}
	typ := typeNode.Value
	f, ok := types[typ]
	if typeNode.Kind != yaml.ScalarNode || !ok {
		return nil, none, nil, Errorf(typeNode, "connector %q: unknown type %q (known: %s)", name, typ, knownTypes(types))
	}
	var lim limits
	if limitNode := set.limit; limitNode != nil {
		n, err := strconv.Atoi(limitNode.Value)
		if limitNode.Kind != yaml.ScalarNode || err != nil || n < 1 || n > maxConcurrencyLimit {
			return nil, none, nil, Errorf(limitNode, "connector %q: %s: want a whole number from 1 to %d, not %q", name, KeyMaxConcurrency, maxConcurrencyLimit, limitNode.Value)
		}
		lim.concurrency = n
	}
	if rateNode := set.rate; rateNode != nil {
		r, err := ParseRate(rateNode.Value)
		if rateNode.Kind != yaml.ScalarNode || err != nil {
			return nil, none, nil, Errorf(rateNode, "connector %q: %s: want N/s, N/m or N/h with N from 1 to %d (jobs started per second, minute or hour), not %q",
				name, KeyMaxRate, maxRateN, rateNode.Value)
		}
		lim.rate = r
	}
	var dm *DataMap
	if set.dataMap != nil {
		if dm, err = parseDataMap(name, set.dataMap); err != nil {
			return nil, none, nil, err
		}
	}
	c, err := f(ctx, name, set.rest)
	if err != nil {
		if !lineRef.MatchString(err.Error()) {
			// A type that does not locate its problem: the entry's line.
			return nil, none, nil, fmt.Errorf("line %d: connector %q: %w", entry.Line, name, err)
		}
		return nil, none, nil, fmt.Errorf("connector %q: %w", name, err)
	}
	return c, lim, dm, nil
}

// KeyMaxConcurrency is the setting, common to every connector type, that
// caps how many of the connector's jobs run at once in one worker process.
const KeyMaxConcurrency = "max_concurrency"

// KeyMaxRate is the setting, common to every connector type, that caps how
// many of the connector's jobs start per second, minute or hour ("10/s",
// "600/m"), counted across every worker process (in Redis).
const KeyMaxRate = "max_rate"

// maxConcurrencyLimit bounds max_concurrency.
const maxConcurrencyLimit = 1000

func knownTypes(types Types) string {
	known := make([]string, 0, len(types))
	for t := range types {
		known = append(known, t)
	}
	sort.Strings(known)
	return strings.Join(known, ", ")
}

// deref returns the node an alias points at (n itself when n is no alias).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// valueOf returns the value node of key in mapping m, or m itself when the
// key is absent, so that an error points at the closest line.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return m
}

// lineRef finds the line an error points at (see Errorf).
var lineRef = regexp.MustCompile(`\bline \d+\b`)

// Errorf returns an error that points at the line of node.
func Errorf(node *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", node.Line, fmt.Sprintf(format, args...))
}

// kvPassword finds the password of a key=value connection string.
var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} in every scalar with the variable's value; an
// unset variable is an error.
func expandEnv(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing []string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return Errorf(n, "environment variable %s is not set", strings.Join(missing, ", "))
		}
	}
	for _, c := range n.Content {
		if err := expandEnv(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

// checkPlain refuses the YAML forms under which a value or key is read as
// something other than its text, which the checks on the text (checkSecrets,
// checkKeys) would not see: a !!binary value (decoded from base64) and an
// alias used as a key (the checks see the anchor's name, the decoder the
// anchored value).
func checkPlain(n *yaml.Node) error {
	if n.Tag == "!!binary" {
		return Errorf(n, "!!binary is not allowed: write the value as text")
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.AliasNode {
				return Errorf(k, "an alias (*%s) cannot be a key: write the key itself", k.Value)
			}
		}
	}
	for _, c := range n.Content {
		if err := checkPlain(c); err != nil {
			return err
		}
	}
	return nil
}

// secretKeys are settings whose whole value is a secret.
var secretKeys = map[string]bool{"password": true, "token": true, "secret": true, "api_key": true, "apikey": true}

// urlKeys are settings holding a URL whose user info may carry a password.
var urlKeys = map[string]bool{"uri": true, "url": true, "dsn": true}

// checkSecrets refuses secrets written literally in the file: they must come
// from the environment as ${VAR}. A value given through an alias (uri: *u)
// is checked as the value the alias stands for, and reported at the line of
// the alias.
func checkSecrets(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, use := strings.ToLower(n.Content[i].Value), n.Content[i+1]
			v := deref(use)
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				continue
			}
			if secretKeys[k] && !envRef.MatchString(v.Value) {
				return Errorf(use, "%s must come from the environment, e.g. ${SHOP_%s}, never be written in the file", k, strings.ToUpper(k))
			}
			if urlKeys[k] {
				if p, set := urlPassword(v.Value); set && !envRef.MatchString(p) {
					return Errorf(use, "the password in %s must come from the environment, e.g. mongodb://user:${SHOP_PASSWORD}@host, never be written in the file", k)
				}
			}
		}
	}
	for _, c := range n.Content {
		if err := checkSecrets(c); err != nil {
			return err
		}
	}
	return nil
}

// urlPassword returns the password in the user info of a URL as database
// drivers read it: after "scheme://", between the first ':' and the first '@',
// with no '/' before that '@'. url.Parse is not used: it rejects what drivers
// accept (a '{' in the password, several IPv6 hosts), which would let a
// literal password through.
//
// Two other forms of connection string are read too, where there is no
// "://": a go-sql-driver/mysql DSN (user:password@tcp(host)/db: the
// password is between the first ':' and the last '@' before the last '/'),
// and a PostgreSQL key=value string (host=db password=secret).
func urlPassword(s string) (string, bool) {
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		if m := kvPassword.FindStringSubmatch(s); m != nil {
			return strings.Trim(m[1], "'"), true
		}
		if slash := strings.LastIndex(s, "/"); slash >= 0 {
			if at := strings.LastIndex(s[:slash], "@"); at >= 0 {
				_, p, set := strings.Cut(s[:at], ":")
				return p, set
			}
		}
		return "", false
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return "", false
	}
	_, p, set := strings.Cut(userinfo, ":")
	return p, set
}

// DecodeStrict decodes node into out (a pointer) after checking that every
// mapping key names a field of the target struct, recursively, so a typo is
// an error with its line rather than a setting silently ignored. Types that
// implement yaml.Unmarshaler check their own nodes.
func DecodeStrict(node *yaml.Node, out any) error {
	if err := checkKeys(node, reflect.TypeOf(out)); err != nil {
		return err
	}
	if err := node.Decode(out); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

var nodeType = reflect.TypeOf(yaml.Node{})

func checkKeys(n *yaml.Node, t reflect.Type) error {
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // node.Decode reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return Errorf(k, "unknown setting %q (known: %s)", k.Value, strings.Join(names, ", "))
			}
			if err := checkKeys(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				if err := checkKeys(c, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				if err := checkKeys(n.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
