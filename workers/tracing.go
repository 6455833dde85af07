package workers

import (
	"context"
	"encoding/json"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/telemetry"
)

// The workers' spans (see internal/telemetry): one producer span per
// enqueue, whose trace context travels in the task's headers; one consumer
// span per task run, its child; one span per connector action. Their
// attributes are the task type and queue, the request and job ids, the
// connector, action, outcome and record count: nothing of the subject.

// taskIDs are the ids a task's payload may carry (all payloads of dsar's
// tasks are JSON; none carries personal data).
type taskIDs struct {
	RequestID string `json:"request_id"`
	JobID     string `json:"job_id"`
	Notice    string `json:"notice"`
}

// taskAttrs are the attributes of task t on queue (empty: unknown).
func taskAttrs(t *asynq.Task, queue string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("messaging.system", "asynq"), attribute.String("dsar.task.type", t.Type())}
	if queue != "" {
		attrs = append(attrs, attribute.String("messaging.destination.name", queue))
	}
	var ids taskIDs
	if json.Unmarshal(t.Payload(), &ids) == nil {
		if ids.RequestID != "" {
			attrs = append(attrs, telemetry.RequestID.String(ids.RequestID))
		}
		if ids.JobID != "" {
			attrs = append(attrs, telemetry.JobID.String(ids.JobID))
			if c := jobConnector(ids.JobID); c != "" {
				attrs = append(attrs, telemetry.Connector.String(c))
			}
		}
		if ids.Notice != "" {
			attrs = append(attrs, attribute.String("dsar.notice", ids.Notice))
		}
	}
	return attrs
}

// startEnqueue opens the producer span of enqueuing t on queue and returns
// t carrying its trace context in its headers (t itself when traces are
// off).
func startEnqueue(ctx context.Context, queue string, t *asynq.Task) (context.Context, trace.Span, *asynq.Task) {
	ctx, span := telemetry.Tracer().Start(ctx, "enqueue "+t.Type(), trace.WithSpanKind(trace.SpanKindProducer))
	if !span.IsRecording() {
		return ctx, span, t
	}
	span.SetAttributes(taskAttrs(t, queue)...)
	h := telemetry.Inject(ctx)
	if len(h) == 0 {
		return ctx, span, t
	}
	for k, v := range t.Headers() {
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	return ctx, span, asynq.NewTaskWithHeaders(t.Type(), t.Payload(), h)
}

// endEnqueue ends an enqueue's span: queued says whether the task was
// queued (false: a live one with its id was there already).
func endEnqueue(span trace.Span, queued bool, err error) {
	span.SetAttributes(attribute.Bool("dsar.queued", queued))
	telemetry.End(span, err)
}

// traced is the middleware that runs each task in a consumer span, the
// child of the span that enqueued it when its headers carry one.
func traced(next asynq.Handler) asynq.Handler { return tracedHandler{next: next} }

// tracedHandler runs next in a consumer span (see traced).
type tracedHandler struct{ next asynq.Handler }

// ProcessTask runs the task in its span.
func (h tracedHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	ctx = telemetry.Extract(ctx, t.Headers())
	ctx, span := telemetry.Tracer().Start(ctx, "process "+t.Type(), trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		queue, _ := asynq.GetQueueName(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		span.SetAttributes(append(taskAttrs(t, queue), attribute.Int("dsar.task.retried", retried))...)
	}
	err := h.next.ProcessTask(ctx, t)
	telemetry.End(span, err)
	return err
}

// Unwrap is the handler traced.
func (h tracedHandler) Unwrap() asynq.Handler { return h.next }

// startAction opens the span of one connector action (or poll, or answer)
// of job.
func startAction(ctx context.Context, job *dsr.Job) (context.Context, trace.Span) {
	return telemetry.Tracer().Start(ctx, "connector "+string(job.Action), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.Connector.String(job.Connector), telemetry.Action.String(string(job.Action)),
			telemetry.RequestID.String(job.RequestID), telemetry.JobID.String(job.ID), attribute.Int("dsar.job.attempt", job.Attempts)))
}

// endAction ends an action's span with its outcome and record count.
func endAction(span trace.Span, res connectors.Result, err error) {
	outcome := "succeeded"
	switch {
	case err != nil:
		outcome = "failed"
	case res.Pending != nil:
		outcome = "pending"
	}
	span.SetAttributes(telemetry.Outcome.String(outcome), telemetry.Records.Int64(res.Records))
	telemetry.End(span, err)
}

// startResolve opens the span of one connector's identity resolution for
// request requestID; its end records how many identities it provided.
func startResolve(ctx context.Context, r connectors.Resolver, requestID string) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{telemetry.Action.String("resolve"), telemetry.RequestID.String(requestID)}
	if c, ok := r.(connectors.Connector); ok {
		attrs = append(attrs, telemetry.Connector.String(c.Name()))
	}
	return telemetry.Tracer().Start(ctx, "connector resolve", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endResolve ends a resolution's span with the number of identities found.
func endResolve(span trace.Span, found int, err error) {
	span.SetAttributes(telemetry.Records.Int(found))
	telemetry.End(span, err)
}
