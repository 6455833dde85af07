// Package workers holds dsar's background work on asynq: the task types, how
// they are enqueued, and their handlers. A request's fan-out creates one job
// document per (request, connector, action) and one task per job whose task
// id is the job id, so enqueuing twice is a no-op; the job document in
// MongoDB, not the task in Redis, is the source of truth, and the periodic
// sweep re-enqueues whatever Redis lost.
package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types. Each has a New...Task constructor and a handler on Processor.
const (
	// TypeFanout resolves a verified request's identities, creates its jobs
	// and enqueues them.
	TypeFanout = "dsar:fanout"
	// TypeJob runs one connector job.
	TypeJob = "dsar:job"
	// TypeSweep re-drives requests and jobs whose tasks were lost.
	TypeSweep = "dsar:sweep"
)

type fanoutPayload struct {
	RequestID string `json:"request_id"`
}

type jobPayload struct {
	JobID string `json:"job_id"`
}

// NewFanoutTask returns the fan-out task of a request. Its task id is
// "fanout:<request id>".
func NewFanoutTask(requestID string) (*asynq.Task, []asynq.Option) {
	b, _ := json.Marshal(fanoutPayload{RequestID: requestID})
	return asynq.NewTask(TypeFanout, b), []asynq.Option{asynq.TaskID("fanout:" + requestID)}
}

// NewJobTask returns the task that runs a job. Its task id is the job id.
func NewJobTask(jobID string) (*asynq.Task, []asynq.Option) {
	b, _ := json.Marshal(jobPayload{JobID: jobID})
	return asynq.NewTask(TypeJob, b), []asynq.Option{asynq.TaskID(jobID)}
}

// NewSweepTask returns the periodic sweep task.
func NewSweepTask() *asynq.Task {
	return asynq.NewTask(TypeSweep, nil)
}

// Queue enqueues dsar's tasks on one asynq queue.
type Queue struct {
	client   *asynq.Client
	name     string
	maxRetry int
	timeout  time.Duration
}

// QueueOptions configures a Queue.
type QueueOptions struct {
	// Name of the asynq queue.
	Name string
	// MaxRetry is how often a failing job is retried.
	MaxRetry int
	// JobTimeout bounds one connector action.
	JobTimeout time.Duration
}

// NewQueue returns a Queue that enqueues through client.
func NewQueue(client *asynq.Client, o QueueOptions) *Queue {
	return &Queue{client: client, name: o.Name, maxRetry: o.MaxRetry, timeout: o.JobTimeout}
}

// EnqueueFanout enqueues a request's fan-out. A fan-out already queued is
// not queued again; that is not an error.
func (q *Queue) EnqueueFanout(ctx context.Context, requestID string) error {
	t, opts := NewFanoutTask(requestID)
	return q.enqueue(ctx, t, append(opts, asynq.MaxRetry(q.maxRetry), asynq.Timeout(time.Minute)))
}

// EnqueueJob enqueues a job. A job already queued (pending, scheduled for
// retry or running) is not queued again; that is not an error.
func (q *Queue) EnqueueJob(ctx context.Context, jobID string) error {
	t, opts := NewJobTask(jobID)
	// The task outlives the action's own timeout by a margin for bookkeeping.
	return q.enqueue(ctx, t, append(opts, asynq.MaxRetry(q.maxRetry), asynq.Timeout(q.timeout+time.Minute)))
}

// Ping checks that Redis answers.
func (q *Queue) Ping() error {
	if err := q.client.Ping(); err != nil {
		return fmt.Errorf("ping queue: %w", err)
	}
	return nil
}

func (q *Queue) enqueue(ctx context.Context, t *asynq.Task, opts []asynq.Option) error {
	_, err := q.client.EnqueueContext(ctx, t, append(opts, asynq.Queue(q.name))...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", t.Type(), err)
	}
	return nil
}
