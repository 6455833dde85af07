package tracedstore_test

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// install makes tp the global provider and returns what restores the one
// before.
func install(tp trace.TracerProvider) func() {
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	return func() { otel.SetTracerProvider(before) }
}
