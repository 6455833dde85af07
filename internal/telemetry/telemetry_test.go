package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dsar-project/dsar/internal/telemetry"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Without an OTLP endpoint, Setup leaves OpenTelemetry's no-op provider:
// spans do not record and no trace context is carried.
func TestSetupOffWithoutEndpoint(t *testing.T) {
	for _, e := range []func(string) (string, bool){
		env(),
		env("OTEL_SERVICE_NAME", "dsar-eu", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", "OTEL_SDK_DISABLED", "true"),
		env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces", "OTEL_TRACES_EXPORTER", "none"),
	} {
		before := otel.GetTracerProvider()
		shutdown, on, err := telemetry.Setup(context.Background(), "serve", e)
		if err != nil || on {
			t.Fatalf("Setup = %v, %v; want off", on, err)
		}
		if otel.GetTracerProvider() != before {
			t.Error("Setup changed the global provider with traces off")
		}
		ctx, span := telemetry.Tracer().Start(context.Background(), "x")
		if span.IsRecording() || span.SpanContext().IsValid() {
			t.Error("a span records with traces off")
		}
		if h := telemetry.Inject(ctx); h != nil {
			t.Errorf("headers %v carried with traces off", h)
		}
		span.End()
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// With an endpoint, spans go over OTLP/HTTP protobuf to it, with the
// service's name and mode, and are flushed on shutdown.
func TestSetupExportsOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var paths, types []string
	var bodies []byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths, types, bodies = append(paths, r.URL.Path), append(types, r.Header.Get("Content-Type")), append(bodies, b...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL) // the exporter reads the SDK's variables itself
	t.Setenv("OTEL_SERVICE_NAME", "dsar-test")
	defer telemetry.Install(noop.NewTracerProvider())

	shutdown, on, err := telemetry.Setup(context.Background(), "worker", env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
	if err != nil || !on {
		t.Fatalf("Setup = %v, %v; want on", on, err)
	}
	ctx, span := telemetry.Tracer().Start(context.Background(), "probe span")
	if !span.IsRecording() {
		t.Fatal("span not recording with traces on")
	}
	if h := telemetry.Inject(ctx); !strings.HasPrefix(h["traceparent"], "00-"+span.SpanContext().TraceID().String()) {
		t.Errorf("carried %v", h)
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/v1/traces" || types[0] != "application/x-protobuf" {
		t.Fatalf("collector got %v %v", paths, types)
	}
	for _, want := range []string{"probe span", "dsar-test", "dsar.mode", "worker"} {
		if !strings.Contains(string(bodies), want) {
			t.Errorf("export holds no %q", want)
		}
	}
}

func TestSetupRefusesGRPC(t *testing.T) {
	_, on, err := telemetry.Setup(context.Background(), "serve", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"))
	if err == nil || on || !strings.Contains(err.Error(), "http/protobuf") {
		t.Fatalf("Setup = %v, %v; want an error naming http/protobuf", on, err)
	}
}

// The HTTP span is named by the route template, never the raw path.
func TestHTTPSpanNamedByRoute(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	telemetry.Install(tp)
	defer telemetry.Install(noop.NewTracerProvider())
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(telemetry.HTTP())
	r.GET("/v1/requests/:id", func(c *gin.Context) { c.Status(http.StatusNotFound) })
	for _, path := range []string{"/v1/requests/ada@example.com", "/nowhere/ada@example.com"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "GET /v1/requests/:id" || spans[1].Name != "GET" {
		t.Fatalf("spans %v", spans.Snapshots())
	}
	want := []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("http.route", "/v1/requests/:id"), attribute.Int("http.response.status_code", 404)}
	gotSet, wantSet := attribute.NewSet(spans[0].Attributes...), attribute.NewSet(want...)
	if got := spans[0].Attributes; !gotSet.Equals(&wantSet) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "example.com") {
				t.Errorf("span %q: %s holds the path", s.Name, kv.Key)
			}
		}
	}
}

// A trace context sent by the client is linked, never the parent: the
// client chooses neither the trace id nor its sampling, and its
// tracestate's text reaches no span.
func TestHTTPSpanIgnoresClientTraceContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	telemetry.Install(tp)
	defer telemetry.Install(noop.NewTracerProvider())
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(telemetry.HTTP())
	r.POST("/v1/portal/requests", func(c *gin.Context) { c.Status(http.StatusAccepted) })
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, flags := range []string{"01", "00"} {
		req := httptest.NewRequest(http.MethodPost, "/v1/portal/requests", nil)
		req.Header.Set("traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-"+flags)
		req.Header.Set("tracestate", "attacker=ada-at-example-com")
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (a client's sampled-off flag must not silence the request)", len(spans))
	}
	for _, s := range spans {
		if s.Parent.IsValid() || s.SpanContext.TraceID().String() == clientTrace {
			t.Errorf("span %q: parent %v, trace %s: the client's trace context became its parent", s.Name, s.Parent, s.SpanContext.TraceID())
		}
		if s.SpanContext.TraceState().Len() != 0 {
			t.Errorf("span %q carries the client's tracestate %q", s.Name, s.SpanContext.TraceState())
		}
		if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != clientTrace || s.Links[0].SpanContext.TraceState().Len() != 0 {
			t.Errorf("span %q: links %+v, want one to the client's trace without its tracestate", s.Name, s.Links)
		}
	}
}
