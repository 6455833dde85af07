package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/metrics"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/netguard"
	"github.com/dsar-project/dsar/internal/tlsutil"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/s3exports"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
	"github.com/dsar-project/dsar/workers"
	"github.com/dsar-project/dsar/workers/notify"
)

// app holds what the running parts share, and how to stop them.
type app struct {
	mode    config.Mode
	cfg     config.Config
	log     *slog.Logger
	stdout  io.Writer
	getenv  func(string) (string, bool)
	closers []func()

	// client is the MongoDB store's connection (nil on the embedded
	// store); shop is the MongoDB server of the demo shop (--demo), which
	// mongodb connectors without a uri use, else client.
	client   *mongo.Client
	shop     *mongo.Client
	store    store.Store
	index    *dsr.BlindIndex
	links    *dsr.LinkSigner
	keys     indexKeys
	drp      dsarapp.DRPOptions
	calendar dsr.Calendar
	listen   net.Listener
	// redis connects the queue and dsar's own Redis keys (rate limits,
	// console sessions, connector limits) to the one Redis topology.
	redis config.RedisConn
	queue *workers.Queue
	// connectors are the connectors this process loaded (workers and dev
	// modes), nil otherwise.
	connectors *connectors.Registry
	// suppressions is the process's in-memory suppression list, kept
	// fresh from the store (every mode with a store).
	suppressions *suppression.Set
}

// start wires the parts a mode needs, in order, runs them until ctx ends,
// then stops them in reverse order within the shutdown timeout.
func start(ctx context.Context, mode config.Mode, cfg config.Config, demo bool, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	a := &app{mode: mode, cfg: cfg, log: newLogger(cfg, stderr), stdout: stdout, getenv: lookupEnv}
	defer a.close()
	a.log.Info("dsar starting", "mode", mode, "config", cfg)

	withStore := mode != config.ModeScheduler
	withAPI := mode == config.ModeDev || mode == config.ModeServe
	withWorkers := mode == config.ModeDev || mode == config.ModeWorker
	withScheduler := mode == config.ModeDev || mode == config.ModeScheduler
	traces, err := a.startTraces(ctx)
	if err != nil {
		return err
	}

	if withAPI {
		// Listen first: in dev, links in emails point at this address.
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on DSAR_HTTP_ADDR: %w", err)
		}
		a.listen = ln
		a.closers = append(a.closers, func() { _ = ln.Close() })
		if a.cfg.PublicURL == "" {
			a.cfg.PublicURL = a.scheme() + "://" + ln.Addr().String()
		}
	}
	if a.cfg.PortalURL == "" && a.cfg.PublicURL != "" {
		// The portal this service serves (handlers/portalpage).
		a.cfg.PortalURL = a.cfg.PublicURL + "/privacy"
	}
	if withStore {
		if err := a.openStore(ctx); err != nil {
			return err
		}
		if traces {
			a.traceStore()
		}
	}
	if err := a.openQueue(ctx); err != nil {
		return err
	}
	if demo {
		if err := a.seedDemo(ctx); err != nil {
			return err
		}
	}
	if withWorkers {
		if err := a.startWorkers(ctx); err != nil {
			return err
		}
	}
	if withScheduler {
		if err := a.startScheduler(); err != nil {
			return err
		}
	}
	var httpErr <-chan error
	if withAPI {
		var err error
		if httpErr, err = a.startAPI(ctx, demo); err != nil {
			return err
		}
	} else if a.cfg.HealthAddr != "" {
		var err error
		if httpErr, err = a.startHealth(ctx, withStore); err != nil {
			return err
		}
	}

	select {
	case <-ctx.Done():
		a.log.Info("dsar stopping")
		return nil
	case err := <-httpErr:
		return fmt.Errorf("http server: %w", err)
	}
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// openStore opens the store, MongoDB at DSAR_MONGO_URI or else the
// embedded SQLite store under DSAR_DATA_DIR, and loads the blind index.
func (a *app) openStore(ctx context.Context) error {
	var err error
	if a.cfg.MongoURI == "" {
		err = a.openEmbeddedStore(ctx)
	} else {
		err = a.openMongoStore(ctx)
	}
	if err != nil {
		return err
	}
	ring, err := a.masterKeys(ctx)
	if err != nil {
		return err
	}
	if err := checkMasterKeys(ctx, a.store, ring); err != nil {
		return err
	}
	var opts sealedstore.Options
	if a.cfg.ExportS3.Endpoint != "" {
		bucket, err := s3exports.Open(ctx, a.cfg.ExportS3)
		if err != nil {
			return fmt.Errorf("DSAR_EXPORT_S3_ENDPOINT: %w", err)
		}
		opts.Exports = bucket
		a.log.Info("exports kept in an S3-compatible bucket, encrypted", "endpoint", a.cfg.ExportS3.Endpoint, "bucket", a.cfg.ExportS3.Bucket)
	}
	a.store = sealedstore.New(a.store, ring, opts)
	keys, err := loadIndexKeys(a.cfg, a.cfg.DataDir, true)
	if err != nil {
		return err
	}
	if keys.index.Rotating() {
		a.log.Info("blind index key changing: hashes under the previous keys are still looked up and checked until they leave DSAR_BLIND_INDEX_PREVIOUS_KEYS")
	}
	a.keys, a.index, a.links = keys, keys.index, dsr.NewLinkSigner(keys.index.Keys()...)
	a.suppressions = suppression.NewSet(a.store, keys.index.SuppressionKey())
	if a.drp, err = drpOptions(a.cfg, keys.index); err != nil {
		return err
	}
	if a.calendar, err = dsr.NewCalendar(a.cfg.Holidays); err != nil {
		return fmt.Errorf("DSAR_HOLIDAYS: %w", err)
	}
	return nil
}

// embeddedStoreFile is the embedded store's file under DSAR_DATA_DIR.
const embeddedStoreFile = "dsar.db"

// openEmbeddedStore opens the SQLite store under DSAR_DATA_DIR. It refuses
// to start afresh beside the data of the embedded store of earlier
// versions (FerretDB), which `dsar migrate` copies first.
func (a *app) openEmbeddedStore(ctx context.Context) error {
	dir := a.cfg.DataDir
	if err := embedded.CheckWritable(dir); err != nil {
		return fmt.Errorf("embedded store (DSAR_DATA_DIR): %w", err)
	}
	path := filepath.Join(dir, embeddedStoreFile)
	if err := checkNoLegacyStore(dir, a.cfg.MongoDB, path); err != nil {
		return err
	}
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		return fmt.Errorf("embedded store: %w", err)
	}
	a.closers = append(a.closers, func() { _ = s.Close() })
	a.store = s
	a.log.Info("embedded store opened: SQLite, for evaluation, tests and deployments on one machine", "file", path)
	return nil
}

// checkNoLegacyStore fails when dir holds the FerretDB store of earlier
// versions' embedded default (database db) and the SQLite store at path is
// not there yet: starting would hide the requests kept there.
func checkNoLegacyStore(dir, db, path string) error {
	legacy := filepath.Join(dir, "ferretdb")
	if _, err := os.Stat(filepath.Join(legacy, db+".sqlite")); err != nil {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return fmt.Errorf("DSAR_DATA_DIR %s holds the store of an earlier dsar (FerretDB, in %s) and no %s yet: "+
		"copy it first with: dsar migrate --from ferretdb:%s --to sqlite:%s", dir, legacy, embeddedStoreFile, legacy, path)
}

// openMongoStore connects to MongoDB at DSAR_MONGO_URI and prepares the
// store.
func (a *app) openMongoStore(ctx context.Context) error {
	client, err := mongostore.Connect(a.cfg.MongoURI, "dsar")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	a.closers = append(a.closers, func() { _ = client.Disconnect(context.Background()) })
	store := mongostore.New(client.Database(a.cfg.MongoDB), nil)
	if err := store.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the store (DSAR_MONGO_URI): %w", err)
	}
	if err := store.Prepare(ctx); err != nil {
		return err
	}
	if store.OnFerretDB() && a.mode != config.ModeDev {
		return fmt.Errorf("the store is FerretDB, which does not apply conditional updates atomically, so "+
			"several dsar processes could both move one request: run 'dsar dev' (one process) on FerretDB, use MongoDB, "+
			"or leave DSAR_MONGO_URI unset for the embedded store, for %s", a.mode)
	}
	a.client, a.store = client, store
	return nil
}

// redisSettings names the setting of each Redis topology, for errors.
var redisSettings = map[config.RedisTopology]string{config.RedisInProcess: "in-process", config.RedisSingle: "DSAR_REDIS_ADDR",
	config.RedisSentinel: "DSAR_REDIS_SENTINELS", config.RedisCluster: "DSAR_REDIS_CLUSTER_ADDRS"}

// openQueue connects to Redis (in dev without a Redis set: starts an
// in-process one).
func (a *app) openQueue(ctx context.Context) error {
	inProcess := ""
	if a.cfg.RedisTopology() == config.RedisInProcess {
		r, err := embedded.StartRedis()
		if err != nil {
			return err
		}
		a.closers = append(a.closers, r.Close)
		inProcess = r.Addr()
		a.log.Warn("in-process Redis started: for development only; set DSAR_REDIS_ADDR for a real one. " +
			"Queued tasks live in memory; after a restart the sweep re-drives them from the store")
	}
	conn, err := a.cfg.Redis(inProcess)
	if err != nil {
		return err
	}
	a.redis = conn
	a.queue = workers.NewQueue(a.redis.Queue, workers.QueueOptions{Name: a.cfg.Queue, MaxRetry: a.cfg.JobMaxRetry, JobTimeout: a.cfg.JobTimeout})
	a.closers = append(a.closers, func() { _ = a.queue.Close() })
	if err := a.queue.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach Redis (%s): %w", redisSettings[conn.Topology], err)
	}
	return nil
}

// seedDemo resets the demo shop and, unless a connectors file is set, points
// the connectors at it. The shop lives in the store's MongoDB, or, on the
// embedded store, in an embedded FerretDB under DSAR_DATA_DIR/demo-shop
// (the mongodb connector needs a MongoDB-compatible server).
func (a *app) seedDemo(ctx context.Context) error {
	if a.store == nil {
		return errors.New("--demo needs the store")
	}
	a.shop = a.client
	if a.shop == nil {
		dir := filepath.Join(a.cfg.DataDir, "demo-shop")
		m, err := embedded.StartMongo(ctx, dir, a.log)
		if err != nil {
			return fmt.Errorf("demo shop: %w", err)
		}
		a.closers = append(a.closers, m.Stop)
		client, err := mongo.Connect(options.Client().ApplyURI(m.URI()).SetAppName("dsar-demo"))
		if err != nil {
			return fmt.Errorf("demo shop: %w", err)
		}
		a.closers = append(a.closers, func() { _ = client.Disconnect(context.Background()) })
		a.shop = client
	}
	if err := seedDemo(ctx, a.shop); err != nil {
		return err
	}
	if a.cfg.ConnectorsFile == "" {
		path, err := writeDemoConnectors(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.cfg.ConnectorsFile = path
	}
	a.log.Info("demo shop seeded", "database", demoDatabase, "connectors_file", a.cfg.ConnectorsFile)
	return nil
}

// startWorkers loads the connectors and starts the asynq server.
func (a *app) startWorkers(ctx context.Context) error {
	notifier, err := a.notifier()
	if err != nil {
		return err
	}
	openDSR, _, err := openDSROptions(a.cfg)
	if err != nil {
		return err
	}
	escalation := workers.EscalationOptions{Email: a.cfg.EscalationEmail, WebhookURL: a.cfg.EscalationWebhook, WebhookSecret: a.cfg.WebhookSecret, WebhookPrevious: a.cfg.WebhookPreviousSecret}
	reg := connectors.NewRegistry()
	if a.cfg.ConnectorsFile != "" {
		rdb := a.redis.NewClient()
		a.closers = append(a.closers, func() { _ = rdb.Close() })
		mongoClient := a.shop
		if mongoClient == nil {
			mongoClient = a.client
		}
		masker, err := mask.NewMasker(a.keys.mask)
		if err != nil {
			return err
		}
		// Manual tasks mail their owners links to the API's task pages.
		tasks := workers.NewStaffTasks(workers.StaffOptions{Notifier: notifier, Escalation: escalation, PublicURL: a.cfg.PublicURL,
			Links: dsr.NewTaskSigner(a.index.Keys()...), Log: a.log})
		types := catalog.Types(connectors.Deps{Mongo: mongoClient, Log: a.log, Limiter: workers.NewRateLimiter(rdb, "dsar:limit:"+a.cfg.Queue+":"), Mask: masker,
			Tasks: tasks, PublicURL: a.cfg.PublicURL})
		if reg, err = connectors.LoadFile(ctx, a.cfg.ConnectorsFile, types, a.getenv); err != nil {
			return err
		}
	}
	a.closers = append(a.closers, func() { _ = reg.Close() })
	a.connectors = reg
	if err := workers.CheckConnectors(reg); err != nil {
		if a.cfg.ConnectorsFile != "" {
			return fmt.Errorf("connectors file %s: %w", a.cfg.ConnectorsFile, err)
		}
		// dev without a file: the API can be tried out; no request is
		// completed, each needs attention saying no connector acts on it.
		a.log.Warn("no DSAR_CONNECTORS_FILE: every request will need attention with nothing done (no connector acts on it); " +
			"use --demo or set DSAR_CONNECTORS_FILE")
	}
	a.log.Info("connectors loaded", "connectors", strings.Join(reg.Names(), ","))
	approval, err := dsr.ParseApprovalPolicy(a.cfg.ApprovalRequired)
	if err != nil {
		return fmt.Errorf("DSAR_APPROVAL_REQUIRED: %w", err)
	}
	proc := workers.NewProcessor(
		workers.Deps{Store: a.store, Connectors: reg, Queue: a.queue, Index: a.index, Notifier: notifier, Log: a.log,
			Escalation: escalation, Suppressions: a.suppressions,
			CallbackClient: netguard.Client(netguard.Options{AllowInternal: a.cfg.AllowInternalCallbacks, Timeout: 10 * time.Second}),
			DRPAgents:      trustedAgents(a.drp), OpenDSR: openDSR.Signer, OpenDSRControllers: openDSR.Controllers, OpenDSRBase: openDSR.Base},
		workers.Options{
			MaxRetry: a.cfg.JobMaxRetry, Lease: a.cfg.JobLease, JobTimeout: a.cfg.JobTimeout, SweepGrace: a.cfg.SweepGrace, SweepEvery: a.cfg.SweepEvery,
			PollEvery: a.cfg.JobPollEvery, WaitMax: a.cfg.JobWaitMax, ReapplyEvery: a.cfg.ReapplyEvery,
			Approval: approval,
			// One system that hangs holds at most half the workers; a
			// connector's max_concurrency says otherwise.
			ConnectorConcurrency: max(1, a.cfg.WorkerConcurrency/2),
			ResolveMaxRounds:     a.cfg.ResolveMaxRounds,
			Hooks:                workers.HookOptions{PreURL: a.cfg.HookPreURL, PostURL: a.cfg.HookPostURL, Secret: a.cfg.HookSecret, Previous: a.cfg.HookPreviousSecret, HoldMax: a.cfg.HookHoldMax},
			Checks:               workers.ChecksOptions{ReminderDays: a.cfg.ReminderDays, KeepExports: a.cfg.KeepExports, KeepIdentities: a.cfg.KeepIdentities},
			Notices: workers.NoticeOptions{
				PublicURL: a.cfg.PublicURL, PortalURL: a.cfg.PortalURL, CodeTTL: a.cfg.VerifyCodeTTL, LinkTTL: a.cfg.ExportLinkTTL, Links: a.links,
				MaxRounds: dsr.MaxVerificationRounds,
			},
		})
	srv := workers.NewServer(a.redis.Queue, workers.ServerOptions{
		Queue: a.cfg.Queue, Concurrency: a.cfg.WorkerConcurrency, RetryBase: a.cfg.JobRetryBase,
		ShutdownTimeout: a.cfg.ShutdownTimeout, Log: a.log,
	})
	if err := srv.Start(proc.Mux()); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	a.closers = append(a.closers, srv.Shutdown)
	a.log.Info("workers started", "queue", a.cfg.Queue, "concurrency", a.cfg.WorkerConcurrency)
	return nil
}

// notifier returns how people are emailed: through DSAR_SMTP_HOST, or in
// dev without it, as .eml files in DSAR_DATA_DIR/outbox.
func (a *app) notifier() (workers.Notifier, error) {
	if a.cfg.SMTPHost == "" {
		dir := filepath.Join(a.cfg.DataDir, "outbox")
		a.log.Warn("no DSAR_SMTP_HOST: emails to people are written to the outbox folder instead (development only)", "dir", dir)
		return notify.NewOutbox(dir, a.cfg.SMTPFrom, a.log)
	}
	tlsConfig, err := a.cfg.SMTPTLSConfig() // nil: the system's roots
	if err != nil {
		return nil, err
	}
	return notify.NewSMTP(notify.SMTPConfig{
		Host: a.cfg.SMTPHost, Port: a.cfg.SMTPPort, Username: a.cfg.SMTPUsername, Password: a.cfg.SMTPPassword,
		From: a.cfg.SMTPFrom, TLS: notify.TLSMode(a.cfg.SMTPTLS), TLSConfig: tlsConfig,
	})
}

func (a *app) startScheduler() error {
	schedules := workers.Schedules(a.cfg.SweepEvery, a.cfg.CronReminders, a.cfg.CronEscalation, a.cfg.CronRetention)
	if a.cfg.ReapplyEvery > 0 {
		schedules = append(schedules, workers.ReapplySchedule(a.cfg.ReapplyEvery))
	}
	sched, err := workers.NewScheduler(a.redis.Queue, a.cfg.Queue, schedules, a.log)
	if err != nil {
		return err
	}
	if err := sched.Start(); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	a.closers = append(a.closers, sched.Shutdown)
	a.log.Info("scheduler started", "sweep_every", a.cfg.SweepEvery)
	return nil
}

// startHealth serves /healthz, /readyz and /metrics on DSAR_HEALTH_ADDR
// (a worker or scheduler: the API serves its own); the returned channel
// reports a server that stopped by itself. Its metrics are the process's
// (Go runtime, memory, CPU): the store's and the queues' are the API's, so
// that Prometheus does not count them once per process.
func (a *app) startHealth(ctx context.Context, withStore bool) (<-chan error, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", a.cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on DSAR_HEALTH_ADDR: %w", err)
	}
	ready := []handlers.Check{{Name: "queue", Ping: a.queue.Ping}}
	if withStore {
		ready = append([]handlers.Check{{Name: "store", Ping: a.store.Ping}}, ready...)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := handlers.NewHealth(handlers.HealthDeps{Ready: ready, Metrics: reg, MetricsToken: a.cfg.MetricsToken, Log: a.log})
	a.log.Info("health endpoints listening", "addr", ln.Addr().String())
	return a.serveHTTP(ln, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		ErrorLog: log.New(serverLog{a.log}, "", 0)}), nil
}

// serveHTTP serves hs on ln until the process stops (then shut down
// within DSAR_SHUTDOWN_TIMEOUT); the returned channel reports a server
// that stopped by itself.
func (a *app) serveHTTP(ln net.Listener, hs *http.Server) <-chan error {
	stopped := make(chan error, 1)
	go func() {
		serve := hs.Serve
		if hs.TLSConfig != nil {
			serve = func(ln net.Listener) error { return hs.ServeTLS(ln, "", "") } // the certificate comes from TLSConfig
		}
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			stopped <- err
		}
	}()
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		_ = hs.Shutdown(ctx)
	})
	return stopped
}

// startAPI serves the HTTP API; the returned channel reports a server that
// stopped by itself.
func (a *app) startAPI(ctx context.Context, demo bool) (<-chan error, error) {
	callbacks, err := a.callbackConnectors(ctx)
	if err != nil {
		return nil, err
	}
	keys := append([]apikey.Key(nil), a.cfg.APIKeys...)
	devKey := ""
	if a.mode == config.ModeDev {
		if devKey = a.cfg.DevAPIKey; devKey == "" {
			devKey = "dev_" + randomHex(16)
		}
		dk, err := config.ParseAPIKeys("dev:admin:" + devKey)
		if err != nil {
			return nil, err
		}
		keys = append(keys, dk...)
	}
	rdb := a.redis.NewClient()
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	limits, err := httpkit.NewLimits(rdb, "dsar:rl:"+a.cfg.Queue, a.cfg.RateLimitIP, a.cfg.RateLimitID, a.keys.current, a.log)
	if err != nil {
		return nil, err
	}
	fourEyes, err := a.cfg.FourEyes(a.mode)
	if err != nil {
		return nil, err
	}
	// Intake decides whether a request waits for approval when it files it
	// (the workers check again, as a fallback).
	approval, err := dsr.ParseApprovalPolicy(a.cfg.ApprovalRequired)
	if err != nil {
		return nil, fmt.Errorf("DSAR_APPROVAL_REQUIRED: %w", err)
	}
	var correctFields func() []string
	if a.connectors != nil {
		// The API and the workers share the connectors (dev): a correction
		// of a field none of them owns is refused at intake.
		correctFields = a.connectors.CorrectFields
	}
	kit := webkit.New(webkit.Options{Secrets: a.index.Keys(), Log: a.log,
		Brand: webkit.Brand{Name: a.cfg.BrandName, LogoURL: a.cfg.BrandLogoURL, PolicyURL: a.cfg.BrandPolicyURL, Color: a.cfg.BrandColor}})
	keyring := apikey.NewKeyring(keys...)
	console, err := a.consoleAuth(ctx, kit, keyring)
	if err != nil {
		return nil, err
	}
	insp := asynq.NewInspector(a.redis.Queue)
	a.closers = append(a.closers, func() { _ = insp.Close() })
	openDSR, openDSRCert, err := openDSROptions(a.cfg)
	if err != nil {
		return nil, err
	}
	if err := untrustedChain(openDSRCert, a.cfg.OpenDSRDomain, time.Now()); err != nil {
		a.log.Warn("the OpenDSR certificate does not chain to an authority this machine trusts: controllers that check it against the usual authorities will refuse this processor's answers (a controller given your authority, as dsar's ca_file, takes them)", "error", err)
	}
	// Filed requests are dispatched after their 202; once the server has
	// stopped (closers run last first), what is still dispatching is
	// waited for before the queue closes.
	background := dsarapp.NewBackground(dsarapp.BackgroundLimit)
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		if err := background.Wait(ctx); err != nil {
			a.log.Warn("stopped before every filed request was queued; the sweep queues the rest", "error", err)
		}
	})
	h := handlers.New(handlers.Deps{
		Background: background,
		Pages:      kit, ConsoleAuth: console, Queues: insp,
		CorrectFields: correctFields,
		Store:         a.store, Queue: a.queue, Index: a.index, Keys: keyring, Log: a.log,
		Links: a.links, TaskLinks: dsr.NewTaskSigner(a.index.Keys()...), Limits: limits, TrustedProxies: a.cfg.TrustedProxies, DuplicateWindow: a.cfg.DuplicateWindow, Calendar: a.calendar,
		FourEyes: fourEyes, Approval: approval,
		Portal: dsarapp.PortalOptions{
			MaxTries: a.cfg.VerifyMaxTries, MaxPending: a.cfg.PortalMaxPending, LinkTTL: a.cfg.ExportLinkTTL, GPCLastUpdate: a.cfg.GPCLastUpdate,
		},
		DRP: a.drp, OpenDSR: openDSR, OpenDSRPrefix: a.cfg.OpenDSRPrefix, OpenDSRCertPEM: openDSRCert,
		Ready: []handlers.Check{
			{Name: "store", Ping: a.store.Ping},
			{Name: "queue", Ping: a.queue.Ping},
		},
		Metrics:      a.metrics(),
		MetricsToken: a.cfg.MetricsToken,
		HookSecret:   a.cfg.HookSecret, HookPreviousSecret: a.cfg.HookPreviousSecret,
		Callbacks:    callbacks,
		Suppressions: a.suppressions,
		HSTSMaxAge:   a.cfg.HSTSMaxAge, BehindTLSProxy: a.cfg.BehindTLSProxy, CORSOrigins: a.cfg.CORSOrigins,
	})
	a.warmSuppressions(ctx)
	ln := a.listen
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: log.New(serverLog{a.log}, "", 0)}
	if a.cfg.ServesTLS() {
		certs, err := a.watchCertificate(ctx)
		if err != nil {
			return nil, err
		}
		hs.TLSConfig = certs.ServerConfig()
	}
	stopped := a.serveHTTP(ln, hs)
	base := a.scheme() + "://" + ln.Addr().String()
	a.log.Info("API listening", "addr", ln.Addr().String())
	fmt.Fprintf(a.stdout, "dsar %s: API on %s (OpenAPI at %s/openapi.yaml)\n", a.mode, base, base)
	if a.mode == config.ModeDev {
		policy, _ := dsr.ParseApprovalPolicy(a.cfg.ApprovalRequired) // checked at start
		printDev(a.stdout, base, devKey, a.cfg.DevAPIKey == "", demo, policy.Requires(dsr.TypeDeletion, dsr.RegulationGDPR))
	}
	return stopped, nil
}

// scheme is how the API is reached on its listener: https when it
// terminates TLS itself.
func (a *app) scheme() string {
	if a.cfg.ServesTLS() {
		return "https"
	}
	return "http"
}

// watchCertificate loads the API's certificate (DSAR_TLS_CERT_FILE and
// DSAR_TLS_KEY_FILE) and keeps it fresh until the process stops: reloaded
// on SIGHUP, and when the files change (checked every minute).
func (a *app) watchCertificate(ctx context.Context) (*tlsutil.CertReloader, error) {
	certs, err := tlsutil.NewCertReloader(a.cfg.TLSCertFile, a.cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE: %w", err)
	}
	a.log.Info("TLS certificate loaded", "cert_file", a.cfg.TLSCertFile, "not_after", certs.NotAfter())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		certs.Watch(ctx, time.Minute, hup, a.log)
	}()
	a.closers = append(a.closers, func() { signal.Stop(hup); cancel(); <-done })
	return certs, nil
}

// consoleAuth returns the console's sign-in: API keys, and OpenID Connect
// when DSAR_OIDC_ISSUER is set (discovered now: an issuer that does not
// answer stops the start).
func (a *app) consoleAuth(ctx context.Context, kit *webkit.Kit, keys *apikey.Keyring) (*consoleauth.Auth, error) {
	var oidc *consoleauth.OIDCConfig
	if a.cfg.OIDCIssuer != "" {
		oidc = &consoleauth.OIDCConfig{Issuer: a.cfg.OIDCIssuer, ClientID: a.cfg.OIDCClientID, ClientSecret: a.cfg.OIDCClientSecret,
			RedirectURL: a.cfg.PublicURL + "/console/oidc/callback", RoleClaim: a.cfg.OIDCRoleClaim, Roles: a.cfg.OIDCRoles}
	}
	rdb := a.redis.NewClient()
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	auth, err := consoleauth.New(ctx, consoleauth.Options{Kit: kit, Keys: keys, Redis: rdb, Prefix: "dsar:console:" + a.cfg.Queue + ":",
		IdleTimeout: a.cfg.ConsoleIdleTimeout, MaxAge: a.cfg.ConsoleSessionMax, OIDC: oidc, Log: a.log})
	if err != nil {
		return nil, fmt.Errorf("console sign-in: %w", err)
	}
	return auth, nil
}

// callbackConnectors returns the connectors whose systems call back
// (POST /v1/callbacks/{job}), for the API to check their callbacks: the
// workers' own in dev, else, in serve, those of the connectors file built
// alone (connectors.LoadFileOnly: no other connector is built, so serve
// needs only their secrets); nil without a file, and then every callback
// is refused.
func (a *app) callbackConnectors(ctx context.Context) (*connectors.Registry, error) {
	if a.connectors != nil {
		return a.connectors, nil
	}
	if a.cfg.ConnectorsFile == "" {
		return nil, nil
	}
	reg, err := connectors.LoadFileOnly(ctx, a.cfg.ConnectorsFile, catalog.CallbackTypes(connectors.Deps{Log: a.log, PublicURL: a.cfg.PublicURL}), a.getenv)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = reg.Close() })
	a.log.Info("connectors taking callbacks loaded", "connectors", strings.Join(reg.Names(), ","))
	return reg, nil
}

// metrics is the registry GET /metrics serves: the requests and jobs in the
// store (read when scraped, see metrics.StatsCollector), the job queues in
// Redis (asynq's collector), the Go runtime and the process.
func (a *app) metrics() *prometheus.Registry {
	insp := asynq.NewInspector(a.redis.Queue)
	a.closers = append(a.closers, func() { _ = insp.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewStatsCollector(a.store, metrics.StatsOptions{Log: a.log}),
		asynqmetrics.NewQueueMetricsCollector(insp),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if set := a.suppressions; set != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dsar_suppressed_identities",
				Help: "Identities (hashes) the process's suppression set holds under at least one scope."},
				func() float64 { return float64(set.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dsar_suppression_set_age_seconds",
				Help: "Seconds since the suppression set's last successful refresh started (-1 before the first)."},
				func() float64 {
					if t := set.Refreshed(); !t.IsZero() {
						return time.Since(t).Seconds()
					}
					return -1
				}),
		)
	}
	return reg
}

// warmSuppressions loads the suppression set in the background, so that
// the first check does not wait for the whole list; a failure is logged
// and the first check tries again.
func (a *app) warmSuppressions(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		if err := a.suppressions.Refresh(ctx); err != nil {
			if ctx.Err() == nil {
				a.log.Error("suppression list not loaded; the first check loads it", "error", err)
			}
			return
		}
		a.log.Info("suppression list loaded", "identities", a.suppressions.Len(), "took", time.Since(start).Round(time.Millisecond))
	}()
	a.closers = append(a.closers, func() { <-done })
}

// serverLog takes the HTTP server's own log lines (a failed TLS handshake,
// a panic outside the handlers) into the service's log, as warnings, with
// every network address taken out: net/http names the client's address,
// which can identify a person and which no other log line carries.
type serverLog struct{ log *slog.Logger }

// netAddr matches an IPv4 or bracketed IPv6 address, with or without its
// port, as net/http and net.OpError print them.
var netAddr = regexp.MustCompile(`\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(%[0-9A-Za-z._-]+)?\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`)

func (l serverLog) Write(p []byte) (int, error) {
	msg := netAddr.ReplaceAllString(strings.TrimSpace(string(p)), "[address]")
	l.log.Warn("http server", "error", msg)
	return len(p), nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// masterKeys returns the master keys that seal personal data at rest:
// DSAR_MASTER_KEYS, or in dev the key file DSAR_DATA_DIR/master.keys,
// created with a new key on the first start.
func (a *app) masterKeys(ctx context.Context) (*envelope.Keyring, error) {
	if a.cfg.MasterKeys != nil {
		return a.cfg.MasterKeys, nil
	}
	if a.mode != config.ModeDev {
		return nil, fmt.Errorf("DSAR_MASTER_KEYS: required by %s", a.mode)
	}
	path := filepath.Join(a.cfg.DataDir, envelope.KeyFileName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		// A new key would open none of what the store already holds.
		id, err := firstWrappedKeyID(ctx, a.store)
		if err != nil {
			return nil, err
		}
		if id != "" {
			return nil, fmt.Errorf("master key file %s is missing, but the store holds personal data sealed under master key %q: "+
				"restore the file (or set DSAR_MASTER_KEYS to the key); a new key would read none of it", path, id)
		}
	}
	ring, created, err := envelope.LoadOrCreateKeyFile(a.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("master key file (DSAR_DATA_DIR): %w", err)
	}
	if created {
		a.log.Warn("master key created in DSAR_DATA_DIR/master.keys: personal data in this data dir is sealed under it; "+
			"a copy of the data dir holds the key too. Production sets DSAR_MASTER_KEYS", "key_id", ring.Active())
	}
	return ring, nil
}

// checkMasterKeys refuses master keys that do not hold the key of the
// store's first sealed request (in id order, so the oldest): keys replaced
// rather than rotated, or another deployment's, would start a service that
// fails on every request filed before, and its sweep with them.
func checkMasterKeys(ctx context.Context, st store.Store, ring *envelope.Keyring) error {
	id, err := firstWrappedKeyID(ctx, st)
	if err != nil || id == "" || ring.Has(id) {
		return err
	}
	return fmt.Errorf("master keys: the store holds personal data sealed under master key %q, which the keys given (%s) do not hold: "+
		"give every key not yet rotated out (DSAR_MASTER_KEYS id:key,..., the new one first)", id, strings.Join(ring.IDs(), ","))
}

// firstWrappedKeyID returns the id of the master key that wraps the data
// key of the store's first sealed request, "" when it holds none (or its
// driver cannot list them).
func firstWrappedKeyID(ctx context.Context, st store.Store) (string, error) {
	ks, ok := st.(interface {
		EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error
	})
	if !ok {
		return "", nil
	}
	errFound := errors.New("found")
	var keyID string
	err := ks.EachWrappedKeys(ctx, "", func(id, dataKey, exportKey string) error {
		for _, k := range []string{dataKey, exportKey} {
			if k == "" {
				continue
			}
			w, err := envelope.ParseWrapped(k)
			if err != nil {
				return fmt.Errorf("request %s: %w", id, err)
			}
			keyID = w.KeyID
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", fmt.Errorf("master keys: reading the store's wrapped keys: %w", err)
	}
	return keyID, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
