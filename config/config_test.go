package config_test

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

const goodKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// goodMasterKeys is a DSAR_MASTER_KEYS of one 32-byte key.
const goodMasterKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.MongoDB != "dsar" || c.DataDir != "./data" || c.Queue != "dsar" ||
		c.JobMaxRetry != 8 || c.JobLease != 15*time.Minute || c.SweepEvery != time.Minute || c.LogFormat != "json" {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(config.ModeDev); err != nil {
		t.Errorf("dev with defaults: %v", err)
	}
}

func TestLoadErrorsNameEverySetting(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"DSAR_HTTP_ADDR":          "8080",
		"DSAR_HEALTH_ADDR":        "127.0.0.1",
		"DSAR_METRICS_TOKEN":      "0123456789abcdef0123\n",
		"DSAR_MONGO_URI":          "postgres://x",
		"DSAR_JOB_MAX_RETRY":      "many",
		"DSAR_JOB_LEASE":          "soon",
		"DSAR_API_KEYS":           "ops:root:0123456789abcdef",
		"DSAR_BLIND_INDEX_KEY":    "short",
		"DSAR_LOG_FORMAT":         "xml",
		"DSAR_APPROVAL_FOUR_EYES": "delete",
	}))
	if err == nil {
		t.Fatal("Load accepted bad values")
	}
	for _, name := range []string{"DSAR_HTTP_ADDR", "DSAR_HEALTH_ADDR", "DSAR_METRICS_TOKEN", "DSAR_MONGO_URI", "DSAR_JOB_MAX_RETRY", "DSAR_JOB_LEASE", "DSAR_API_KEYS", "DSAR_BLIND_INDEX_KEY", "DSAR_LOG_FORMAT", "DSAR_APPROVAL_FOUR_EYES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("error quotes a secret: %v", err)
	}
}

func TestValidateByMode(t *testing.T) {
	t.Parallel()
	base := map[string]string{}
	full := map[string]string{
		"DSAR_MONGO_URI": "mongodb://db:27017", "DSAR_REDIS_ADDR": "redis:6379",
		"DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys, "DSAR_API_KEYS": "ops:admin:0123456789abcdef",
	}
	tests := []struct {
		name    string
		env     map[string]string
		mode    config.Mode
		wantErr []string
	}{
		{"dev needs nothing", base, config.ModeDev, nil},
		{"serve needs a real Redis, a key and API keys", base, config.ModeServe, []string{"DSAR_REDIS_ADDR", "DSAR_BLIND_INDEX_KEY", "DSAR_MASTER_KEYS", "DSAR_API_KEYS"}},
		{"serve runs on the embedded store without DSAR_MONGO_URI", map[string]string{"DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys,
			"DSAR_API_KEYS": "ops:admin:0123456789abcdef"}, config.ModeServe, nil},
		{"worker needs no API keys", map[string]string{"DSAR_MONGO_URI": "mongodb://db", "DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys, "DSAR_CONNECTORS_FILE": "config_test.go",
			"DSAR_SMTP_HOST": "mail", "DSAR_PUBLIC_URL": "https://privacy.example.com"}, config.ModeWorker, nil},
		{"worker needs mail and a public URL", map[string]string{"DSAR_MONGO_URI": "mongodb://db", "DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys, "DSAR_CONNECTORS_FILE": "config_test.go"},
			config.ModeWorker, []string{"DSAR_SMTP_HOST", "DSAR_PUBLIC_URL"}},
		{"worker needs connectors", map[string]string{"DSAR_MONGO_URI": "mongodb://db", "DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys}, config.ModeWorker, []string{"DSAR_CONNECTORS_FILE"}},
		{"connectors file must exist", map[string]string{"DSAR_CONNECTORS_FILE": "/nonexistent/connectors.yaml"}, config.ModeDev, []string{"DSAR_CONNECTORS_FILE"}},
		{"the scheduler ignores the connectors file", map[string]string{"DSAR_REDIS_ADDR": "r:6379", "DSAR_CONNECTORS_FILE": "/nonexistent/connectors.yaml"}, config.ModeScheduler, nil},
		{"serve with everything", full, config.ModeServe, nil},
		{"lease must exceed timeout", map[string]string{"DSAR_JOB_LEASE": "1m", "DSAR_JOB_TIMEOUT": "2m"}, config.ModeDev, []string{"DSAR_JOB_LEASE"}},
	}
	for _, tt := range tests {
		c, err := config.Load(env(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err = c.Validate(tt.mode)
		if len(tt.wantErr) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not name %s: %v", tt.name, w, err)
			}
		}
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	keys, err := config.ParseAPIKeys("ops:admin:0123456789abcdef, desk:agent:fedcba9876543210,segments:pipeline:pipe0123456789ab")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[1].Name != "desk" || keys[1].Role != apikey.RoleAgent || keys[1].Hash != sha256.Sum256([]byte("fedcba9876543210")) ||
		keys[2].Role != apikey.RolePipeline {
		t.Errorf("keys = %+v", keys)
	}
	for _, bad := range []string{"ops:admin", "ops:god:0123456789abcdef", "ops:admin:short", "a:admin:0123456789abcdef,a:agent:0123456789abcdef", ":admin:0123456789abcdef",
		"a:auditor:0123456789abcdef,b:admin:0123456789abcdef"} {
		if _, err := config.ParseAPIKeys(bad); err == nil {
			t.Errorf("ParseAPIKeys(%q) accepted", bad)
		}
	}
}

func TestFileAndEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "dsar.yaml")
	if err := os.WriteFile(path, []byte("http_addr: 0.0.0.0:9000\nmongo_db: fromfile\nqueue: fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(env(map[string]string{"DSAR_CONFIG_FILE": path, "DSAR_QUEUE": "fromenv"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "0.0.0.0:9000" || c.MongoDB != "fromfile" || c.Queue != "fromenv" {
		t.Errorf("file then environment: %+v", c)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("http_adr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(env(map[string]string{"DSAR_CONFIG_FILE": bad})); err == nil || !strings.Contains(err.Error(), "http_adr") {
		t.Errorf("unknown file key: err = %v", err)
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"DSAR_MONGO_URI": "mongodb://user:s3cretpassw0rd@db:27017", "DSAR_API_KEYS": "ops:admin:0123456789abcdef",
		"DSAR_REDIS_PASSWORD": "redispassw0rd", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys,
	}))
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprint(slog.AnyValue(c).Resolve())
	for _, secret := range []string{"s3cretpassw0rd", "0123456789abcdef", "redispassw0rd", goodKey} {
		if strings.Contains(out, secret) {
			t.Errorf("log value shows a secret: %s", out)
		}
	}
	if !strings.Contains(out, "ops:admin") {
		t.Errorf("log value hides the key names: %s", out)
	}
}

func TestEverySettingIsDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		if s.Help == "" || len(s.Modes) == 0 {
			t.Errorf("%s has no help or no modes", s.Env)
		}
		if row := readmeRow(s); !strings.Contains(string(readme), row) {
			t.Errorf("README.md settings table lacks, or differs from, the row:\n%s", row)
		}
	}
}

// readmeRow is the README settings table row of a setting.
func readmeRow(s config.Setting) string {
	modes := make([]string, len(s.Modes))
	for i, m := range s.Modes {
		modes[i] = string(m)
	}
	def := ""
	if s.Default != "" {
		def = "`" + s.Default + "`"
	}
	return fmt.Sprintf("| `%s` | %s | %s | %s |", s.Env, def, strings.Join(modes, ", "), s.Help)
}

// TestFourEyesDefault: DSAR_APPROVAL_FOUR_EYES unset means deletion, but
// none in dev; a value set is taken in every mode.
func TestFourEyesDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value    string
		mode     config.Mode
		deletion bool // a deletion needs four eyes
		access   bool // an access request needs four eyes
	}{
		{"", config.ModeServe, true, false},
		{"", config.ModeDev, false, false},
		{"access", config.ModeDev, false, true},
		{"access", config.ModeServe, false, true},
		{"none", config.ModeServe, false, false},
		{"deletion", config.ModeDev, true, false},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		if tt.value != "" {
			vars["DSAR_APPROVAL_FOUR_EYES"] = tt.value
		}
		c, err := config.Load(env(vars))
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.FourEyes(tt.mode)
		if err != nil {
			t.Fatalf("%q in %s: %v", tt.value, tt.mode, err)
		}
		if got := p.Requires(dsr.TypeDeletion, dsr.RegulationGDPR); got != tt.deletion {
			t.Errorf("%q in %s: deletion needs four eyes %v, want %v", tt.value, tt.mode, got, tt.deletion)
		}
		if got := p.Requires(dsr.TypeAccess, dsr.RegulationCCPA); got != tt.access {
			t.Errorf("%q in %s: access needs four eyes %v, want %v", tt.value, tt.mode, got, tt.access)
		}
	}
}

// TestTransportSettings: plain HTTP beyond loopback is refused unless a
// TLS proxy is declared; the certificate and key come together and must
// load; the client TLS settings of Redis, SMTP and MongoDB are checked at
// start, each error naming its setting.
func TestTransportSettings(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	other := testenv.NewTLS(t)
	serve := map[string]string{"DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys, "DSAR_API_KEYS": "ops:admin:0123456789abcdef"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name    string
		env     map[string]string
		mode    config.Mode
		wantErr []string // each must appear; nil: no error
	}{
		{"serve on loopback without TLS", serve, config.ModeServe, nil},
		{"serve on localhost without TLS", with(serve, "DSAR_HTTP_ADDR", "localhost:8080"), config.ModeServe, nil},
		{"serve on [::1] without TLS", with(serve, "DSAR_HTTP_ADDR", "[::1]:8080"), config.ModeServe, nil},
		// A name under .localhost is not in the hosts file: the listener asks
		// DNS for it, which may answer with any of the machine's addresses.
		{"serve on a name under .localhost without TLS", with(serve, "DSAR_HTTP_ADDR", "dsar.localhost:8080"), config.ModeServe,
			[]string{"DSAR_HTTP_ADDR", "dsar.localhost:8080 is not a loopback address"}},
		{"serve on every interface without TLS", with(serve, "DSAR_HTTP_ADDR", ":8080"), config.ModeServe,
			[]string{"DSAR_HTTP_ADDR", ":8080 is not a loopback address", "DSAR_TLS_CERT_FILE", "DSAR_TLS_KEY_FILE", "DSAR_BEHIND_TLS_PROXY=true"}},
		{"serve on a public address without TLS", with(serve, "DSAR_HTTP_ADDR", "10.1.2.3:8080"), config.ModeServe, []string{"DSAR_HTTP_ADDR", "DSAR_BEHIND_TLS_PROXY"}},
		{"dev on every interface without TLS", map[string]string{"DSAR_HTTP_ADDR": "0.0.0.0:8080"}, config.ModeDev, []string{"DSAR_HTTP_ADDR"}},
		{"serve behind a declared TLS proxy", with(serve, "DSAR_HTTP_ADDR", ":8080", "DSAR_BEHIND_TLS_PROXY", "true"), config.ModeServe, nil},
		{"serve with its own TLS", with(serve, "DSAR_HTTP_ADDR", ":8443", "DSAR_TLS_CERT_FILE", certs.CertFile, "DSAR_TLS_KEY_FILE", certs.KeyFile), config.ModeServe, nil},
		{"the worker listens on nothing", map[string]string{"DSAR_HTTP_ADDR": ":8080", "DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys,
			"DSAR_CONNECTORS_FILE": "config_test.go", "DSAR_SMTP_HOST": "mail", "DSAR_PUBLIC_URL": "https://privacy.example.com"}, config.ModeWorker, nil},
		{"the worker's health address on every interface", map[string]string{"DSAR_HEALTH_ADDR": ":9090", "DSAR_REDIS_ADDR": "r:6379", "DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys,
			"DSAR_CONNECTORS_FILE": "config_test.go", "DSAR_SMTP_HOST": "mail", "DSAR_PUBLIC_URL": "https://privacy.example.com"}, config.ModeWorker, nil},
		{"a certificate without its key", with(serve, "DSAR_TLS_CERT_FILE", certs.CertFile), config.ModeServe, []string{"DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE: set both"}},
		{"a key of another certificate", with(serve, "DSAR_TLS_CERT_FILE", certs.CertFile, "DSAR_TLS_KEY_FILE", other.KeyFile), config.ModeServe,
			[]string{"DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE", "does not match"}},
		{"a certificate file missing", with(serve, "DSAR_TLS_CERT_FILE", missing, "DSAR_TLS_KEY_FILE", certs.KeyFile), config.ModeServe,
			[]string{"DSAR_TLS_CERT_FILE", "missing.pem"}},
		{"Redis over TLS with a CA file", with(serve, "DSAR_REDIS_TLS", "true", "DSAR_REDIS_TLS_CA_FILE", certs.CAFile, "DSAR_REDIS_TLS_SERVER_NAME", "redis.internal"), config.ModeServe, nil},
		{"Redis's CA file missing", with(serve, "DSAR_REDIS_TLS", "true", "DSAR_REDIS_TLS_CA_FILE", missing), config.ModeServe, []string{"DSAR_REDIS_TLS_CA_FILE", "missing.pem"}},
		{"Redis's CA file is not PEM", with(serve, "DSAR_REDIS_TLS", "true", "DSAR_REDIS_TLS_CA_FILE", "config_test.go"), config.ModeServe, []string{"DSAR_REDIS_TLS_CA_FILE", "no PEM certificate"}},
		{"Redis TLS options without DSAR_REDIS_TLS", with(serve, "DSAR_REDIS_TLS_CA_FILE", certs.CAFile), config.ModeServe, []string{"DSAR_REDIS_TLS=true"}},
		{"Redis TLS on dev's in-process Redis", map[string]string{"DSAR_REDIS_TLS": "true"}, config.ModeDev, []string{"DSAR_REDIS_TLS: needs DSAR_REDIS_ADDR, DSAR_REDIS_SENTINELS or DSAR_REDIS_CLUSTER_ADDRS"}},
		{"SMTP's CA file", map[string]string{"DSAR_SMTP_HOST": "mail", "DSAR_SMTP_TLS": "starttls", "DSAR_SMTP_TLS_CA_FILE": certs.CAFile}, config.ModeDev, nil},
		{"SMTP's CA file missing", map[string]string{"DSAR_SMTP_HOST": "mail", "DSAR_SMTP_TLS_CA_FILE": missing}, config.ModeDev, []string{"DSAR_SMTP_TLS_CA_FILE", "missing.pem"}},
		{"SMTP's CA file without TLS", map[string]string{"DSAR_SMTP_HOST": "mail", "DSAR_SMTP_TLS": "none", "DSAR_SMTP_TLS_CA_FILE": certs.CAFile}, config.ModeDev, []string{"DSAR_SMTP_TLS_CA_FILE", "not none"}},
		{"MongoDB over TLS with its CA file", with(serve, "DSAR_MONGO_URI", "mongodb://dsar:pw0123456789@db:27017/?tls=true&tlsCAFile="+certs.CAFile), config.ModeServe, nil},
		{"MongoDB's CA file missing", with(serve, "DSAR_MONGO_URI", "mongodb://dsar:pw0123456789@db:27017/?tls=true&tlsCAFile="+missing), config.ModeServe,
			[]string{"DSAR_MONGO_URI", "missing.pem"}},
		{"MongoDB's certificate check off", with(serve, "DSAR_MONGO_URI", "mongodb://db:27017/?tls=true&tlsInsecure=true"), config.ModeServe, []string{"DSAR_MONGO_URI: tlsInsecure=true"}},
		{"MongoDB's certificate check off in dev", map[string]string{"DSAR_MONGO_URI": "mongodb://db:27017/?tls=true&tlsAllowInvalidCertificates=true"}, config.ModeDev, nil},
	}
	for _, tt := range tests {
		c, err := config.Load(env(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err = c.Validate(tt.mode)
		if tt.wantErr == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", tt.name, w, err)
			}
		}
		if strings.Contains(err.Error(), "pw0123456789") {
			t.Errorf("%s: error shows the MongoDB password: %v", tt.name, err)
		}
	}
}

// TestCORSOrigins: origins are scheme://host[:port], https or a loopback
// http, never "*" nor a host pattern (matching is exact: a pattern would
// match nothing, silently); a default port is dropped, as browsers send
// the origin without it.
func TestCORSOrigins(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DSAR_CORS_ORIGINS": "https://www.example.com/, http://localhost:3000 ,https://Shop.Example.com:8443, https://portal.example.com:443, http://localhost:80"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://www.example.com", "http://localhost:3000", "https://shop.example.com:8443", "https://portal.example.com", "http://localhost"}
	if fmt.Sprint(c.CORSOrigins) != fmt.Sprint(want) {
		t.Errorf("origins %q, want %q", c.CORSOrigins, want)
	}
	for _, bad := range []string{"*", "www.example.com", "http://www.example.com", "https://www.example.com/privacy", "https://www.example.com?x=1", "ftp://x",
		"https://*.example.com", "https://www.example.*"} {
		if _, err := config.Load(env(map[string]string{"DSAR_CORS_ORIGINS": bad})); err == nil || !strings.Contains(err.Error(), "DSAR_CORS_ORIGINS") {
			t.Errorf("%q: err %v, want one naming DSAR_CORS_ORIGINS", bad, err)
		}
	}
}

// TestHSTSMaxAge: the max-age is whole seconds; a positive duration under
// one second, which the header would carry as max-age=0 (telling browsers
// to forget HTTPS-only), is refused; 0s sends none.
func TestHSTSMaxAge(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{"0s": 0, "0": 0, "1s": time.Second, "8760h": 8760 * time.Hour} {
		c, err := config.Load(env(map[string]string{"DSAR_HSTS_MAX_AGE": v}))
		if err != nil || c.HSTSMaxAge != want {
			t.Errorf("%q: %v, %v; want %v", v, c.HSTSMaxAge, err, want)
		}
	}
	for _, bad := range []string{"500ms", "-1s", "soon"} {
		if _, err := config.Load(env(map[string]string{"DSAR_HSTS_MAX_AGE": bad})); err == nil || !strings.Contains(err.Error(), "DSAR_HSTS_MAX_AGE") {
			t.Errorf("%q: err %v, want one naming DSAR_HSTS_MAX_AGE", bad, err)
		}
	}
}

// TestPreHookURL: the pre-fan-out hook is sent people's identities, so it
// takes https, or plain http only to this machine; the post-processing
// hook (no personal data) takes either.
func TestPreHookURL(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{
		"https://crm.example.com/dsar/pre": true,
		"http://127.0.0.1:9000/pre":        true,
		"http://[::1]:9000/pre":            true,
		"http://localhost:9000/pre":        true,
		"http://crm.internal/pre":          false,
		"http://10.0.0.5/pre":              false,
		"http://x.localhost/pre":           false,
		"ftp://crm.example.com/pre":        false,
	} {
		_, err := config.Load(env(map[string]string{"DSAR_HOOK_PRE_URL": v}))
		if ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "DSAR_HOOK_PRE_URL")) {
			t.Errorf("DSAR_HOOK_PRE_URL=%s: %v; want accepted %v", v, err, ok)
		}
	}
	if _, err := config.Load(env(map[string]string{"DSAR_HOOK_POST_URL": "http://crm.internal/post"})); err != nil {
		t.Errorf("DSAR_HOOK_POST_URL over http: %v; want accepted (it carries no personal data)", err)
	}
}

// TestOpenDSRControllersSecretsDiffer: two controllers given one secret
// are refused: a call with it was taken for either, at random (the
// controllers are a map), and read or cancelled the other's requests.
func TestOpenDSRControllersSecretsDiffer(t *testing.T) {
	const s = "0123456789abcdef0123"
	if _, err := config.Load(env(map[string]string{"DSAR_OPENDSR_CONTROLLERS": "acme:" + s + ",other:" + s})); err == nil ||
		!strings.Contains(err.Error(), "DSAR_OPENDSR_CONTROLLERS") || strings.Contains(err.Error(), s) {
		t.Errorf("one secret for two controllers: %v; want refused, the secret unnamed", err)
	}
	if _, err := config.Load(env(map[string]string{"DSAR_OPENDSR_CONTROLLERS": "acme:" + s + ",other:" + s + "x"})); err != nil &&
		strings.Contains(err.Error(), "DSAR_OPENDSR_CONTROLLERS") {
		t.Errorf("two secrets: %v", err)
	}
}

// TestRedisTopologies: one of DSAR_REDIS_ADDR, DSAR_REDIS_SENTINELS and
// DSAR_REDIS_CLUSTER_ADDRS, each with what it needs; Redis builds the
// queue's and dsar's own clients of the one set, with the password, the
// database and TLS of every topology.
func TestRedisTopologies(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	base := map[string]string{"DSAR_BLIND_INDEX_KEY": goodKey, "DSAR_MASTER_KEYS": goodMasterKeys, "DSAR_API_KEYS": "ops:admin:0123456789abcdef",
		"DSAR_REDIS_PASSWORD": "redis-pw", "DSAR_REDIS_TLS": "true", "DSAR_REDIS_TLS_CA_FILE": certs.CAFile, "DSAR_REDIS_TLS_SERVER_NAME": "redis.internal"}
	with := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	sentinels := []string{"DSAR_REDIS_SENTINELS", "s1:26379, s2:26379,s3:26379", "DSAR_REDIS_MASTER_NAME", "dsar-master"}
	tests := []struct {
		name     string
		env      map[string]string
		topology config.RedisTopology
		wantErr  []string // each must appear in Load's or Validate's error; nil: none
	}{
		{"one server", with("DSAR_REDIS_ADDR", "r:6379", "DSAR_REDIS_DB", "3"), config.RedisSingle, nil},
		{"sentinels", with(append(sentinels, "DSAR_REDIS_SENTINEL_PASSWORD", "sentinel-pw", "DSAR_REDIS_DB", "2")...), config.RedisSentinel, nil},
		{"cluster", with("DSAR_REDIS_CLUSTER_ADDRS", "c1:6379,c2:6379"), config.RedisCluster, nil},
		{"none outside dev", with(), config.RedisInProcess, []string{"DSAR_REDIS_ADDR: required by serve", "DSAR_REDIS_SENTINELS", "DSAR_REDIS_CLUSTER_ADDRS"}},
		{"server and sentinels", with(append(sentinels, "DSAR_REDIS_ADDR", "r:6379")...), "",
			[]string{"DSAR_REDIS_ADDR and DSAR_REDIS_SENTINELS: set one of DSAR_REDIS_ADDR (one server), DSAR_REDIS_SENTINELS (Sentinel) and DSAR_REDIS_CLUSTER_ADDRS (Cluster), not 2"}},
		{"all three", with(append(sentinels, "DSAR_REDIS_ADDR", "r:6379", "DSAR_REDIS_CLUSTER_ADDRS", "c1:6379")...), "",
			[]string{"DSAR_REDIS_ADDR and DSAR_REDIS_SENTINELS and DSAR_REDIS_CLUSTER_ADDRS: set one of", "not 3"}},
		{"sentinels and cluster", with(append(sentinels, "DSAR_REDIS_CLUSTER_ADDRS", "c1:6379")...), "", []string{"DSAR_REDIS_SENTINELS and DSAR_REDIS_CLUSTER_ADDRS: set one of"}},
		{"sentinels without a master name", with("DSAR_REDIS_SENTINELS", "s1:26379"), "", []string{"DSAR_REDIS_MASTER_NAME: required with DSAR_REDIS_SENTINELS"}},
		{"a master name without sentinels", with("DSAR_REDIS_ADDR", "r:6379", "DSAR_REDIS_MASTER_NAME", "m"), "", []string{"DSAR_REDIS_MASTER_NAME: takes effect only with DSAR_REDIS_SENTINELS"}},
		{"a sentinel password without sentinels", with("DSAR_REDIS_ADDR", "r:6379", "DSAR_REDIS_SENTINEL_PASSWORD", "pw"), "",
			[]string{"DSAR_REDIS_SENTINEL_PASSWORD: takes effect only with DSAR_REDIS_SENTINELS"}},
		{"cluster on database 1", with("DSAR_REDIS_CLUSTER_ADDRS", "c1:6379", "DSAR_REDIS_DB", "1"), "", []string{"DSAR_REDIS_DB: 1 with DSAR_REDIS_CLUSTER_ADDRS; a Redis Cluster has only database 0"}},
		{"a sentinel without a port", with("DSAR_REDIS_SENTINELS", "s1:26379,s2", "DSAR_REDIS_MASTER_NAME", "m"), "", []string{"DSAR_REDIS_SENTINELS", `"s2" is not one`}},
		{"a cluster node twice", with("DSAR_REDIS_CLUSTER_ADDRS", "c1:6379,c1:6379"), "", []string{"DSAR_REDIS_CLUSTER_ADDRS", "c1:6379 is listed twice"}},
		{"an empty cluster list", with("DSAR_REDIS_CLUSTER_ADDRS", ","), "", []string{"DSAR_REDIS_CLUSTER_ADDRS", "want comma-separated host:port"}},
	}
	for _, tt := range tests {
		c, err := config.Load(env(tt.env))
		if err == nil {
			err = c.Validate(config.ModeServe)
		}
		if tt.wantErr != nil {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
				continue
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error lacks %q: %v", tt.name, w, err)
				}
			}
			if strings.Contains(err.Error(), "redis-pw") || strings.Contains(err.Error(), "sentinel-pw") {
				t.Errorf("%s: the error shows a password: %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := c.RedisTopology(); got != tt.topology {
			t.Errorf("%s: topology %s, want %s", tt.name, got, tt.topology)
		}
		conn, err := c.Redis("")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		o := conn.Options
		if o.Password != "redis-pw" || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" || o.TLSConfig.RootCAs == nil {
			t.Errorf("%s: go-redis options lack the password or TLS: %+v", tt.name, o)
		}
		switch tt.topology {
		case config.RedisSingle:
			if !slices.Equal(o.Addrs, []string{"r:6379"}) || o.DB != 3 || o.MasterName != "" || o.IsClusterMode {
				t.Errorf("%s: options %+v", tt.name, o)
			}
		case config.RedisSentinel:
			if o.MasterName != "dsar-master" || !slices.Equal(o.Addrs, []string{"s1:26379", "s2:26379", "s3:26379"}) || o.SentinelPassword != "sentinel-pw" || o.DB != 2 {
				t.Errorf("%s: options %+v", tt.name, o)
			}
		case config.RedisCluster:
			if !slices.Equal(o.Addrs, []string{"c1:6379", "c2:6379"}) || !o.IsClusterMode || o.DB != 0 {
				t.Errorf("%s: options %+v", tt.name, o)
			}
		}
		// dsar's own clients and the queue's are made alike, of the
		// topology: a *redis.Client of the server or of the master the
		// sentinels name, or a cluster client.
		for _, rdb := range []redis.UniversalClient{conn.NewClient(), conn.Queue.MakeRedisClient().(redis.UniversalClient)} {
			switch c := rdb.(type) {
			case *redis.ClusterClient:
				if tt.topology != config.RedisCluster || c.Options().Password != "redis-pw" || c.Options().TLSConfig != o.TLSConfig ||
					c.Options().ClusterStateReloadInterval > 2*time.Second {
					t.Errorf("%s: cluster client options %+v", tt.name, c.Options())
				}
			case *redis.Client:
				// NewFailoverClient's Addr is "FailoverClient"; it asks
				// the sentinels at each dial.
				want := map[config.RedisTopology]string{config.RedisSingle: "r:6379", config.RedisSentinel: "FailoverClient"}[tt.topology]
				if c.Options().Addr != want || c.Options().Password != "redis-pw" || c.Options().TLSConfig != o.TLSConfig || c.Options().DB != o.DB {
					t.Errorf("%s: client options %+v", tt.name, c.Options())
				}
			default:
				t.Errorf("%s: client %T", tt.name, rdb)
			}
			_ = rdb.Close()
		}
	}
	// dev without any: its in-process Redis, on plain TCP.
	c, err := config.Load(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(config.ModeDev); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Redis(""); err == nil {
		t.Error("Redis without a topology or an in-process address: no error")
	}
	conn, err := c.Redis("127.0.0.1:7777")
	if err != nil || conn.Topology != config.RedisInProcess || conn.Options.Addrs[0] != "127.0.0.1:7777" {
		t.Fatalf("in-process: %+v %v", conn, err)
	}
	rdb := conn.Queue.MakeRedisClient().(*redis.Client)
	if rdb.Options().Addr != "127.0.0.1:7777" || rdb.Options().TLSConfig != nil {
		t.Errorf("in-process client: %+v", rdb.Options())
	}
	_ = rdb.Close()
}
