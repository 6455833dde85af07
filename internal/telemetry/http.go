package telemetry

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTP is the gin middleware that opens a server span per request, named
// by its method and route template ("POST /v1/requests",
// "GET /v1/requests/:id"), never by its raw path (which holds ids, or in
// a portal link a token). Its attributes are http.request.method,
// http.route and http.response.status_code. Every request starts a trace
// of its own: a W3C trace context in its headers is only linked, without
// its tracestate, since anyone can send one to a public route and a parent
// would let them choose the trace, turn its sampling off, or carry their
// text into every span and queued task of it. Traces off, its span is
// OpenTelemetry's no-op one.
func HTTP() gin.HandlerFunc {
	return func(c *gin.Context) {
		route := c.FullPath()
		name := c.Request.Method
		if route != "" {
			name += " " + route
		}
		opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Request.Method))}
		remote := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(c.Request.Header)))
		if remote.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote.WithTraceState(trace.TraceState{})}))
		}
		ctx, span := Tracer().Start(c.Request.Context(), name, opts...)
		if route != "" {
			span.SetAttributes(attribute.String("http.route", route))
		}
		c.Request = c.Request.WithContext(ctx)
		defer span.End()
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, "")
		}
	}
}
