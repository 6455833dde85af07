package telemetry

import (
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
// http.route and http.response.status_code; a remote W3C trace context
// in the request's headers is its parent. Traces off, its span is
// OpenTelemetry's no-op one.
func HTTP() gin.HandlerFunc {
	return func(c *gin.Context) {
		route := c.FullPath()
		name := c.Request.Method
		if route != "" {
			name += " " + route
		}
		ctx := otel.GetTextMapPropagator().Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Request.Method)))
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
