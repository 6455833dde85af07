package tracedstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/tracedstore"
)

// failing is a store whose Request fails with an error quoting a person.
type failing struct{ store.Store }

func (failing) Request(context.Context, string) (*dsr.Request, error) {
	return nil, errors.New("no request for ada@example.com")
}

// A call is a client span under the caller's, named by the method, with
// the request id; a failure marks it failed without the error's text.
func TestCallIsSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	s := tracedstore.New(failing{}, "sqlite")
	// The store's spans come from the global provider.
	restore := install(tp)
	defer restore()
	if _, err := s.Request(ctx, "req_1"); err == nil || !strings.Contains(err.Error(), "ada@example.com") {
		t.Fatalf("error %v not passed through", err)
	}
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	got := spans[0]
	if got.Name != "store Request" || got.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("span %q parent %v", got.Name, got.Parent.SpanID())
	}
	want := attribute.NewSet(attribute.String("dsar.request.id", "req_1"), attribute.String("db.system.name", "sqlite"),
		attribute.String("db.operation.name", "Request"), attribute.String("error.type", "*errors.errorString"))
	if have := attribute.NewSet(got.Attributes...); !have.Equals(&want) {
		t.Errorf("attributes %v", got.Attributes)
	}
	if got.Status.Code != codes.Error || got.Status.Description != "" || len(got.Events) != 0 {
		t.Errorf("status %+v, events %v: want failed, no text", got.Status, got.Events)
	}
}
