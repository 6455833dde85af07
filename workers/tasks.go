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
	"github.com/redis/go-redis/v9"
)

// Task types. Each has a New...Task constructor and a handler type of its
// own (FanoutHandler, JobHandler, ...; NewMux routes them).
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

// Queue enqueues dsar's tasks: fan-outs and jobs on the work queue (its
// name), notices and alerts on NoticeQueue(name), verification codes on
// CodeQueue(name), the Data Rights Protocol's status callbacks on the work
// queue (noticeQueueOf). Close it when done.
type Queue struct {
	client *asynq.Client
	insp   *asynq.Inspector
	// rdb is a plain connection to the same Redis, for what asynq's client
	// does not do: registering the queue again after Redis lost its data,
	// and the sweep's lock.
	rdb      redis.UniversalClient
	name     string
	maxRetry int
	timeout  time.Duration
}

// QueueOptions configures a Queue.
type QueueOptions struct {
	// Name of the asynq work queue; notices go on NoticeQueue(Name).
	Name string
	// MaxRetry is how often a failing task is retried.
	MaxRetry int
	// JobTimeout bounds one connector action.
	JobTimeout time.Duration
}

// NewQueue returns a Queue on the Redis at redis.
func NewQueue(r asynq.RedisConnOpt, o QueueOptions) *Queue {
	rdb, _ := r.MakeRedisClient().(redis.UniversalClient) // every asynq.RedisConnOpt makes one
	return &Queue{client: asynq.NewClient(r), insp: asynq.NewInspector(r), rdb: rdb, name: o.Name, maxRetry: o.MaxRetry, timeout: o.JobTimeout}
}

// Close releases the queue's connections.
func (q *Queue) Close() error {
	return errors.Join(q.client.Close(), q.insp.Close(), q.rdb.Close())
}

// allQueues is the Redis set in which asynq lists the queues that exist
// (asynq's internal base.AllQueues). Its inspector answers "queue not found"
// for a queue missing from it, whatever the queue holds.
const allQueues = "asynq:queues"

// register lists the work and notice queues in asynq's set of queues. asynq's client adds the
// name once per process (v0.26 rdb.Enqueue remembers it in queuesPublished),
// so after Redis loses its data (FLUSHDB, a restart without persistence) the
// name never comes back by itself: tasks still run, but the inspector, which
// the enqueue below and the metrics rely on, says the queue does not exist.
// Registering is one idempotent SADD.
func (q *Queue) register(ctx context.Context) error {
	if err := q.rdb.SAdd(ctx, allQueues, q.name, NoticeQueue(q.name), CodeQueue(q.name)).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}

// EnqueueFanout enqueues a request's fan-out. A fan-out already queued is
// not queued again; that is not an error.
func (q *Queue) EnqueueFanout(ctx context.Context, requestID string) error {
	_, err := q.enqueueFanout(ctx, requestID)
	return err
}

func (q *Queue) enqueueFanout(ctx context.Context, requestID string) (bool, error) {
	t, opts := NewFanoutTask(requestID)
	return q.enqueue(ctx, q.name, t, "fanout:"+requestID, append(opts, asynq.MaxRetry(q.maxRetry), asynq.Timeout(time.Minute)))
}

// EnqueueFanoutAt schedules a request's fan-out at time at, under task id
// "fanout-hold:<request id>" (so it never collides with the fan-out that
// schedules it). One scheduled already is not scheduled again.
func (q *Queue) EnqueueFanoutAt(ctx context.Context, requestID string, at time.Time) error {
	t, _ := NewFanoutTask(requestID)
	id := "fanout-hold:" + requestID
	_, err := q.enqueue(ctx, q.name, t, id, []asynq.Option{asynq.TaskID(id), asynq.ProcessAt(at), asynq.MaxRetry(q.maxRetry), asynq.Timeout(time.Minute)})
	return err
}

// EnqueueJob enqueues a job. A job already queued (pending, scheduled for
// retry or running) is not queued again; that is not an error.
func (q *Queue) EnqueueJob(ctx context.Context, jobID string) error {
	_, err := q.enqueueJob(ctx, jobID)
	return err
}

func (q *Queue) enqueueJob(ctx context.Context, jobID string) (bool, error) {
	t, opts := NewJobTask(jobID)
	// The task outlives the action's own timeout by a margin for bookkeeping.
	return q.enqueue(ctx, q.name, t, jobID, append(opts, asynq.MaxRetry(q.maxRetry), asynq.Timeout(q.timeout+time.Minute)))
}

// Ping checks that Redis answers, giving up when ctx ends (asynq's ping
// takes no context: a Redis that accepts the connection and never answers
// would hold a readiness probe or a shutdown for the client's own
// time-outs).
func (q *Queue) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- q.client.Ping() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("ping queue: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ping queue: %w", ctx.Err())
	}
}

// enqueue hands t, whose task id is id, to the asynq queue named queue and
// reports whether it did. A live task with the same id (pending, scheduled, retrying or
// running) is left alone. A dead one (archived after its retries, or kept as
// completed) is replaced: the store says the work is not done, and asynq
// would otherwise refuse the id for as long as it keeps the dead task.
// It is a producer span whose trace context t carries (see startEnqueue).
func (q *Queue) enqueue(ctx context.Context, queue string, t *asynq.Task, id string, opts []asynq.Option) (queued bool, err error) {
	ctx, span, t := startEnqueue(ctx, queue, t)
	defer func() { endEnqueue(span, queued, err) }()
	opts = append(opts, asynq.Queue(queue))
	for range 2 {
		_, err := q.client.EnqueueContext(ctx, t, opts...)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			return false, fmt.Errorf("enqueue %s: %w", t.Type(), err)
		}
		info, err := q.insp.GetTaskInfo(queue, id)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			// Redis lost the queue's registration (see register) but not
			// this task, enqueued since: register the queue and look again.
			if err := q.register(ctx); err != nil {
				return false, fmt.Errorf("inspect task %s: %w", t.Type(), err)
			}
			info, err = q.insp.GetTaskInfo(queue, id)
		}
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			continue // gone meanwhile: enqueue again
		case err != nil:
			return false, fmt.Errorf("inspect task %s: %w", t.Type(), err)
		case info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted:
			return false, nil // live: it will run
		}
		if err := q.insp.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return false, fmt.Errorf("replace dead task %s: %w", t.Type(), err)
		}
	}
	return false, nil // another caller enqueued it meanwhile
}
