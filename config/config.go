// Package config is dsar's one typed configuration: read from DSAR_*
// environment variables and an optional YAML file, validated at start with
// errors that name the setting. The settings table ([Settings]) is also the
// source of `dsar <command> --help` and of the README's settings table.
package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/tlsutil"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/store/s3exports"
)

// Mode is the subcommand the process runs as; validation depends on it.
type Mode string

// The modes.
const (
	ModeDev       Mode = "dev"       // API, workers and scheduler in one process, embedded stores allowed
	ModeServe     Mode = "serve"     // API only
	ModeWorker    Mode = "worker"    // queue workers only
	ModeScheduler Mode = "scheduler" // periodic checks only
)

// Config is every setting dsar reads. Durations are Go durations ("90s").
type Config struct {
	HTTPAddr string
	// TLSCertFile and TLSKeyFile, when set, make the API serve HTTPS
	// itself (tlsutil.CertReloader).
	TLSCertFile string
	TLSKeyFile  string
	// BehindTLSProxy says a proxy in front terminates TLS.
	BehindTLSProxy bool
	// HSTSMaxAge is the Strict-Transport-Security max-age sent under TLS;
	// 0: no header.
	HSTSMaxAge time.Duration
	// CORSOrigins are the origins whose pages may call the portal API.
	CORSOrigins []string
	MongoURI    string
	MongoDB     string
	// RedisAddr, RedisSentinels and RedisClusterAddrs name Redis: one
	// server, the sentinels watching RedisMasterName, or a cluster's seed
	// nodes; at most one is set (Redis builds the clients of each).
	RedisAddr             string
	RedisSentinels        []string
	RedisMasterName       string
	RedisSentinelPassword string
	RedisClusterAddrs     []string
	RedisPassword         string
	RedisDB               int
	// RedisTLS makes every Redis connection TLS, checked against
	// RedisTLSCAFile (else the system's roots) and RedisTLSServerName
	// (else the host of RedisAddr).
	RedisTLS           bool
	RedisTLSCAFile     string
	RedisTLSServerName string
	DataDir            string
	ConnectorsFile     string
	// DRP configures the Data Rights Protocol: this business's id in its
	// directory and the file of the authorised agents trusted (the
	// directory's JSON). Both empty: the protocol is off.
	DRPBusinessID string
	DRPAgentsFile string
	// AllowInternalCallbacks lets the protocols' status callbacks (DRP,
	// OpenDSR) reach private and loopback addresses.
	AllowInternalCallbacks bool
	// OpenDSR configures this service as an OpenDSR processor: its
	// domain, the certificate and key signing its answers, the controllers
	// allowed (id -> SHA-256 of the secret) and where the routes are.
	OpenDSRDomain      string
	OpenDSRCertFile    string
	OpenDSRKeyFile     string
	OpenDSRControllers map[string][32]byte
	OpenDSRPrefix      string
	APIKeys            []apikey.Key
	DevAPIKey          string
	BlindIndexKey      []byte
	// BlindIndexPreviousKeys are the blind index keys BlindIndexKey
	// replaced, newest first: hashes under them are still looked up and
	// checked while `dsar keys rotate --blind-index` runs.
	BlindIndexPreviousKeys [][]byte
	// SuppressionKey and MaskKey, when set, pin the keys otherwise derived
	// from the (oldest) blind index key: they must not change with it.
	SuppressionKey []byte
	MaskKey        []byte
	// MasterKeys wrap the data keys that seal personal data at rest
	// (store/sealedstore); the first is active. Nil: dev keeps a key
	// file in DataDir.
	MasterKeys *envelope.Keyring
	// ExportS3 is the S3-compatible bucket exports are kept in, when
	// Endpoint is set; else the store keeps them.
	ExportS3          s3exports.Config
	Queue             string
	WorkerConcurrency int
	JobMaxRetry       int
	// ResolveMaxRounds bounds identity resolution before a fan-out.
	ResolveMaxRounds int
	JobRetryBase     time.Duration
	JobLease         time.Duration
	JobTimeout       time.Duration
	SweepEvery       time.Duration
	SweepGrace       time.Duration
	// ReapplyEvery is how often the scheduler runs the re-application
	// check; 0: never.
	ReapplyEvery    time.Duration
	JobPollEvery    time.Duration
	JobWaitMax      time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string

	// The privacy portal and notices to subjects.
	PublicURL    string
	PortalURL    string
	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string
	SMTPTLS      string
	// SMTPTLSCAFile, when set, is the only trust the SMTP connection's TLS
	// has.
	SMTPTLSCAFile    string
	VerifyCodeTTL    time.Duration
	VerifyMaxTries   int
	ExportLinkTTL    time.Duration
	PortalMaxPending int
	RateLimitIP      string
	RateLimitID      string
	TrustedProxies   []string
	GPCLastUpdate    string
	ApprovalRequired string
	ApprovalFourEyes string
	DuplicateWindow  time.Duration

	// The deadline engine's scheduled checks.
	Holidays          []string
	ReminderDays      []int
	CronReminders     string
	CronEscalation    string
	CronRetention     string
	KeepExports       time.Duration
	KeepIdentities    time.Duration
	EscalationEmail   string
	EscalationWebhook string
	WebhookSecret     webhook.Secret
	// WebhookPreviousSecret also signs escalation webhooks while
	// WebhookSecret changes.
	WebhookPreviousSecret webhook.Secret

	// The business's pre- and post-processing hooks (docs/hooks.md).
	HookPreURL  string
	HookPostURL string
	HookSecret  webhook.Secret
	// HookPreviousSecret also signs the hooks' calls, and is accepted on
	// resumes, while HookSecret changes.
	HookPreviousSecret webhook.Secret
	HookHoldMax        time.Duration

	// MetricsToken is the bearer token GET /metrics asks for; empty leaves
	// it open.
	MetricsToken string
	// HealthAddr is where a worker or scheduler serves /healthz, /readyz
	// and /metrics; empty: nowhere (the API serves its own).
	HealthAddr string

	// The pages (docs/pages.md): the portal's brand and the console's
	// sign-in.
	BrandName          string
	BrandLogoURL       string
	BrandPolicyURL     string
	BrandColor         string
	ConsoleIdleTimeout time.Duration
	ConsoleSessionMax  time.Duration
	OIDCIssuer         string
	OIDCClientID       string
	OIDCClientSecret   string
	OIDCRoleClaim      string
	// OIDCRoles maps a value of the role claim to a console role.
	OIDCRoles map[string]apikey.Role
}

// Setting describes one setting: its variable, default, meaning and the
// modes that read it.
type Setting struct {
	Env     string
	Default string
	Help    string
	Modes   []Mode
	set     func(c *Config, v string) error
}

var (
	allModes = []Mode{ModeDev, ModeServe, ModeWorker, ModeScheduler}
	apiModes = []Mode{ModeDev, ModeServe}
	wrkModes = []Mode{ModeDev, ModeWorker}
	dbModes  = []Mode{ModeDev, ModeServe, ModeWorker}
)

// Settings returns the settings table in documentation order.
func Settings() []Setting {
	return []Setting{
		{Env: "DSAR_CONFIG_FILE", Help: "optional YAML file of settings: keys are the variable names without DSAR_, lower case (http_addr: ...); the environment wins over the file", Modes: allModes,
			set: func(*Config, string) error { return nil }},
		{Env: "DSAR_HTTP_ADDR", Default: "127.0.0.1:8080", Help: "address the HTTP API listens on", Modes: apiModes,
			set: hostPort("127.0.0.1:8080 or :8080", func(c *Config, v string) { c.HTTPAddr = v })},
		{Env: "DSAR_HEALTH_ADDR", Help: "address a worker or scheduler serves GET /healthz, /readyz and /metrics on, in plain HTTP, for probes and Prometheus (keep it on loopback or a private network; nothing else is served there); unset: none", Modes: []Mode{ModeWorker, ModeScheduler},
			set: hostPort("127.0.0.1:9090 or :9090", func(c *Config, v string) { c.HealthAddr = v })},
		{Env: "DSAR_TLS_CERT_FILE", Help: "PEM certificate (the leaf, then its intermediates) the API serves HTTPS with, together with DSAR_TLS_KEY_FILE; both are read again on SIGHUP and when they change (checked every minute); unset: plain HTTP, which dev and serve allow only on a loopback DSAR_HTTP_ADDR or with DSAR_BEHIND_TLS_PROXY=true", Modes: apiModes,
			set: func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
		{Env: "DSAR_TLS_KEY_FILE", Help: "PEM private key of DSAR_TLS_CERT_FILE", Modes: apiModes,
			set: func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
		{Env: "DSAR_BEHIND_TLS_PROXY", Default: "false", Help: "true when a proxy in front terminates TLS: the API may then listen on a non-loopback address without DSAR_TLS_CERT_FILE, and its answers carry HSTS; set DSAR_TRUSTED_PROXIES too", Modes: apiModes,
			set: boolean(func(c *Config, b bool) { c.BehindTLSProxy = b })},
		{Env: "DSAR_HSTS_MAX_AGE", Default: "8760h", Help: "max-age of the Strict-Transport-Security header, sent only under TLS (DSAR_TLS_CERT_FILE or DSAR_BEHIND_TLS_PROXY); 0s sends none", Modes: apiModes,
			set: func(c *Config, v string) error {
				// Whole seconds: under one, the header would say max-age=0,
				// which tells browsers to forget HTTPS-only.
				d, err := time.ParseDuration(v)
				if v == "0" {
					d, err = 0, nil
				}
				if err != nil || d < 0 || d > 0 && d < time.Second {
					return errors.New("want 0s (none) or a duration of at least 1s, e.g. 8760h")
				}
				c.HSTSMaxAge = d
				return nil
			}},
		{Env: "DSAR_CORS_ORIGINS", Help: "comma-separated origins (https://www.example.com) whose pages may call the portal API (/v1/portal/...) from a browser; unset: none (the portal this service serves needs none)", Modes: apiModes,
			set: func(c *Config, v string) error {
				origins, err := parseOrigins(v)
				c.CORSOrigins = origins
				return err
			}},
		{Env: "DSAR_MONGO_URI", Help: "MongoDB connection string; unset: the embedded store, one SQLite file (DSAR_DATA_DIR/dsar.db), which serve, worker and scheduler processes on one machine may share", Modes: dbModes,
			set: func(c *Config, v string) error {
				if !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
					return errors.New("want a mongodb:// or mongodb+srv:// URI")
				}
				c.MongoURI = v
				return nil
			}},
		{Env: "DSAR_MONGO_DB", Default: "dsar", Help: "database holding requests, jobs and exports", Modes: dbModes,
			set: func(c *Config, v string) error {
				if strings.ContainsAny(v, `/\. "$`) || len(v) > 63 {
					return errors.New("want a database name of at most 63 characters without / \\ . space \" $")
				}
				c.MongoDB = v
				return nil
			}},
		{Env: "DSAR_REDIS_ADDR", Help: "Redis host:port (one server) for the job queue, rate limits and console sessions; or DSAR_REDIS_SENTINELS, or DSAR_REDIS_CLUSTER_ADDRS, not two; unset in dev: in-process Redis (development only)", Modes: allModes,
			set: hostPort("127.0.0.1:6379", func(c *Config, v string) { c.RedisAddr = v })},
		{Env: "DSAR_REDIS_SENTINELS", Help: "comma-separated host:port of Redis Sentinels (Redis with failover, see docs/reliability.md#redis-topologies): the queue, rate limits and console sessions follow the master they name; needs DSAR_REDIS_MASTER_NAME; instead of DSAR_REDIS_ADDR", Modes: allModes,
			set: hostPorts("10.0.0.1:26379,10.0.0.2:26379", func(c *Config, v []string) { c.RedisSentinels = v })},
		{Env: "DSAR_REDIS_MASTER_NAME", Help: "the name the sentinels of DSAR_REDIS_SENTINELS know the master by (sentinel monitor NAME ...); needs DSAR_REDIS_SENTINELS", Modes: allModes,
			set: func(c *Config, v string) error { c.RedisMasterName = v; return nil }},
		{Env: "DSAR_REDIS_SENTINEL_PASSWORD", Help: "the sentinels' own password (requirepass of sentinel.conf), when they have one; DSAR_REDIS_PASSWORD is the master's; needs DSAR_REDIS_SENTINELS", Modes: allModes,
			set: func(c *Config, v string) error { c.RedisSentinelPassword = v; return nil }},
		{Env: "DSAR_REDIS_CLUSTER_ADDRS", Help: "comma-separated host:port of some nodes of a Redis Cluster (the rest are discovered); instead of DSAR_REDIS_ADDR; DSAR_REDIS_DB must be 0", Modes: allModes,
			set: hostPorts("10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379", func(c *Config, v []string) { c.RedisClusterAddrs = v })},
		{Env: "DSAR_REDIS_PASSWORD", Help: "Redis password (of the server, the master and replicas under Sentinel, or every cluster node)", Modes: allModes,
			set: func(c *Config, v string) error { c.RedisPassword = v; return nil }},
		{Env: "DSAR_REDIS_DB", Default: "0", Help: "Redis database number; 0 with DSAR_REDIS_CLUSTER_ADDRS (a cluster has only 0)", Modes: allModes,
			set: intIn(0, 15, func(c *Config, n int) { c.RedisDB = n })},
		{Env: "DSAR_REDIS_TLS", Default: "false", Help: "true: every connection to Redis is TLS, its certificate checked (managed Redis services, redis-server --tls-port)", Modes: allModes,
			set: boolean(func(c *Config, b bool) { c.RedisTLS = b })},
		{Env: "DSAR_REDIS_TLS_CA_FILE", Help: "PEM certificates of the authority Redis's certificate must chain to, trusted instead of the system's; needs DSAR_REDIS_TLS=true", Modes: allModes,
			set: func(c *Config, v string) error { c.RedisTLSCAFile = v; return nil }},
		{Env: "DSAR_REDIS_TLS_SERVER_NAME", Help: "the name Redis's certificate must carry, when not the host dialled (of DSAR_REDIS_ADDR, of each sentinel, master and cluster node); needs DSAR_REDIS_TLS=true", Modes: allModes,
			set: func(c *Config, v string) error { c.RedisTLSServerName = v; return nil }},
		{Env: "DSAR_DATA_DIR", Default: "./data", Help: "where the embedded store (dsar.db, without DSAR_MONGO_URI) is kept; dev keeps its blind-index key, its outbox and the demo shop here too", Modes: dbModes,
			set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{Env: "DSAR_CONNECTORS_FILE", Help: "YAML file of connectors (see docs/connectors.md); required by worker; a worker refuses a file with no connector for some request type; in dev, unset means none (every request then needs attention with nothing done; the dev demo uses the demo shop's); serve reads only its webhook and opendsr connectors, to check their callbacks (unset: every callback is refused)", Modes: dbModes,
			set: func(c *Config, v string) error { c.ConnectorsFile = v; return nil }},
		{Env: "DSAR_API_KEYS", Help: "agent API keys: comma-separated name:role:secret; role is admin, agent, auditor or pipeline; secret has 16+ characters", Modes: apiModes,
			set: func(c *Config, v string) error {
				keys, err := ParseAPIKeys(v)
				c.APIKeys = keys
				return err
			}},
		{Env: "DSAR_DEV_API_KEY", Help: "dev only: an admin API key (16+ characters); unset: one is generated and printed once at start", Modes: []Mode{ModeDev},
			set: secret(func(c *Config, v string) { c.DevAPIKey = v })},
		{Env: "DSAR_BLIND_INDEX_KEY", Help: "key of the identity blind index (HMAC-SHA256): 32+ bytes as hex or base64; required by serve and worker; dev keeps one in DSAR_DATA_DIR", Modes: dbModes,
			set: func(c *Config, v string) error {
				k, err := decodeKey(v)
				c.BlindIndexKey = k
				return err
			}},
		{Env: "DSAR_BLIND_INDEX_PREVIOUS_KEYS", Help: "while the blind index key changes: the keys DSAR_BLIND_INDEX_KEY replaced, newest first, comma-separated (hex or base64); lookups, codes and signed links under them still work until `dsar keys rotate --blind-index` has re-hashed the store; needs DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY", Modes: dbModes,
			set: func(c *Config, v string) error {
				for i, part := range strings.Split(v, ",") {
					k, err := decodeKey(strings.TrimSpace(part))
					if err != nil {
						return fmt.Errorf("key %d: %w", i+1, err)
					}
					c.BlindIndexPreviousKeys = append(c.BlindIndexPreviousKeys, k)
				}
				return nil
			}},
		{Env: "DSAR_SUPPRESSION_KEY", Help: "pins the key of suppression hashes shared with pipelines (32 bytes, hex or base64: what `dsar keys pin` prints); unset: derived from the oldest blind index key; required while DSAR_BLIND_INDEX_PREVIOUS_KEYS is set, and for good after", Modes: dbModes,
			set: func(c *Config, v string) (err error) { c.SuppressionKey, err = decodeKey32(v); return err }},
		{Env: "DSAR_MASK_KEY", Help: "pins the key of the connectors' deterministic masks (32 bytes, hex or base64: what `dsar keys pin` prints); unset: derived from the oldest blind index key; required while DSAR_BLIND_INDEX_PREVIOUS_KEYS is set, and for good after", Modes: dbModes,
			set: func(c *Config, v string) (err error) { c.MaskKey, err = decodeKey32(v); return err }},
		{Env: "DSAR_MASTER_KEYS", Help: "master keys that wrap the data keys sealing personal data at rest (AES-256-GCM): id:base64key[,id:base64key...], 32-byte keys, the first active, the others only unwrap (rotation); required by serve and worker; dev keeps one in DSAR_DATA_DIR/master.keys; make one with: dsar keys new", Modes: dbModes,
			set: func(c *Config, v string) error {
				kr, err := envelope.ParseKeyring(v)
				c.MasterKeys = kr
				return err
			}},
		{Env: "DSAR_QUEUE", Default: "dsar", Help: "name of the job queue in Redis; the sweep and the scheduled checks use NAME_control, served first, verification codes NAME_codes, then the other notices and alerts NAME_notices", Modes: allModes,
			set: func(c *Config, v string) error {
				if strings.ContainsAny(v, " :{}") {
					return errors.New("want a name without spaces, colons or braces")
				}
				c.Queue = v
				return nil
			}},
		{Env: "DSAR_WORKER_CONCURRENCY", Default: "10", Help: "jobs one worker process runs at once", Modes: wrkModes,
			set: intIn(1, 1000, func(c *Config, n int) { c.WorkerConcurrency = n })},
		{Env: "DSAR_RESOLVE_MAX_ROUNDS", Default: "3", Help: "rounds of identity resolution before a fan-out (each may find identities that find more); a request that reaches the bound while still finding new ones records it", Modes: wrkModes,
			set: intIn(1, 20, func(c *Config, n int) { c.ResolveMaxRounds = n })},
		{Env: "DSAR_JOB_MAX_RETRY", Default: "8", Help: "retries of a failing connector job before the request needs attention (for a job waiting on its system, retries in a row: the count starts again each time the system answers)", Modes: dbModes,
			set: intIn(0, 100, func(c *Config, n int) { c.JobMaxRetry = n })},
		{Env: "DSAR_JOB_RETRY_BASE", Default: "10s", Help: "first retry delay; each retry doubles it (with jitter), up to 1h", Modes: wrkModes,
			set: duration(time.Millisecond, func(c *Config, d time.Duration) { c.JobRetryBase = d })},
		{Env: "DSAR_JOB_TIMEOUT", Default: "10m", Help: "how long one connector action may run", Modes: wrkModes,
			set: duration(time.Second, func(c *Config, d time.Duration) { c.JobTimeout = d })},
		{Env: "DSAR_JOB_LEASE", Default: "15m", Help: "how long a claimed job is held before the sweep may hand it to another worker; must exceed DSAR_JOB_TIMEOUT", Modes: wrkModes,
			set: duration(time.Second, func(c *Config, d time.Duration) { c.JobLease = d })},
		{Env: "DSAR_SWEEP_EVERY", Default: "1m", Help: "how often the scheduler runs the sweep that re-drives lost work; one sweep runs at a time, and one queued within half of it after the last ended does nothing", Modes: []Mode{ModeDev, ModeScheduler, ModeWorker},
			set: duration(time.Second, func(c *Config, d time.Duration) { c.SweepEvery = d })},
		{Env: "DSAR_SWEEP_GRACE", Default: "2m", Help: "how long work may sit untouched before the sweep re-enqueues it", Modes: wrkModes,
			set: duration(time.Second, func(c *Config, d time.Duration) { c.SweepGrace = d })},
		{Env: "DSAR_REAPPLY_EVERY", Default: "1h", Help: "how often the scheduler runs the re-application check, which lists the segments connectors can list and opts out again the suppressed people who came back; one runs at a time; 0 turns it off", Modes: []Mode{ModeDev, ModeScheduler, ModeWorker},
			set: durationOrOff(time.Minute, func(c *Config, d time.Duration) { c.ReapplyEvery = d })},
		{Env: "DSAR_JOB_POLL_EVERY", Default: "5m", Help: "how often a job waiting on an asynchronous system is polled when its connector names no interval (at most as often as the sweep runs)", Modes: wrkModes,
			set: duration(time.Second, func(c *Config, d time.Duration) { c.JobPollEvery = d })},
		{Env: "DSAR_JOB_WAIT_MAX", Default: "336h", Help: "how long a job waits on an asynchronous system before it fails and its request needs attention", Modes: wrkModes,
			set: duration(time.Minute, func(c *Config, d time.Duration) { c.JobWaitMax = d })},
		{Env: "DSAR_SHUTDOWN_TIMEOUT", Default: "30s", Help: "how long shutdown waits for requests and jobs in flight", Modes: allModes,
			set: duration(time.Second, func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
		{Env: "DSAR_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error", Modes: allModes,
			set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{Env: "DSAR_LOG_FORMAT", Default: "json", Help: "json or text", Modes: allModes,
			set: func(c *Config, v string) error {
				if v != "json" && v != "text" {
					return errors.New("want json or text")
				}
				c.LogFormat = v
				return nil
			}},
		{Env: "DSAR_DRP_BUSINESS_ID", Help: "this business's id in the Data Rights Protocol's directory (docs/protocols.md): every agent's message must name it; with DSAR_DRP_AGENTS_FILE, turns the protocol's endpoints on", Modes: dbModes,
			set: func(c *Config, v string) error { c.DRPBusinessID = v; return nil }},
		{Env: "DSAR_DRP_AGENTS_FILE", Help: "JSON file of the authorised agents trusted, in the protocol's directory format (id, name, verify_key: base64 Ed25519 public key, ...); read at start", Modes: dbModes,
			set: func(c *Config, v string) error { c.DRPAgentsFile = v; return nil }},
		{Env: "DSAR_ALLOW_INTERNAL_CALLBACKS", Default: "false", Help: "let the status callbacks of the privacy protocols (DRP agents' status_callback, OpenDSR controllers' status_callback_urls) name private or loopback addresses, and http to loopback: for tests and one-machine setups only", Modes: dbModes,
			set: boolean(func(c *Config, b bool) { c.AllowInternalCallbacks = b })},
		{Env: "DSAR_OPENDSR_DOMAIN", Help: "this processor's OpenDSR domain (docs/protocols.md), the one its certificate is issued for (X-OpenDSR-Processor-Domain); with DSAR_OPENDSR_CERT_FILE, DSAR_OPENDSR_KEY_FILE and DSAR_OPENDSR_CONTROLLERS, turns the processor's endpoints on", Modes: dbModes,
			set: func(c *Config, v string) error { c.OpenDSRDomain = v; return nil }},
		{Env: "DSAR_OPENDSR_CERT_FILE", Help: "PEM certificate chain (leaf first) that signs this processor's OpenDSR answers, issued by a CA for DSAR_OPENDSR_DOMAIN; served at DSAR_OPENDSR_PREFIX/certificate.pem", Modes: dbModes,
			set: func(c *Config, v string) error { c.OpenDSRCertFile = v; return nil }},
		{Env: "DSAR_OPENDSR_KEY_FILE", Help: "PEM private key (RSA or ECDSA) of DSAR_OPENDSR_CERT_FILE", Modes: dbModes,
			set: func(c *Config, v string) error { c.OpenDSRKeyFile = v; return nil }},
		{Env: "DSAR_OPENDSR_CONTROLLERS", Help: "the controllers allowed to pass requests: id:secret[,id:secret...], each secret 16+ characters and its own, sent as Authorization: Bearer <secret>; dsar keeps only their SHA-256", Modes: dbModes,
			set: func(c *Config, v string) error {
				c.OpenDSRControllers = map[string][32]byte{}
				for i, part := range strings.Split(v, ",") {
					id, secret, ok := strings.Cut(strings.TrimSpace(part), ":")
					switch {
					case !ok || id == "" || strings.ContainsAny(id, " \t"):
						return fmt.Errorf("entry %d: want id:secret", i+1)
					case len(secret) < 16:
						return fmt.Errorf("entry %d (%s): the secret needs 16 characters or more", i+1, id)
					case c.OpenDSRControllers[id] != [32]byte{}:
						return fmt.Errorf("entry %d: controller %s listed twice", i+1, id)
					}
					sum := sha256.Sum256([]byte(secret))
					for other, h := range c.OpenDSRControllers {
						if h == sum {
							// A call with it would be taken for either.
							return fmt.Errorf("entry %d (%s): the secret of controller %s: give each its own", i+1, id, other)
						}
					}
					c.OpenDSRControllers[id] = sum
				}
				return nil
			}},
		{Env: "DSAR_OPENDSR_PREFIX", Default: "/opendsr/v2", Help: "where the OpenDSR processor's routes are mounted (/discovery, /requests, ...)", Modes: apiModes,
			set: func(c *Config, v string) error {
				if !strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "?#: ") {
					return errors.New("want a path such as /opendsr/v2: a leading /, no trailing /")
				}
				c.OpenDSRPrefix = v
				return nil
			}},
		{Env: "DSAR_PUBLIC_URL", Help: "where people reach the API, for links in emails, e.g. https://privacy.example.com; required by worker, and by serve with DSAR_OIDC_ISSUER (the sign-in's callback); dev: http://DSAR_HTTP_ADDR", Modes: dbModes,
			set: baseURL(", e.g. https://privacy.example.com", func(c *Config, v string) { c.PublicURL = v })},
		{Env: "DSAR_PORTAL_URL", Help: "where the privacy portal's pages are; verification emails link to its /verify page; unset: DSAR_PUBLIC_URL/privacy, the portal this service serves", Modes: wrkModes,
			set: baseURL("", func(c *Config, v string) { c.PortalURL = v })},
		{Env: "DSAR_BRAND_NAME", Help: "the business's name at the top of every page (portal and console); unset: \"Privacy centre\"", Modes: apiModes,
			set: func(c *Config, v string) error {
				if len(v) > 100 {
					return errors.New("want at most 100 characters")
				}
				c.BrandName = v
				return nil
			}},
		{Env: "DSAR_BRAND_LOGO_URL", Help: "https URL (or a path on this service) of the logo shown beside the name", Modes: apiModes,
			set: func(c *Config, v string) error { c.BrandLogoURL = v; return nil }},
		{Env: "DSAR_BRAND_POLICY_URL", Help: "https URL (or a path) of the privacy policy the pages' footer links to", Modes: apiModes,
			set: func(c *Config, v string) error { c.BrandPolicyURL = v; return nil }},
		{Env: "DSAR_BRAND_COLOR", Help: "the pages' main colour, #rrggbb (buttons, links; links are darkened where needed to keep 4.5:1 contrast); unset: #1d4ed8", Modes: apiModes,
			set: func(c *Config, v string) error { c.BrandColor = v; return nil }},
		{Env: "DSAR_CONSOLE_IDLE_TIMEOUT", Default: "30m", Help: "a console session unused this long is signed out", Modes: apiModes,
			set: duration(time.Minute, func(c *Config, d time.Duration) { c.ConsoleIdleTimeout = d })},
		{Env: "DSAR_CONSOLE_SESSION_MAX", Default: "12h", Help: "a console session ends this long after sign-in, used or not", Modes: apiModes,
			set: duration(time.Minute, func(c *Config, d time.Duration) { c.ConsoleSessionMax = d })},
		{Env: "DSAR_OIDC_ISSUER", Help: "OpenID Connect issuer agents may sign in to the console with (https URL, discovered at start); unset: API keys only", Modes: apiModes,
			set: baseURL(", e.g. https://login.example.com", func(c *Config, v string) { c.OIDCIssuer = v })},
		{Env: "DSAR_OIDC_CLIENT_ID", Help: "this service's client id at the issuer; its redirect URL is DSAR_PUBLIC_URL/console/oidc/callback", Modes: apiModes,
			set: func(c *Config, v string) error { c.OIDCClientID = v; return nil }},
		{Env: "DSAR_OIDC_CLIENT_SECRET", Help: "this service's client secret at the issuer", Modes: apiModes,
			set: secret(func(c *Config, v string) { c.OIDCClientSecret = v })},
		{Env: "DSAR_OIDC_ROLE_CLAIM", Default: "groups", Help: "the ID token claim (a string or a list of strings) whose values DSAR_OIDC_ROLES maps to console roles", Modes: apiModes,
			set: func(c *Config, v string) error { c.OIDCRoleClaim = v; return nil }},
		{Env: "DSAR_OIDC_ROLES", Help: "comma-separated role=claim value, e.g. admin=privacy-admins,agent=privacy-team,auditor=dpo; a person whose claim holds none of the values may not sign in, and one whose claim holds several gets the highest of their roles (admin, then agent, then auditor); a value listed twice keeps its first role", Modes: apiModes,
			set: func(c *Config, v string) error {
				roles, err := parseOIDCRoles(v)
				c.OIDCRoles = roles
				return err
			}},
		{Env: "DSAR_SMTP_HOST", Help: "SMTP server for emails to people; required by worker; unset in dev: each message is written as an .eml file to DSAR_DATA_DIR/outbox", Modes: wrkModes,
			set: func(c *Config, v string) error { c.SMTPHost = v; return nil }},
		{Env: "DSAR_SMTP_PORT", Default: "587", Help: "SMTP port (587 submission, 465 with DSAR_SMTP_TLS=implicit, 25)", Modes: wrkModes,
			set: intIn(1, 65535, func(c *Config, n int) { c.SMTPPort = n })},
		{Env: "DSAR_SMTP_USERNAME", Help: "SMTP user (AUTH PLAIN, only over TLS or to a loopback host); unset: no AUTH", Modes: wrkModes,
			set: func(c *Config, v string) error { c.SMTPUsername = v; return nil }},
		{Env: "DSAR_SMTP_PASSWORD", Help: "SMTP password", Modes: wrkModes,
			set: func(c *Config, v string) error { c.SMTPPassword = v; return nil }},
		{Env: "DSAR_SMTP_FROM", Default: "Privacy <privacy@localhost>", Help: "sender of emails to people", Modes: wrkModes,
			set: func(c *Config, v string) error {
				if _, err := mail.ParseAddress(v); err != nil {
					return errors.New(`want an address, e.g. "Privacy <privacy@example.com>"`)
				}
				c.SMTPFrom = v
				return nil
			}},
		{Env: "DSAR_SMTP_TLS", Default: "opportunistic", Help: "opportunistic (STARTTLS when offered), starttls (required), implicit (TLS from the start, port 465) or none", Modes: wrkModes,
			set: func(c *Config, v string) error {
				switch v {
				case "opportunistic", "starttls", "implicit", "none":
					c.SMTPTLS = v
					return nil
				}
				return errors.New("want opportunistic, starttls, implicit or none")
			}},
		{Env: "DSAR_SMTP_TLS_CA_FILE", Help: "PEM certificates of the authority the SMTP server's certificate must chain to, trusted instead of the system's; not with DSAR_SMTP_TLS=none", Modes: wrkModes,
			set: func(c *Config, v string) error { c.SMTPTLSCAFile = v; return nil }},
		{Env: "DSAR_VERIFY_CODE_TTL", Default: "15m", Help: "how long an emailed verification code and link work", Modes: wrkModes,
			set: duration(time.Minute, func(c *Config, d time.Duration) { c.VerifyCodeTTL = d })},
		{Env: "DSAR_VERIFY_MAX_TRIES", Default: "5", Help: "verification attempts per request; the last wrong one denies the request", Modes: apiModes,
			set: intIn(1, 20, func(c *Config, n int) { c.VerifyMaxTries = n })},
		{Env: "DSAR_EXPORT_LINK_TTL", Default: "168h", Help: "how long the signed download link of an access request works", Modes: wrkModes,
			set: duration(time.Hour, func(c *Config, d time.Duration) { c.ExportLinkTTL = d })},
		{Env: "DSAR_PORTAL_MAX_PENDING", Default: "1", Help: "open requests of one type one email may have; a further identical submission is merged and the person told", Modes: apiModes,
			set: intIn(1, 100, func(c *Config, n int) { c.PortalMaxPending = n })},
		{Env: "DSAR_RATE_LIMIT_IP", Default: "30-M", Help: "portal calls allowed per client address: N-S, N-M, N-H or N-D (per second, minute, hour, day)", Modes: apiModes,
			set: rateFormat(func(c *Config, v string) { c.RateLimitIP = v })},
		{Env: "DSAR_RATE_LIMIT_IDENTITY", Default: "5-H", Help: "portal submissions allowed per email (or other identity), same format; Data Rights Protocol exercises that mail the person a verification count against it too", Modes: apiModes,
			set: rateFormat(func(c *Config, v string) { c.RateLimitID = v })},
		{Env: "DSAR_TRUSTED_PROXIES", Help: "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed; unset: none, the peer address counts", Modes: apiModes,
			set: func(c *Config, v string) error {
				for _, p := range strings.Split(v, ",") {
					p = strings.TrimSpace(p)
					if p == "" {
						continue
					}
					if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
						return fmt.Errorf("%q is neither an address nor a CIDR", p)
					}
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
				return nil
			}},
		{Env: "DSAR_APPROVAL_REQUIRED", Default: "deletion", Help: "requests that wait for an agent's approval before processing: request types, each optionally with a regulation (deletion,access:ccpa), or none", Modes: dbModes,
			set: requestTypes(func(c *Config, v string) { c.ApprovalRequired = v })},
		{Env: "DSAR_APPROVAL_FOUR_EYES", Help: "requests that the agent (API key) who filed them may not approve, another must: same format as DSAR_APPROVAL_REQUIRED, or none; unset: deletion (in dev: none, as its one key files and approves)", Modes: apiModes,
			set: requestTypes(func(c *Config, v string) { c.ApprovalFourEyes = v })},
		{Env: "DSAR_DUPLICATE_WINDOW", Default: "720h", Help: "an agent's new request is filed as a duplicate of an open identical one (same type and identity) received this long before; 0s turns it off", Modes: apiModes,
			set: duration(0, func(c *Config, d time.Duration) { c.DuplicateWindow = d })},
		{Env: "DSAR_HOLIDAYS", Help: "public holidays that are not business days, comma-separated YYYY-MM-DD (business-day deadlines skip them and weekends)", Modes: apiModes,
			set: func(c *Config, v string) error {
				for _, d := range strings.Split(v, ",") {
					if d = strings.TrimSpace(d); d == "" {
						continue
					}
					if _, err := time.Parse(time.DateOnly, d); err != nil {
						return fmt.Errorf("%q: want YYYY-MM-DD", d)
					}
					c.Holidays = append(c.Holidays, d)
				}
				return nil
			}},
		{Env: "DSAR_REMINDER_DAYS", Default: "7,2", Help: "reminders to the escalation channel this many days before a request is due, comma-separated", Modes: wrkModes,
			set: func(c *Config, v string) error {
				c.ReminderDays = nil
				for _, d := range strings.Split(v, ",") {
					n, err := strconv.Atoi(strings.TrimSpace(d))
					if err != nil || n < 1 || n > 90 {
						return errors.New("want whole numbers of days from 1 to 90, e.g. 7,2")
					}
					c.ReminderDays = append(c.ReminderDays, n)
				}
				return nil
			}},
		{Env: "DSAR_CRON_REMINDERS", Default: "@every 1h", Help: "when the reminders check runs (cron spec, or @every <duration>)", Modes: []Mode{ModeDev, ModeScheduler},
			set: func(c *Config, v string) error { c.CronReminders = v; return nil }},
		{Env: "DSAR_CRON_ESCALATION", Default: "@every 15m", Help: "when the escalation check (overdue requests) runs", Modes: []Mode{ModeDev, ModeScheduler},
			set: func(c *Config, v string) error { c.CronEscalation = v; return nil }},
		{Env: "DSAR_CRON_RETENTION", Default: "@daily", Help: "when the retention check (purging exports and identities of closed requests) runs", Modes: []Mode{ModeDev, ModeScheduler},
			set: func(c *Config, v string) error { c.CronRetention = v; return nil }},
		{Env: "DSAR_EXPORT_S3_ENDPOINT", Help: "keep exports, encrypted, in an S3-compatible bucket at this URL (https://s3.eu-west-1.amazonaws.com, https://minio.internal:9000; http only to this machine) instead of the store; needs DSAR_EXPORT_S3_BUCKET", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.Endpoint = v; return nil }},
		{Env: "DSAR_EXPORT_S3_BUCKET", Help: "the bucket for exports, optionally with a prefix: BUCKET or BUCKET/PREFIX; it must exist", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.Bucket = v; return nil }},
		{Env: "DSAR_EXPORT_S3_CA_FILE", Help: "PEM certificates that alone are trusted for the bucket's https endpoint (a private CA); unset: the system's roots", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.CAFile = v; return nil }},
		{Env: "DSAR_EXPORT_S3_REGION", Help: "the bucket's region; unset: asked of the service", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.Region = v; return nil }},
		{Env: "DSAR_EXPORT_S3_ACCESS_KEY_ID", Help: "static credentials for the bucket, with DSAR_EXPORT_S3_SECRET_ACCESS_KEY; unset: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared credentials file, then the instance's IAM role", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.AccessKeyID = v; return nil }},
		{Env: "DSAR_EXPORT_S3_SECRET_ACCESS_KEY", Help: "the secret of DSAR_EXPORT_S3_ACCESS_KEY_ID", Modes: dbModes,
			set: func(c *Config, v string) error { c.ExportS3.SecretAccessKey = v; return nil }},
		{Env: "DSAR_RETENTION_EXPORTS", Default: "720h", Help: "how long the exported data of a closed access request is kept; 0s keeps it", Modes: wrkModes,
			set: duration(0, func(c *Config, d time.Duration) { c.KeepExports = d })},
		{Env: "DSAR_RETENTION_IDENTITIES", Default: "2160h", Help: "how long the clear identities of a closed request are kept; the pseudonymised record and audit chain stay (at least 24 months, CCPA 11 CCR 7101); 0s keeps them", Modes: wrkModes,
			set: duration(0, func(c *Config, d time.Duration) { c.KeepIdentities = d })},
		{Env: "DSAR_ESCALATION_EMAIL", Help: "where reminders and overdue alerts are emailed", Modes: wrkModes,
			set: func(c *Config, v string) error {
				if _, err := mail.ParseAddress(v); err != nil {
					return errors.New("want an email address")
				}
				c.EscalationEmail = v
				return nil
			}},
		{Env: "DSAR_ESCALATION_WEBHOOK_URL", Help: "where reminders and overdue alerts are POSTed as JSON, signed with DSAR_ESCALATION_WEBHOOK_SECRET", Modes: wrkModes,
			set: func(c *Config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return errors.New("want an http(s) URL")
				}
				c.EscalationWebhook = v
				return nil
			}},
		{Env: "DSAR_ESCALATION_WEBHOOK_SECRET", Help: "key signing escalation webhooks (Standard Webhooks: webhook-signature); whsec_<base64> or 16+ characters", Modes: wrkModes,
			set: func(c *Config, v string) (err error) { c.WebhookSecret, err = webhook.ParseSecret(v); return err }},
		{Env: "DSAR_ESCALATION_WEBHOOK_PREVIOUS_SECRET", Help: "while DSAR_ESCALATION_WEBHOOK_SECRET changes: the secret it replaced; each webhook is signed with both (two signatures in webhook-signature) until the receiver has the new one", Modes: wrkModes,
			set: func(c *Config, v string) (err error) {
				c.WebhookPreviousSecret, err = webhook.ParseSecret(v)
				return err
			}},
		{Env: "DSAR_HOOK_PRE_URL", Help: "the business's pre-fan-out hook (docs/hooks.md): POSTed each verified request, with its identities, before its fan-out, signed with DSAR_HOOK_SECRET; its answer may add identities or hold the request until a signed resume; https, or http only to this machine", Modes: wrkModes,
			set: identitiesURL(hookURL(func(c *Config, v string) { c.HookPreURL = v }))},
		{Env: "DSAR_HOOK_POST_URL", Help: "the business's post-processing hook (docs/hooks.md): POSTed each request's outcome per system (no personal data) when it is completed or needs attention, signed with DSAR_HOOK_SECRET, retried until delivered", Modes: wrkModes,
			set: hookURL(func(c *Config, v string) { c.HookPostURL = v })},
		{Env: "DSAR_HOOK_SECRET", Help: "key signing the hooks' calls and checking the resumes POSTed to /v1/hooks/resume/{id} (Standard Webhooks); whsec_<base64> or 16+ characters; required with either hook URL; unset in serve: resumes are refused", Modes: dbModes,
			set: func(c *Config, v string) (err error) { c.HookSecret, err = webhook.ParseSecret(v); return err }},
		{Env: "DSAR_HOOK_PREVIOUS_SECRET", Help: "while DSAR_HOOK_SECRET changes: the secret it replaced; the hooks' calls are signed with both (two signatures in webhook-signature) and resumes signed with either are accepted", Modes: dbModes,
			set: func(c *Config, v string) (err error) { c.HookPreviousSecret, err = webhook.ParseSecret(v); return err }},
		{Env: "DSAR_HOOK_HOLD_MAX", Default: "72h", Help: "how long a request the pre-fan-out hook held waits for its resume before it needs attention (the legal clock runs meanwhile)", Modes: wrkModes,
			set: duration(time.Minute, func(c *Config, d time.Duration) { c.HookHoldMax = d })},
		{Env: "DSAR_METRICS_TOKEN", Help: "bearer token GET /metrics asks for (Prometheus authorization: credentials), on the API and on DSAR_HEALTH_ADDR; 16+ characters; unset leaves /metrics open", Modes: allModes,
			set: secret(func(c *Config, v string) { c.MetricsToken = v })},
		{Env: "DSAR_GPC_LAST_UPDATE", Default: "2026-11-24", Help: "lastUpdate of /.well-known/gpc.json: when the site's GPC support last changed", Modes: apiModes,
			set: func(c *Config, v string) error {
				if _, err := time.Parse("2006-01-02", v); err != nil {
					return errors.New("want a date YYYY-MM-DD")
				}
				c.GPCLastUpdate = v
				return nil
			}},
	}
}

// hookURL checks a hook's URL: http(s), with a host.
func hookURL(set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("want an http(s) URL, e.g. https://crm.internal.example/dsar/pre")
		}
		set(c, v)
		return nil
	}
}

// identitiesURL wraps the setter of a URL that is sent people's
// identities: plain http is refused unless the host is this machine
// (localhost or a loopback address, never a name resolved elsewhere).
func identitiesURL(set func(*Config, string) error) func(*Config, string) error {
	return func(c *Config, v string) error {
		if u, err := url.Parse(v); err == nil && u.Scheme == "http" {
			h := u.Hostname()
			if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return errors.New("want an https URL: this hook is sent people's identities, so plain http is allowed only to this machine (localhost, 127.0.0.1, [::1])")
			}
		}
		return set(c, v)
	}
}

// boolean reads true or false.
func boolean(set func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		set(c, b)
		return nil
	}
}

// parseOrigins reads comma-separated web origins: scheme://host[:port],
// https, or http to a loopback host (a portal in development); a trailing
// slash is dropped, and a default port (443, 80), which browsers leave out
// of the Origin they send. Origins are matched exactly, so a host pattern
// ("*.example.com") is refused rather than match nothing.
func parseOrigins(v string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o == "" {
			continue
		}
		u, err := url.Parse(o)
		switch {
		case o == "*":
			return nil, errors.New(`"*" is not allowed: the portal API carries personal data; list the portal's origins`)
		case err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return nil, fmt.Errorf("%q: want an origin, scheme://host[:port], e.g. https://www.example.com", o)
		case strings.Contains(u.Host, "*"):
			return nil, fmt.Errorf("%q: list each origin in full: they are matched exactly, patterns match nothing", o)
		case u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())):
			return nil, fmt.Errorf("%q: want https (http only for localhost)", o)
		}
		if p := u.Port(); u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80" {
			o = strings.TrimSuffix(o, ":"+p)
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}

// loopback reports whether host (a name or an address, no port) is this
// machine: localhost, *.localhost or a loopback address. No name is
// resolved.
func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddr reports whether a listen address (host:port) takes only
// connections from this machine: a loopback address, or localhost (the
// hosts file's). An empty host (":8080", every interface) does not, nor a
// name under .localhost: no hosts file lists it, so the listener would ask
// DNS, which may answer with any address of the machine.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && (host == "localhost" || loopback(host) && !strings.HasSuffix(host, ".localhost"))
}

// ServesTLS reports whether the API terminates TLS itself.
func (c Config) ServesTLS() bool { return c.TLSCertFile != "" }

// UnderTLS reports whether people reach the API over TLS: its own, or a
// proxy's in front of it. HSTS is sent only then.
func (c Config) UnderTLS() bool { return c.ServesTLS() || c.BehindTLSProxy }

// RedisTLSConfig is the TLS configuration of Redis connections; nil when
// DSAR_REDIS_TLS is off.
func (c Config) RedisTLSConfig() (*tls.Config, error) {
	if !c.RedisTLS {
		return nil, nil
	}
	cfg, err := tlsutil.ClientConfig(c.RedisTLSCAFile, c.RedisTLSServerName)
	if err != nil {
		return nil, fmt.Errorf("DSAR_REDIS_TLS_CA_FILE: %w", err)
	}
	return cfg, nil
}

// SMTPTLSConfig is the TLS configuration of SMTP connections: nil without
// DSAR_SMTP_TLS_CA_FILE (the system's roots, the host's name).
func (c Config) SMTPTLSConfig() (*tls.Config, error) {
	if c.SMTPTLSCAFile == "" {
		return nil, nil
	}
	cfg, err := tlsutil.ClientConfig(c.SMTPTLSCAFile, "")
	if err != nil {
		return nil, fmt.Errorf("DSAR_SMTP_TLS_CA_FILE: %w", err)
	}
	return cfg, nil
}

// validateTransport checks the TLS settings of mode m: the API's
// certificate, the refusal of plain HTTP beyond loopback, and the client
// TLS of Redis, SMTP and MongoDB.
func (c Config) validateTransport(m Mode) []error {
	var errs []error
	api := m == ModeDev || m == ModeServe
	if api {
		switch {
		case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
			errs = append(errs, errors.New("DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE: set both, or neither"))
		case c.TLSCertFile != "":
			if _, err := tlsutil.LoadKeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
				errs = append(errs, fmt.Errorf("DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE: %w", err))
			}
		case !c.BehindTLSProxy && !LoopbackAddr(c.HTTPAddr):
			errs = append(errs, fmt.Errorf("DSAR_HTTP_ADDR: %s is not a loopback address and %s would serve it plain HTTP: "+
				"set DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE to serve HTTPS, or DSAR_BEHIND_TLS_PROXY=true when a proxy in front terminates TLS, "+
				"or listen on 127.0.0.1", c.HTTPAddr, m))
		}
	}
	if c.RedisTLS {
		if m == ModeDev && c.RedisTopology() == RedisInProcess {
			errs = append(errs, errors.New("DSAR_REDIS_TLS: needs DSAR_REDIS_ADDR, DSAR_REDIS_SENTINELS or DSAR_REDIS_CLUSTER_ADDRS (dev's in-process Redis speaks no TLS)"))
		}
		if _, err := c.RedisTLSConfig(); err != nil {
			errs = append(errs, err)
		}
	} else if c.RedisTLSCAFile != "" || c.RedisTLSServerName != "" {
		errs = append(errs, errors.New("DSAR_REDIS_TLS_CA_FILE and DSAR_REDIS_TLS_SERVER_NAME: take effect only with DSAR_REDIS_TLS=true"))
	}
	if (m == ModeDev || m == ModeWorker) && c.SMTPTLSCAFile != "" {
		if c.SMTPTLS == "none" {
			errs = append(errs, errors.New("DSAR_SMTP_TLS_CA_FILE: takes effect only with DSAR_SMTP_TLS opportunistic, starttls or implicit, not none"))
		} else if _, err := c.SMTPTLSConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	if m != ModeScheduler && c.MongoURI != "" {
		errs = append(errs, c.validateMongoTLS(m)...)
	}
	return errs
}

// validateMongoTLS checks the TLS options of DSAR_MONGO_URI as the driver
// reads them (tls=true, tlsCAFile, tlsCertificateKeyFile): the driver
// loads those files when the client is made, so a file missing fails the
// start here with the setting named. mongodb+srv URIs, whose parsing
// looks their hosts up, are left to the driver. Outside dev, options that
// turn certificate checks off are refused.
func (c Config) validateMongoTLS(m Mode) []error {
	u, err := url.Parse(c.MongoURI)
	if err != nil {
		return []error{errors.New("DSAR_MONGO_URI: not a URI")}
	}
	var errs []error
	q := u.Query()
	if m != ModeDev {
		for _, insecure := range []string{"tlsInsecure", "tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames", "sslAllowInvalidCertificates", "sslAllowInvalidHostnames"} {
			if strings.EqualFold(q.Get(insecure), "true") {
				errs = append(errs, fmt.Errorf("DSAR_MONGO_URI: %s=true turns the check of MongoDB's certificate off; %s refuses it (use tlsCAFile for a private authority)", insecure, m))
			}
		}
	}
	if u.Scheme != "mongodb" {
		return errs
	}
	if err := options.Client().ApplyURI(c.MongoURI).Validate(); err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		errs = append(errs, fmt.Errorf("DSAR_MONGO_URI: %s", msg))
	}
	return errs
}

// requestTypes checks an approval policy: a list of request types, each
// optionally narrowed to a regulation, or none. dsr.ParseApprovalPolicy is
// the one parser of the format.
func requestTypes(set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		if _, err := dsr.ParseApprovalPolicy(v); err != nil {
			return err
		}
		set(c, v)
		return nil
	}
}

// rateFormat checks a rate such as 30-M.
func rateFormat(set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, period, ok := strings.Cut(v, "-")
		if k, err := strconv.Atoi(n); !ok || err != nil || k < 1 || !strings.Contains("SMHD", strings.ToUpper(period)) || len(period) != 1 {
			return errors.New("want N-S, N-M, N-H or N-D, e.g. 30-M")
		}
		set(c, strings.ToUpper(v))
		return nil
	}
}

// ForMode returns the settings a mode reads.
func ForMode(m Mode) []Setting {
	var out []Setting
	for _, s := range Settings() {
		for _, sm := range s.Modes {
			if sm == m {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Load reads every setting from lookupEnv (os.LookupEnv in production) and
// the file named by DSAR_CONFIG_FILE, applies defaults, and validates each
// value. All problems are reported together.
func Load(lookupEnv func(string) (string, bool)) (Config, error) {
	file := map[string]string{}
	if path, ok := lookupEnv("DSAR_CONFIG_FILE"); ok && path != "" {
		var err error
		if file, err = readFile(path); err != nil {
			return Config{}, err
		}
	}
	var c Config
	var errs []error
	known := map[string]bool{}
	for _, s := range Settings() {
		key := strings.ToLower(strings.TrimPrefix(s.Env, "DSAR_"))
		known[key] = true
		v, ok := lookupEnv(s.Env)
		if !ok || v == "" {
			v, ok = file[key]
		}
		if !ok || v == "" {
			if v = s.Default; v == "" {
				continue
			}
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Env, err))
		}
	}
	for k := range file {
		if !known[k] {
			errs = append(errs, fmt.Errorf("DSAR_CONFIG_FILE: unknown setting %q", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// FourEyes is the policy of DSAR_APPROVAL_FOUR_EYES when running as m: the
// setting, or, where it is unset, deletion, but none in dev (four eyes need
// two people, and dev's one key files and approves).
func (c Config) FourEyes(m Mode) (dsr.ApprovalPolicy, error) {
	rule := c.ApprovalFourEyes
	if rule == "" {
		if rule = "deletion"; m == ModeDev {
			rule = "none"
		}
	}
	p, err := dsr.ParseApprovalPolicy(rule)
	if err != nil {
		return p, fmt.Errorf("DSAR_APPROVAL_FOUR_EYES: %w", err)
	}
	return p, nil
}

// Validate checks what a mode needs: serve and worker run on a real Redis
// (and MongoDB, or the embedded store) and need the blind-index key; the scheduler needs only
// Redis; serve needs API keys.
func (c Config) Validate(m Mode) error {
	var errs []error
	errs = append(errs, c.validateRedis()...)
	if m != ModeDev && c.RedisTopology() == RedisInProcess {
		errs = append(errs, fmt.Errorf("DSAR_REDIS_ADDR: required by %s (or DSAR_REDIS_SENTINELS or DSAR_REDIS_CLUSTER_ADDRS; only dev has an in-process Redis)", m))
	}
	if on := []bool{c.OpenDSRDomain != "", c.OpenDSRCertFile != "", c.OpenDSRKeyFile != "", len(c.OpenDSRControllers) > 0}; slices.Contains(on, true) && slices.Contains(on, false) {
		errs = append(errs, errors.New("DSAR_OPENDSR_DOMAIN, DSAR_OPENDSR_CERT_FILE, DSAR_OPENDSR_KEY_FILE and DSAR_OPENDSR_CONTROLLERS: set all four (the processor on), or none"))
	}
	if (c.DRPBusinessID == "") != (c.DRPAgentsFile == "") {
		errs = append(errs, errors.New("DSAR_DRP_BUSINESS_ID and DSAR_DRP_AGENTS_FILE: set both (the protocol on), or neither"))
	}
	if len(c.BlindIndexPreviousKeys) > 0 {
		if c.SuppressionKey == nil || c.MaskKey == nil {
			errs = append(errs, errors.New("DSAR_BLIND_INDEX_PREVIOUS_KEYS: set DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY too, to what `dsar keys pin` prints with these settings: "+
				"they derive from the oldest key, and must not change when it leaves"))
		}
		for i, k := range c.BlindIndexPreviousKeys {
			if bytes.Equal(k, c.BlindIndexKey) {
				errs = append(errs, fmt.Errorf("DSAR_BLIND_INDEX_PREVIOUS_KEYS: key %d is DSAR_BLIND_INDEX_KEY itself", i+1))
			}
		}
	}
	if m == ModeServe || m == ModeWorker {
		if c.BlindIndexKey == nil {
			errs = append(errs, fmt.Errorf("DSAR_BLIND_INDEX_KEY: required by %s; make one with: openssl rand -hex 32", m))
		}
		if c.MasterKeys == nil {
			errs = append(errs, fmt.Errorf("DSAR_MASTER_KEYS: required by %s (personal data is sealed at rest under it); make one with: dsar keys new", m))
		}
	}
	if (c.ExportS3.Endpoint == "") != (c.ExportS3.Bucket == "") {
		errs = append(errs, errors.New("DSAR_EXPORT_S3_ENDPOINT and DSAR_EXPORT_S3_BUCKET: set both to keep exports in a bucket, or neither"))
	}
	if (c.ExportS3.AccessKeyID == "") != (c.ExportS3.SecretAccessKey == "") {
		errs = append(errs, errors.New("DSAR_EXPORT_S3_ACCESS_KEY_ID and DSAR_EXPORT_S3_SECRET_ACCESS_KEY: set both, or neither"))
	}
	if m == ModeWorker && c.ConnectorsFile == "" {
		errs = append(errs, errors.New("DSAR_CONNECTORS_FILE: required by worker: without connectors no request could be carried out"))
	}
	if c.ConnectorsFile != "" && (m == ModeDev || m == ModeWorker || m == ModeServe) {
		if _, err := os.Stat(c.ConnectorsFile); err != nil {
			errs = append(errs, fmt.Errorf("DSAR_CONNECTORS_FILE: cannot read it: %w", err))
		}
	}
	if m == ModeWorker {
		if c.SMTPHost == "" {
			errs = append(errs, errors.New("DSAR_SMTP_HOST: required by worker, which emails people their codes and notices"))
		}
		if c.PublicURL == "" {
			errs = append(errs, errors.New("DSAR_PUBLIC_URL: required by worker, for the links in emails"))
		}
	}
	if len(c.HookPreviousSecret) > 0 && (len(c.HookSecret) == 0 || bytes.Equal(c.HookPreviousSecret, c.HookSecret)) {
		errs = append(errs, errors.New("DSAR_HOOK_PREVIOUS_SECRET: only beside a different DSAR_HOOK_SECRET, the new one"))
	}
	if len(c.WebhookPreviousSecret) > 0 && (len(c.WebhookSecret) == 0 || bytes.Equal(c.WebhookPreviousSecret, c.WebhookSecret)) {
		errs = append(errs, errors.New("DSAR_ESCALATION_WEBHOOK_PREVIOUS_SECRET: only beside a different DSAR_ESCALATION_WEBHOOK_SECRET, the new one"))
	}
	if c.EscalationWebhook != "" && len(c.WebhookSecret) == 0 {
		errs = append(errs, errors.New("DSAR_ESCALATION_WEBHOOK_SECRET: required with DSAR_ESCALATION_WEBHOOK_URL, to sign it"))
	}
	if (c.HookPreURL != "" || c.HookPostURL != "") && len(c.HookSecret) == 0 && (m == ModeDev || m == ModeWorker) {
		errs = append(errs, errors.New("DSAR_HOOK_SECRET: required with DSAR_HOOK_PRE_URL or DSAR_HOOK_POST_URL, to sign their calls"))
	}
	if m == ModeServe && len(c.APIKeys) == 0 {
		errs = append(errs, errors.New("DSAR_API_KEYS: required by serve, e.g. ops:admin:<secret>"))
	}
	if m == ModeDev || m == ModeServe {
		errs = append(errs, c.validatePages(m)...)
	}
	errs = append(errs, c.validateTransport(m)...)
	if c.JobLease <= c.JobTimeout {
		errs = append(errs, fmt.Errorf("DSAR_JOB_LEASE: %s must exceed DSAR_JOB_TIMEOUT %s, or a job still running could be handed to a second worker", c.JobLease, c.JobTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// validatePages checks the brand and the console's sign-in.
func (c Config) validatePages(m Mode) []error {
	var errs []error
	if err := (webkit.Brand{Name: c.BrandName, LogoURL: c.BrandLogoURL, PolicyURL: c.BrandPolicyURL, Color: c.BrandColor}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ConsoleSessionMax < c.ConsoleIdleTimeout {
		errs = append(errs, fmt.Errorf("DSAR_CONSOLE_SESSION_MAX: %s is shorter than DSAR_CONSOLE_IDLE_TIMEOUT %s", c.ConsoleSessionMax, c.ConsoleIdleTimeout))
	}
	if c.OIDCIssuer == "" {
		return errs
	}
	if c.OIDCClientID == "" || c.OIDCClientSecret == "" {
		errs = append(errs, errors.New("DSAR_OIDC_CLIENT_ID and DSAR_OIDC_CLIENT_SECRET: required with DSAR_OIDC_ISSUER"))
	}
	if len(c.OIDCRoles) == 0 {
		errs = append(errs, errors.New("DSAR_OIDC_ROLES: required with DSAR_OIDC_ISSUER: without it nobody could sign in, e.g. agent=privacy-team"))
	}
	if m == ModeServe && c.PublicURL == "" {
		errs = append(errs, errors.New("DSAR_PUBLIC_URL: required by serve with DSAR_OIDC_ISSUER, for the sign-in's callback"))
	}
	return errs
}

// parseOIDCRoles reads role=value entries separated by commas.
func parseOIDCRoles(v string) (map[string]apikey.Role, error) {
	out := map[string]apikey.Role{}
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		role, value, ok := strings.Cut(entry, "=")
		r := apikey.Role(strings.TrimSpace(role))
		value = strings.TrimSpace(value)
		switch {
		case !ok || value == "":
			return nil, fmt.Errorf("entry %d: want role=claim value, e.g. agent=privacy-team", i+1)
		case r != apikey.RoleAdmin && r != apikey.RoleAgent && r != apikey.RoleAuditor:
			return nil, fmt.Errorf("entry %d: role %q: want admin, agent or auditor (a pipeline has no console)", i+1, r)
		}
		if _, dup := out[value]; !dup { // the first role listed wins
			out[value] = r
		}
	}
	return out, nil
}

// LogValue lists the settings for the start-up log, secrets masked.
func (c Config) LogValue() slog.Value {
	keys := make([]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		keys[i] = k.Name + ":" + string(k.Role)
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("health_addr", c.HealthAddr),
		slog.Bool("tls", c.ServesTLS()),
		slog.Bool("behind_tls_proxy", c.BehindTLSProxy),
		slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		slog.String("mongo_uri", mask(c.MongoURI)),
		slog.String("mongo_db", c.MongoDB),
		slog.String("redis_addr", c.RedisAddr),
		slog.String("redis_sentinels", strings.Join(c.RedisSentinels, ",")),
		slog.String("redis_master_name", c.RedisMasterName),
		slog.String("redis_cluster_addrs", strings.Join(c.RedisClusterAddrs, ",")),
		slog.Bool("redis_tls", c.RedisTLS),
		slog.String("data_dir", c.DataDir),
		slog.String("connectors_file", c.ConnectorsFile),
		slog.String("api_keys", strings.Join(keys, ",")),
		slog.String("master_keys", masterKeyIDs(c.MasterKeys)),
		slog.String("export_s3", strings.TrimSuffix(c.ExportS3.Endpoint+"/"+c.ExportS3.Bucket, "/")),
		slog.String("queue", c.Queue),
		slog.Int("worker_concurrency", c.WorkerConcurrency),
		slog.Int("job_max_retry", c.JobMaxRetry),
		slog.Int("resolve_max_rounds", c.ResolveMaxRounds),
		slog.String("public_url", c.PublicURL),
		slog.String("smtp_host", c.SMTPHost),
		slog.Duration("job_lease", c.JobLease),
		slog.Duration("sweep_every", c.SweepEvery),
		slog.Duration("reapply_every", c.ReapplyEvery),
		slog.String("oidc_issuer", c.OIDCIssuer),
		slog.String("oidc_client_secret", mask(c.OIDCClientSecret)),
	)
}

func mask(v string) string {
	if v == "" {
		return ""
	}
	return "(set)"
}

// ParseAPIKeys reads name:role:secret entries separated by commas.
func ParseAPIKeys(v string) ([]apikey.Key, error) {
	var keys []apikey.Key
	names := map[string]bool{}
	secrets := map[[32]byte]string{}
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok1 := strings.Cut(entry, ":")
		role, secret, ok2 := strings.Cut(rest, ":")
		switch {
		case !ok1 || !ok2 || name == "":
			return nil, fmt.Errorf("entry %d: want name:role:secret", i+1)
		case !apikey.Role(role).Valid():
			return nil, fmt.Errorf("entry %d (%s): role must be admin, agent, auditor or pipeline", i+1, name)
		case len(secret) < 16:
			return nil, fmt.Errorf("entry %d (%s): secret must have at least 16 characters", i+1, name)
		case names[name]:
			return nil, fmt.Errorf("entry %d: duplicate key name %q", i+1, name)
		}
		hash := sha256.Sum256([]byte(secret))
		if other, dup := secrets[hash]; dup {
			return nil, fmt.Errorf("entry %d (%s): same secret as %s; each key needs its own", i+1, name, other)
		}
		names[name], secrets[hash] = true, name
		keys = append(keys, apikey.Key{Name: name, Role: apikey.Role(role), Hash: hash})
	}
	return keys, nil
}

// decodeKey32 reads a key of exactly 32 bytes, as hex or base64.
func decodeKey32(v string) ([]byte, error) {
	k, err := decodeKey(v)
	if err == nil && len(k) != 32 {
		err = fmt.Errorf("want exactly 32 bytes, not %d: the value `dsar keys pin` prints", len(k))
	}
	return k, err
}

func decodeKey(v string) ([]byte, error) {
	if k, err := hex.DecodeString(v); err == nil && len(k) >= 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(v); err == nil && len(k) >= 32 {
		return k, nil
	}
	return nil, errors.New("want at least 32 bytes as hex (64+ characters) or base64; make one with: openssl rand -hex 32")
}

// hostPort checks a host:port address; eg is an example for the error.
func hostPort(eg string, set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return errors.New("want host:port, e.g. " + eg)
		}
		set(c, v)
		return nil
	}
}

// hostPorts checks a comma-separated list of host:port, at least one, none
// twice.
func hostPorts(eg string, set func(*Config, []string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, a := range strings.Split(v, ",") {
			a = strings.TrimSpace(a)
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("want comma-separated host:port, e.g. %s; %q is not one", eg, a)
			}
			if slices.Contains(out, a) {
				return fmt.Errorf("%s is listed twice", a)
			}
			out = append(out, a)
		}
		set(c, out)
		return nil
	}
}

// secret checks a secret of 16 characters or more, without white space at
// either end (a newline left by `echo` into a secret store would make a
// token no client sends).
func secret(set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		if len(v) < 16 {
			return errors.New("want at least 16 characters")
		}
		if strings.TrimSpace(v) != v {
			return errors.New("begins or ends with white space (a newline?): remove it")
		}
		set(c, v)
		return nil
	}
}

// baseURL checks an http(s) URL without a query that links are built on,
// and sets it without a trailing slash; eg, when not empty, ends the error
// with an example (", e.g. ...").
func baseURL(eg string, set func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return errors.New("want an http(s) URL without a query" + eg)
		}
		set(c, strings.TrimSuffix(v, "/"))
		return nil
	}
}

func intIn(lo, hi int, set func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		set(c, n)
		return nil
	}
}

func duration(min time.Duration, set func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return fmt.Errorf("want a duration of at least %s, e.g. 30s or 5m", min)
		}
		set(c, d)
		return nil
	}
}

// durationOrOff is duration, or 0 for off.
func durationOrOff(min time.Duration, set func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "0" {
			set(c, 0)
			return nil
		}
		if err := duration(min, set)(c, v); err != nil {
			return fmt.Errorf("want 0 (off) or a duration of at least %s, e.g. 1h", min)
		}
		return nil
	}
}

func readFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: DSAR_CONFIG_FILE: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("config: DSAR_CONFIG_FILE %s: not a YAML mapping: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := raw[k]
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config: DSAR_CONFIG_FILE %s line %d: %s must be a single value", path, n.Line, k)
		}
		out[k] = n.Value
	}
	return out, nil
}

// masterKeyIDs names the master keys by id, the active first; "" for none.
func masterKeyIDs(kr *envelope.Keyring) string {
	if kr == nil {
		return ""
	}
	return strings.Join(kr.IDs(), ",")
}
