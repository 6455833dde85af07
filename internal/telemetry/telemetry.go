// Package telemetry sets up dsar's OpenTelemetry traces in one place and
// holds what the instrumented packages share: the tracer, the attribute
// keys they may use, the propagation of a trace across asynq tasks, and
// the HTTP server middleware.
//
// Traces are on only when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the SDK's own variables); they
// are then exported over OTLP/HTTP (protobuf). Otherwise the global tracer
// provider stays OpenTelemetry's no-op one and every span costs nothing.
//
// No span carries personal data: attributes are ids dsar makes (request,
// job), names of connectors and actions, statuses, counts and route
// templates, never an identity, a name, a token or free text from a
// request. The keys below are the only dsar-specific ones.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of dsar's spans.
const Name = "github.com/dsar-project/dsar"

// Attribute keys of dsar's spans. Their values are never personal data.
const (
	RequestID = attribute.Key("dsar.request.id")
	JobID     = attribute.Key("dsar.job.id")
	Connector = attribute.Key("dsar.connector")
	Action    = attribute.Key("dsar.action")
	Outcome   = attribute.Key("dsar.outcome")
	Records   = attribute.Key("dsar.records")
	Status    = attribute.Key("dsar.status")
	Mode      = attribute.Key("dsar.mode")
)

// Tracer is dsar's tracer on the global provider: a no-op one unless
// Setup installed the SDK's.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none turns them off.
func Enabled(getenv func(string) (string, bool)) bool {
	val := func(k string) string { v, _ := getenv(k); return strings.TrimSpace(v) }
	if strings.EqualFold(val("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(val("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return val("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || val("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider and propagator for a process
// in mode (serve, worker, scheduler, dev) when Enabled says so, and
// returns the function that flushes and stops it within its context's
// time (a no-op when traces are off), and whether traces are on. The
// provider batches spans to an OTLP/HTTP exporter configured by the SDK's
// variables (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_TRACES_SAMPLER*); the
// resource's service.name is OTEL_SERVICE_NAME or "dsar", with dsar.mode
// and OTEL_RESOURCE_ATTRIBUTES. Only the http/protobuf protocol is
// supported: OTEL_EXPORTER_OTLP_PROTOCOL (or its _TRACES_ form) naming
// another is an error. The W3C trace context is propagated.
func Setup(ctx context.Context, mode string, getenv func(string) (string, bool)) (shutdown func(context.Context) error, on bool, err error) {
	off := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return off, false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v, ok := getenv(k); ok && strings.TrimSpace(v) != "" {
			if p := strings.TrimSpace(v); p != "http/protobuf" {
				return off, false, fmt.Errorf("%s=%q: dsar exports traces over http/protobuf only", k, p)
			}
			break // the traces' own setting wins
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, false, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", "dsar"), Mode.String(mode)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return off, false, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSpanLimits(spanLimits()))
	Install(tp)
	return tp.Shutdown, true, nil
}

// Install makes tp the global tracer provider, with the W3C trace context
// as the propagator. Setup calls it; tests call it with an in-memory
// exporter's provider.
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
}

// ShutdownTimeout bounds the flush of the spans left at exit.
const ShutdownTimeout = 5 * time.Second

// Inject returns the trace context of ctx as carrier headers (W3C
// traceparent, tracestate), nil when there is none to carry (traces off).
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	h := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, h)
	if len(h) == 0 {
		return nil
	}
	return h
}

// Extract returns ctx with the remote trace context of headers (as
// Inject made them), ctx itself when they hold none.
func Extract(ctx context.Context, headers map[string]string) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(headers))
}

// End ends span, marking it failed when err is set. The error's text is
// not recorded (it may quote what a system said about a person): only
// that there was one, and its Go type.
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.String("error.type", errorType(err)))
	}
	span.End()
}

// errorType is a class of err that holds nothing of its text.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return fmt.Sprintf("%T", err)
}

// MaxAttributeLength is the longest attribute value a span keeps, unless
// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
// says otherwise: dsar's own values (ids, names, routes) are far shorter,
// and a value sent by anyone (an id in a path) cannot make a span, and the
// exporter's queue, large.
const MaxAttributeLength = 256

// spanLimits are the SDK's limits (from the environment), with attribute
// values cut at MaxAttributeLength where the environment sets none.
func spanLimits() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	if l.AttributeValueLengthLimit < 0 {
		l.AttributeValueLengthLimit = MaxAttributeLength
	}
	return l
}
