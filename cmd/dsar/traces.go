package main

import (
	"context"
	"fmt"

	"github.com/dsar-project/dsar/internal/telemetry"
	"github.com/dsar-project/dsar/store/tracedstore"
)

// startTraces turns OpenTelemetry traces on when the environment asks for
// them (see telemetry.Setup) and reports whether it did; the spans left
// are flushed when the process stops, after everything else.
func (a *app) startTraces(ctx context.Context) (bool, error) {
	shutdown, on, err := telemetry.Setup(ctx, string(a.mode), a.getenv)
	if err != nil {
		return false, fmt.Errorf("traces: %w", err)
	}
	if !on {
		return false, nil
	}
	a.log.Info("traces exported over OTLP") // the endpoint may hold credentials: not logged
	a.closers = append([]func(){func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetry.ShutdownTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			a.log.Warn("traces not all flushed", "error", err)
		}
	}}, a.closers...)
	return true, nil
}

// traceStore makes each call of the store a span.
func (a *app) traceStore() {
	system := "sqlite"
	if a.cfg.MongoURI != "" {
		system = "mongodb"
	}
	a.store = tracedstore.New(a.store, system)
}
