package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/workers"
)

// start wires the parts a mode needs, in order, runs them until ctx ends,
// then stops them in reverse order within the shutdown timeout.
func start(ctx context.Context, mode config.Mode, cfg config.Config, demo bool, stdout, stderr io.Writer) (err error) {
	log := newLogger(cfg, stderr)
	log.Info("dsar starting", "mode", mode, "config", cfg)

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	// Store.
	if cfg.MongoURI == "" {
		m, err := embedded.StartMongo(ctx, filepath.Join(cfg.DataDir, "ferretdb"), log)
		if err != nil {
			return err
		}
		closers = append(closers, m.Stop)
		cfg.MongoURI = m.URI()
		log.Info("embedded store started: FerretDB on SQLite, for development and small deployments", "dir", filepath.Join(cfg.DataDir, "ferretdb"))
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI).SetServerSelectionTimeout(10 * time.Second).SetAppName("dsar"))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	closers = append(closers, func() { _ = client.Disconnect(context.Background()) })
	store := dsr.NewStore(client.Database(cfg.MongoDB), nil)
	if err := store.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the store (DSAR_MONGO_URI): %w", err)
	}
	if err := store.Prepare(ctx); err != nil {
		return err
	}
	if store.OnFerretDB() && mode != config.ModeDev {
		return fmt.Errorf("the store is FerretDB, which does not apply conditional updates atomically: "+
			"several dsar processes could both move one request. Run 'dsar dev' (one process) on FerretDB, or use MongoDB for %s", mode)
	}

	// Queue.
	if cfg.RedisAddr == "" {
		r, err := embedded.StartRedis()
		if err != nil {
			return err
		}
		closers = append(closers, r.Close)
		cfg.RedisAddr = r.Addr()
		log.Warn("in-process Redis started: for development only; set DSAR_REDIS_ADDR for a real one. Queued tasks live in memory; the sweep re-drives them from the store after a restart")
	}
	redisOpt := asynq.RedisClientOpt{Addr: cfg.RedisAddr, Password: cfg.RedisPassword, DB: cfg.RedisDB}
	aclient := asynq.NewClient(redisOpt)
	closers = append(closers, func() { _ = aclient.Close() })
	queue := workers.NewQueue(aclient, workers.QueueOptions{Name: cfg.Queue, MaxRetry: cfg.JobMaxRetry, JobTimeout: cfg.JobTimeout})
	if err := queue.Ping(); err != nil {
		return fmt.Errorf("cannot reach Redis (DSAR_REDIS_ADDR): %w", err)
	}

	index, err := blindIndex(cfg)
	if err != nil {
		return err
	}

	if demo {
		if err := seedDemo(ctx, client); err != nil {
			return err
		}
		if cfg.ConnectorsFile == "" {
			if cfg.ConnectorsFile, err = writeDemoConnectors(cfg.DataDir); err != nil {
				return err
			}
		}
		log.Info("demo shop seeded", "database", demoDatabase, "connectors_file", cfg.ConnectorsFile)
	}

	runAPI := mode == config.ModeDev || mode == config.ModeServe
	runWorkers := mode == config.ModeDev || mode == config.ModeWorker
	runScheduler := mode == config.ModeDev || mode == config.ModeScheduler

	if runWorkers {
		reg := connectors.NewRegistry()
		if cfg.ConnectorsFile != "" {
			reg, err = connectors.LoadFile(ctx, cfg.ConnectorsFile, connectors.Types{mongodb.Type: mongodb.Factory(client)}, os.LookupEnv)
			if err != nil {
				return err
			}
		} else {
			log.Warn("no DSAR_CONNECTORS_FILE: requests complete without touching any system")
		}
		closers = append(closers, func() { _ = reg.Close() })
		log.Info("connectors loaded", "connectors", strings.Join(reg.Names(), ","))
		proc := workers.NewProcessor(store, reg, queue, index, log, workers.Options{
			Lease: cfg.JobLease, JobTimeout: cfg.JobTimeout, SweepGrace: cfg.SweepGrace,
		})
		srv := workers.NewServer(redisOpt, workers.ServerOptions{
			Queue: cfg.Queue, Concurrency: cfg.WorkerConcurrency, RetryBase: cfg.JobRetryBase,
			ShutdownTimeout: cfg.ShutdownTimeout, Log: log,
		})
		if err := srv.Start(proc.Mux()); err != nil {
			return fmt.Errorf("start workers: %w", err)
		}
		closers = append(closers, srv.Shutdown)
		log.Info("workers started", "queue", cfg.Queue, "concurrency", cfg.WorkerConcurrency)
	}

	if runScheduler {
		sched, err := workers.NewScheduler(redisOpt, cfg.Queue, cfg.SweepEvery, log)
		if err != nil {
			return err
		}
		if err := sched.Start(); err != nil {
			return fmt.Errorf("start scheduler: %w", err)
		}
		closers = append(closers, sched.Shutdown)
		log.Info("scheduler started", "sweep_every", cfg.SweepEvery)
	}

	var httpErr chan error
	if runAPI {
		keys := make([]handlers.Key, 0, len(cfg.APIKeys)+1)
		for _, k := range cfg.APIKeys {
			keys = append(keys, handlers.Key{Name: k.Name, Role: handlers.Role(k.Role), Hash: k.Hash})
		}
		devKey := ""
		if mode == config.ModeDev {
			devKey = cfg.DevAPIKey
			if devKey == "" {
				devKey = "dev_" + randomHex(16)
			}
			dk, _ := config.ParseAPIKeys("dev:admin:" + devKey)
			keys = append(keys, handlers.Key{Name: dk[0].Name, Role: handlers.RoleAdmin, Hash: dk[0].Hash})
		}
		h := handlers.New(handlers.Deps{
			Store: store, Queue: queue, Index: index, Keys: handlers.NewKeyring(keys...), Log: log,
			Ready: []handlers.Check{
				{Name: "store", Ping: store.Ping},
				{Name: "queue", Ping: func(context.Context) error { return queue.Ping() }},
			},
		})
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on DSAR_HTTP_ADDR: %w", err)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		httpErr = make(chan error, 1)
		go func() { httpErr <- hs.Serve(ln) }()
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = hs.Shutdown(sctx)
		})
		base := "http://" + ln.Addr().String()
		log.Info("API listening", "addr", ln.Addr().String())
		fmt.Fprintf(stdout, "dsar %s: API on %s (OpenAPI at %s/openapi.yaml)\n", mode, base, base)
		if mode == config.ModeDev {
			printDev(stdout, base, devKey, cfg.DevAPIKey == "", demo)
		}
	}

	select {
	case <-ctx.Done():
		log.Info("dsar stopping")
		return nil
	case err := <-httpErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	}
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// blindIndex returns the identity blind index: from DSAR_BLIND_INDEX_KEY, or
// in dev from a key file kept in DSAR_DATA_DIR (made on first start), so
// lookups keep working across restarts.
func blindIndex(cfg config.Config) (*dsr.BlindIndex, error) {
	if cfg.BlindIndexKey != nil {
		return dsr.NewBlindIndex(cfg.BlindIndexKey)
	}
	path := filepath.Join(cfg.DataDir, "blind-index.key")
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("blind index key file %s: not hex: %w", path, err)
		}
		return dsr.NewBlindIndex(key)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blind index key file: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	key := randomHex(32)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("blind index key file: %w", err)
	}
	k, _ := hex.DecodeString(key)
	return dsr.NewBlindIndex(k)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
