package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// CreateJobs inserts jobs in one command. Jobs that already exist are left as
// they are, so creating the same jobs twice is a no-op.
func (s *Store) CreateJobs(ctx context.Context, jobs []dsr.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	docs := make([]any, len(jobs))
	for i := range jobs {
		docs[i] = jobs[i]
	}
	_, err := s.jobs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

// Jobs returns the jobs of a request in id order.
func (s *Store) Jobs(ctx context.Context, requestID string) ([]dsr.Job, error) {
	cur, err := s.jobs.Find(ctx, bson.D{{Key: "request_id", Value: requestID}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find jobs: %w", err)
	}
	jobs := []dsr.Job{}
	if err := cur.All(ctx, &jobs); err != nil {
		return nil, fmt.Errorf("find jobs: %w", err)
	}
	return jobs, nil
}

// Job returns one job, or ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*dsr.Job, error) {
	var j dsr.Job
	err := s.jobs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("job %s: %w", id, dsr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find job: %w", err)
	}
	return &j, nil
}

// ClaimJob takes a pending job, or a running one whose lease has expired, for
// one attempt: it sets it running with a lease until now+lease and counts the
// attempt, in one conditional update. It returns ErrConflict when the job is
// terminal or another worker holds a live lease, ErrNotFound when it does not
// exist.
func (s *Store) ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error) {
	now := s.now()
	filter := bson.D{
		{Key: "_id", Value: id},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "status", Value: dsr.JobPending}},
			bson.D{{Key: "status", Value: dsr.JobRunning}, {Key: "lease_until", Value: bson.D{{Key: "$lt", Value: now}}}},
			bson.D{{Key: "status", Value: dsr.JobWaiting}, {Key: "poll_at", Value: bson.D{{Key: "$lte", Value: now}}}},
		}},
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: dsr.JobRunning}, {Key: "lease_until", Value: now.Add(lease)}, {Key: "updated_at", Value: now}}},
		{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
	}
	var j dsr.Job
	err := s.jobs.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		n, cerr := s.jobs.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		switch {
		case cerr != nil:
			return nil, fmt.Errorf("claim job: %w", cerr)
		case n == 0:
			return nil, fmt.Errorf("claim job %s: %w", id, dsr.ErrNotFound)
		default:
			return nil, fmt.Errorf("claim job %s: %w", id, dsr.ErrConflict)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	return &j, nil
}

// FinishJob records the outcome of the attempt that claimed the job. The
// update is fenced by the attempt number, so a worker whose lease was taken
// over cannot overwrite the newer attempt; it gets ErrConflict.
func (s *Store) FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error {
	now := s.now()
	set := bson.D{
		{Key: "status", Value: o.Status},
		{Key: "error", Value: o.Error},
		{Key: "updated_at", Value: now},
	}
	unset := bson.D{{Key: "lease_until", Value: ""}}
	inc := bson.D{{Key: "recorded", Value: 1}}
	switch o.Status {
	case dsr.JobWaiting:
		set = append(set,
			bson.E{Key: "handle", Value: o.Handle},
			bson.E{Key: "poll_at", Value: o.PollAt.UTC()},
			bson.E{Key: "wait_until", Value: o.WaitUntil.UTC()},
		)
		unset = append(unset, bson.E{Key: "answer", Value: ""}, bson.E{Key: "answered_at", Value: ""}) // taken up
		inc = append(inc, bson.E{Key: "waits", Value: 1})
		// The update is fenced on this attempt, so j's counts are the
		// job's: the failures so far, forgiven from now on.
		set = append(set, bson.E{Key: "waited_failures", Value: j.Attempts - (j.Waits + 1)})
	case dsr.JobPending: // a failed attempt, retried; a handle (and its answer) is kept to poll again
		unset = append(unset, bson.E{Key: "poll_at", Value: ""})
		if o.Deferred {
			inc = append(inc, bson.E{Key: "waits", Value: 1})
		}
	default:
		set = append(set,
			bson.E{Key: "records", Value: o.Records},
			bson.E{Key: "collections", Value: o.Collections},
			bson.E{Key: "finished_at", Value: now},
		)
		if j.UnrecordedChange() {
			set = append(set, bson.E{Key: "records_incomplete", Value: true})
		}
		if o.DataMap != nil {
			set = append(set, bson.E{Key: "data_map", Value: o.DataMap})
		}
		unset = append(unset, bson.E{Key: "poll_at", Value: ""}, bson.E{Key: "answer", Value: ""}, bson.E{Key: "answered_at", Value: ""})
	}
	update := bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: unset}, {Key: "$inc", Value: inc}}
	res, err := s.jobs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: j.ID}, {Key: "status", Value: dsr.JobRunning}, {Key: "attempts", Value: j.Attempts}},
		update,
	)
	if err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("finish job %s attempt %d: %w", j.ID, j.Attempts, dsr.ErrConflict)
	}
	return nil
}

// AnswerJob stores answer as the Answer of job jobID while it waits on
// handle with no answer yet, and makes it due at once, in one conditional
// update (see store.Store). When nothing matched, one read of the job
// says why.
func (s *Store) AnswerJob(ctx context.Context, jobID, handle string, answer []byte) error {
	if len(answer) == 0 || len(answer) > dsr.MaxStoredAnswer {
		return fmt.Errorf("answer job %s: %w", jobID, dsr.ErrAnswerSize)
	}
	now := s.now()
	res, err := s.jobs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: jobID}, {Key: "status", Value: dsr.JobWaiting}, {Key: "handle", Value: handle}, {Key: "answer", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "answer", Value: answer}, {Key: "answered_at", Value: now}, {Key: "poll_at", Value: now}, {Key: "updated_at", Value: now}}}},
	)
	if err != nil {
		return fmt.Errorf("answer job: %w", err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	j, err := s.Job(ctx, jobID)
	if err != nil {
		return fmt.Errorf("answer job: %w", err)
	}
	switch {
	case j.Status != dsr.JobWaiting || j.Handle == "" || j.Handle != handle:
		return fmt.Errorf("answer job %s: %w", jobID, dsr.ErrJobNotWaiting)
	default:
		return fmt.Errorf("answer job %s: %w", jobID, dsr.ErrAlreadyAnswered)
	}
}

// Settle closes an in-progress request that is fanned out (all its jobs
// exist) and whose jobs are all terminal (see Settlement). It returns the
// request's new status, or "" when the fan-out or a job is unfinished, or
// another actor settled it first. It reads every job of the request: the
// sweep's way, which trusts no count; a worker that just finished a job
// calls JobFinished.
func (s *Store) Settle(ctx context.Context, requestID, actor string) (dsr.Status, error) {
	jobs, err := s.Jobs(ctx, requestID)
	if err != nil {
		return "", err
	}
	failed := 0
	for _, j := range jobs {
		if !j.Status.Terminal() {
			return "", nil
		}
		if j.Status == dsr.JobFailed {
			failed++
		}
	}
	to, reason := dsr.Settlement(len(jobs) == 0, failed)
	counts := &dsr.JobCounts{Failed: failed}
	// The request's OutcomeHook is not read: the move is tried as for a
	// request that owes no outcome (most), then, when that did not match,
	// as for one that does.
	st, err := s.settle(ctx, requestID, to, reason, actor, nil, counts, false)
	if st != "" || err != nil {
		return st, err
	}
	return s.settle(ctx, requestID, to, reason, actor, nil, counts, true)
}

// settle moves an in-progress, fanned-out request to to (and, when
// completed, makes its notice pending), under the conditions also, setting
// its job counts to counts when they were taken from the jobs. hook is the
// request's OutcomeHook as read (the move is conditional on it, so the
// outcome's notice is pending exactly when the request owes it). It returns
// "" when the request is elsewhere.
func (s *Store) settle(ctx context.Context, requestID string, to dsr.Status, reason, actor string, also bson.D, counts *dsr.JobCounts, hook bool) (dsr.Status, error) {
	var notices []string
	if to == dsr.StatusCompleted {
		notices = []string{dsr.NoticeCompleted}
	}
	flag := bson.E{Key: "outcome_hook", Value: true}
	if !hook {
		flag.Value = bson.D{{Key: "$ne", Value: true}}
	}
	_, err := s.move(ctx, requestID, dsr.StatusInProgress, to, dsr.Change{Actor: actor, Reason: reason, Notices: notices, JobCounts: counts, OutcomeHook: hook},
		append(bson.D{{Key: "fanned_out_at", Value: bson.D{{Key: "$ne", Value: nil}}}, flag}, also...))
	if errors.Is(err, dsr.ErrConflict) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return to, nil
}

// jobCounts is how a request counts its jobs, so that settling it reads no
// job: JobsOpen, the jobs not finished (added at the fan-out's mark, taken
// off as each finishes, so it may go below zero while a fan-out is under
// way), and JobsFailed, those that failed for good.
type jobCounts struct {
	Status      dsr.Status `bson:"status"`
	FannedOutAt *time.Time `bson:"fanned_out_at"`
	JobsOpen    int        `bson:"jobs_open"`
	JobsFailed  int        `bson:"jobs_failed"`
	OutcomeHook bool       `bson:"outcome_hook"`
}

// (findAndModify returns the whole request: FerretDB does not project it.)

// FannedOut records that the jobs of an in-progress request, jobs of them,
// exist and were handed to the queue, counts them as open, and settles the
// request when they have all finished meanwhile, in one command unless it
// settles. It returns the request's new status, or "". A request marked
// already (a second fan-out raced this one) is settled by its jobs (Settle).
func (s *Store) FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error) {
	now := s.now()
	var c jobCounts
	err := s.reqs.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: dsr.StatusInProgress}, {Key: "fanned_out_at", Value: nil}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "fanned_out_at", Value: now}, {Key: "updated_at", Value: now}}},
			{Key: "$unset", Value: bson.D{{Key: "fanout_error", Value: ""}}},
			{Key: "$inc", Value: bson.D{{Key: "jobs_open", Value: jobs}}},
		},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return s.Settle(ctx, id, actor)
	}
	if err != nil {
		return "", fmt.Errorf("mark fanned out: %w", err)
	}
	return s.settleCounted(ctx, id, c, actor)
}

// JobFinished counts a job of a request that reached its final outcome
// (failed says it failed for good) and, when it was the last open job of a
// fanned-out request, settles the request: one command, and the move when
// it settles; no job is read. It returns the request's new status, or "".
// Call it once per job that FinishJob made terminal.
func (s *Store) JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error) {
	inc := bson.D{{Key: "jobs_open", Value: -1}}
	if failed {
		inc = append(inc, bson.E{Key: "jobs_failed", Value: 1})
	}
	var c jobCounts
	err := s.reqs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: requestID}}, bson.D{{Key: "$inc", Value: inc}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", fmt.Errorf("count finished job: request %s: %w", requestID, dsr.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("count finished job: %w", err)
	}
	return s.settleCounted(ctx, requestID, c, actor)
}

// settleCounted settles a request by its counts: nothing while it is not
// an in-progress, fanned-out request with no open job. Counts below zero
// once fanned out mean they were lost (a worker died between a job's end
// and its count, or the request was fanned out before jobs were counted):
// then the jobs themselves decide (Settle). The move is conditional on the
// count still being zero (an agent's retry may have reopened jobs since).
func (s *Store) settleCounted(ctx context.Context, id string, c jobCounts, actor string) (dsr.Status, error) {
	if c.Status != dsr.StatusInProgress || c.FannedOutAt == nil || c.JobsOpen > 0 {
		return "", nil
	}
	if c.JobsOpen < 0 {
		return s.Settle(ctx, id, actor)
	}
	to, reason := dsr.Settlement(false, c.JobsFailed)
	return s.settle(ctx, id, to, reason, actor, bson.D{{Key: "jobs_open", Value: 0}}, nil, c.OutcomeHook)
}

// jobsReopened counts n failed jobs of a request as open again (an agent's
// retry set them back to pending).
func (s *Store) jobsReopened(ctx context.Context, requestID string, n int64) error {
	if n == 0 {
		return nil
	}
	_, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: requestID}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "jobs_open", Value: n}, {Key: "jobs_failed", Value: -n}}}})
	if err != nil {
		return fmt.Errorf("count retried jobs: %w", err)
	}
	return nil
}

// purgeJobIdentities removes the identities the finished jobs of a request
// carry (see Job.Identities), and any answer they hold (Job.Answer); a job
// still to run keeps them.
func (s *Store) purgeJobIdentities(ctx context.Context, requestID string) error {
	finished := bson.D{{Key: "$in", Value: bson.A{dsr.JobSucceeded, dsr.JobFailed, dsr.JobSkipped}}}
	if _, err := s.jobs.UpdateMany(ctx, bson.D{{Key: "request_id", Value: requestID}, {Key: "status", Value: finished}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "identities", Value: ""}, {Key: "answer", Value: ""}, {Key: "answered_at", Value: ""}}}}); err != nil {
		return fmt.Errorf("purge job identities: %w", err)
	}
	return nil
}

// EachStaleJob calls fn for every job that should be running but may have
// lost its queue task, or is due to run: pending since before, running with
// a lease that expired before now, or waiting with its poll time reached.
func (s *Store) EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) error {
	pending := bson.D{{Key: "status", Value: dsr.JobPending}, {Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}}}
	if err := each(ctx, s.jobs, pending, fn); err != nil {
		return err
	}
	expired := bson.D{{Key: "status", Value: dsr.JobRunning}, {Key: "lease_until", Value: bson.D{{Key: "$lt", Value: now}}}}
	if err := each(ctx, s.jobs, expired, fn); err != nil {
		return err
	}
	polls := bson.D{{Key: "status", Value: dsr.JobWaiting}, {Key: "poll_at", Value: bson.D{{Key: "$lte", Value: now}}}}
	return each(ctx, s.jobs, polls, fn)
}

// RetryFailedJobs sets the failed jobs of a request back to pending with
// their attempts counted afresh (and the remote work they waited on, if
// any, forgotten: the action starts again), and returns their ids. A job's
// RecordsIncomplete stays: its failed outcome recorded it.
func (s *Store) RetryFailedJobs(ctx context.Context, requestID string) ([]string, error) {
	filter := bson.D{{Key: "request_id", Value: requestID}, {Key: "status", Value: dsr.JobFailed}}
	jobs, err := s.jobs.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find failed jobs: %w", err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := jobs.All(ctx, &ids); err != nil {
		return nil, fmt.Errorf("find failed jobs: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	res, err := s.jobs.UpdateMany(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: dsr.JobPending}, {Key: "attempts", Value: 0}, {Key: "error", Value: ""}, {Key: "updated_at", Value: s.now()}}},
		{Key: "$inc", Value: bson.D{{Key: "retries", Value: 1}}},
		// A job that waited on a remote system starts the action afresh.
		{Key: "$unset", Value: bson.D{{Key: "finished_at", Value: ""}, {Key: "handle", Value: ""}, {Key: "poll_at", Value: ""}, {Key: "wait_until", Value: ""}, {Key: "waits", Value: ""}, {Key: "waited_failures", Value: ""}, {Key: "recorded", Value: ""},
			{Key: "answer", Value: ""}, {Key: "answered_at", Value: ""}}},
	})
	if err != nil {
		return nil, fmt.Errorf("retry failed jobs: %w", err)
	}
	if err := s.jobsReopened(ctx, requestID, res.ModifiedCount); err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, j := range ids {
		out[i] = j.ID
	}
	return out, nil
}
