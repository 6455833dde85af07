package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

const jobColumns = `request_id, connector, action, status, created_at, updated_at, lease_until, poll_at, finished_at, doc`

// jobRow is the columns of j, in jobColumns' order, then its id.
func jobRow(j *dsr.Job) ([]any, error) {
	doc, err := encode(j)
	if err != nil {
		return nil, err
	}
	return []any{j.RequestID, j.Connector, string(j.Action), string(j.Status),
		ms(j.CreatedAt), ms(j.UpdatedAt), msp(j.LeaseUntil), msp(j.PollAt), msp(j.FinishedAt), doc, j.ID}, nil
}

// insertJob stores a new job; a unique violation when its id is taken
// (CreateJobs leaves the stored job as it is). The transaction goes on
// after a violation: only the statement failed.
func insertJob(ctx context.Context, tx execer, j *dsr.Job) error {
	row, err := jobRow(j)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`, id) VALUES (?,?,?,?,?,?,?,?,?,?,?)`, row...)
	return err
}

// saveJob writes j over the stored job.
func saveJob(ctx context.Context, tx execer, j *dsr.Job) error {
	row, err := jobRow(j)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET request_id=?, connector=?, action=?, status=?, created_at=?, updated_at=?,
		lease_until=?, poll_at=?, finished_at=?, doc=? WHERE id=?`, row...)
	return err
}

// loadJob reads job id; dsr.ErrNotFound when there is none.
func loadJob(ctx context.Context, q querier, id string) (*dsr.Job, error) {
	var doc string
	err := q.QueryRowContext(ctx, `SELECT doc FROM jobs WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, dsr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find job: %w", err)
	}
	j := new(dsr.Job)
	if err := decode(doc, j); err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// CreateJobs inserts jobs in one transaction. Jobs that already exist are
// left as they are, so creating the same jobs twice is a no-op.
func (s *Store) CreateJobs(ctx context.Context, jobs []dsr.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *wtx) error {
		for i := range jobs {
			if err := insertJob(ctx, tx, &jobs[i]); err != nil && !isUniqueViolation(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

// Jobs returns the jobs of a request in id order.
func (s *Store) Jobs(ctx context.Context, requestID string) ([]dsr.Job, error) {
	jobs, err := scanAll[dsr.Job](s.r.QueryContext(ctx, `SELECT doc FROM jobs WHERE request_id = ? ORDER BY id`, requestID))
	if err != nil {
		return nil, fmt.Errorf("find jobs: %w", err)
	}
	if jobs == nil {
		jobs = []dsr.Job{}
	}
	return jobs, nil
}

// Job returns one job, or dsr.ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*dsr.Job, error) {
	return loadJob(ctx, s.r, id)
}

// ClaimJob takes a pending job, a running one whose lease has expired, or a
// waiting one whose poll time has come, for one attempt: it sets it running
// with a lease until now+lease and counts the attempt, in one transaction.
// It returns dsr.ErrConflict when the job is terminal or another worker
// holds a live lease, dsr.ErrNotFound when it does not exist.
func (s *Store) ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error) {
	var out *dsr.Job
	err := s.write(ctx, func(tx *wtx) error {
		j, err := loadJob(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		claimable := j.Status == dsr.JobPending ||
			(j.Status == dsr.JobRunning && j.LeaseUntil != nil && j.LeaseUntil.Before(now)) ||
			(j.Status == dsr.JobWaiting && j.PollAt != nil && !j.PollAt.After(now))
		if !claimable {
			return fmt.Errorf("job %s: %w", id, dsr.ErrConflict)
		}
		// Stored to the millisecond, as MongoDB keeps it.
		until := now.Add(lease).Truncate(time.Millisecond)
		j.Status, j.LeaseUntil, j.UpdatedAt = dsr.JobRunning, &until, now
		j.Attempts++
		if err := saveJob(ctx, tx, j); err != nil {
			return err
		}
		out = j
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	return out, nil
}

// FinishJob records the outcome of the attempt that claimed the job. The
// update is fenced by the attempt number, so a worker whose lease was taken
// over cannot overwrite the newer attempt; it gets dsr.ErrConflict.
func (s *Store) FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error {
	err := s.write(ctx, func(tx *wtx) error {
		cur, err := loadJob(ctx, tx, j.ID)
		if errors.Is(err, dsr.ErrNotFound) || (err == nil && (cur.Status != dsr.JobRunning || cur.Attempts != j.Attempts)) {
			return fmt.Errorf("finish job %s attempt %d: %w", j.ID, j.Attempts, dsr.ErrConflict)
		}
		if err != nil {
			return err
		}
		now := s.now()
		cur.Status, cur.Error, cur.UpdatedAt, cur.LeaseUntil = o.Status, o.Error, now, nil
		cur.Recorded++
		switch o.Status {
		case dsr.JobWaiting: // an answer the attempt had is taken up
			poll, until := o.PollAt.UTC().Truncate(time.Millisecond), o.WaitUntil.UTC().Truncate(time.Millisecond)
			cur.Handle, cur.PollAt, cur.WaitUntil = o.Handle, &poll, &until
			cur.Answer, cur.AnsweredAt = nil, nil
			cur.Waits++
			cur.WaitedFailures = cur.Attempts - cur.Waits
		case dsr.JobPending: // a failed attempt, retried; a handle (and its answer) is kept to poll again
			cur.PollAt = nil
			if o.Deferred {
				cur.Waits++
			}
		default:
			cur.Records, cur.Collections, cur.FinishedAt, cur.PollAt = o.Records, o.Collections, &now, nil
			if o.DataMap != nil {
				cur.DataMap = o.DataMap
			}
			cur.Answer, cur.AnsweredAt = nil, nil
			if j.UnrecordedChange() {
				cur.RecordsIncomplete = true
			}
		}
		return saveJob(ctx, tx, cur)
	})
	if err != nil && !errors.Is(err, dsr.ErrConflict) {
		return fmt.Errorf("finish job: %w", err)
	}
	return err
}

// AnswerJob stores answer as the Answer of job jobID while it waits on
// handle with no answer yet, and makes it due at once, in one transaction
// (see store.Store).
func (s *Store) AnswerJob(ctx context.Context, jobID, handle string, answer []byte) error {
	if len(answer) == 0 || len(answer) > dsr.MaxStoredAnswer {
		return fmt.Errorf("answer job %s: %w", jobID, dsr.ErrAnswerSize)
	}
	err := s.write(ctx, func(tx *wtx) error {
		j, err := loadJob(ctx, tx, jobID)
		if err != nil {
			return err
		}
		if err := answerable(j, handle); err != nil {
			return err
		}
		now := s.now()
		j.Answer, j.AnsweredAt, j.PollAt, j.UpdatedAt = answer, &now, &now, now
		return saveJob(ctx, tx, j)
	})
	if err != nil {
		return fmt.Errorf("answer job %s: %w", jobID, err)
	}
	return nil
}

// answerable says why job j cannot take an answer for handle, or nil.
func answerable(j *dsr.Job, handle string) error {
	switch {
	case j.Status != dsr.JobWaiting || j.Handle == "" || j.Handle != handle:
		return dsr.ErrJobNotWaiting
	case len(j.Answer) > 0:
		return dsr.ErrAlreadyAnswered
	}
	return nil
}

// tally is what a request's jobs say of it: how many there are, how many
// failed, and how many are not finished.
type tally struct {
	jobs, failed, open int
}

// tallyJobs counts the jobs of a request by status, from the index alone.
func tallyJobs(ctx context.Context, q querier, requestID string) (tally, error) {
	var t tally
	rows, err := q.QueryContext(ctx, `SELECT status, COUNT(*) FROM jobs WHERE request_id = ? GROUP BY status`, requestID)
	if err != nil {
		return t, fmt.Errorf("find jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st dsr.JobStatus
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return t, fmt.Errorf("find jobs: %w", err)
		}
		t.jobs += n
		switch {
		case st == dsr.JobFailed:
			t.failed += n
		case !st.Terminal():
			t.open += n
		}
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("find jobs: %w", err)
	}
	return t, nil
}

// Settle closes an in-progress request that is fanned out (all its jobs
// exist) and whose jobs are all terminal (see dsr.Settlement). It returns
// the request's new status, or "" when the fan-out or a job is unfinished,
// or another actor settled it first. It reads every job of the request, in
// the transaction that moves it: the sweep's way, which trusts no count; a
// worker that just finished a job calls JobFinished.
func (s *Store) Settle(ctx context.Context, requestID, actor string) (dsr.Status, error) {
	var to dsr.Status
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		to, err = s.settleIn(ctx, tx, requestID, actor)
		return err
	})
	if err != nil {
		return "", err
	}
	return to, nil
}

// settleIn is Settle within tx.
func (s *Store) settleIn(ctx context.Context, tx execer, requestID, actor string) (dsr.Status, error) {
	t, err := tallyJobs(ctx, tx, requestID)
	if err != nil {
		return "", err
	}
	if t.open > 0 {
		return "", nil
	}
	var to dsr.Status
	_, err = s.updateIn(ctx, tx, requestID, func(d *requestDoc) error {
		if to = s.settleByJobs(d, t, actor); to == "" {
			return errNoChange
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("settle request: %w", err)
	}
	return to, nil
}

// settleByJobs settles d by what its jobs say (t), setting its job counts
// to theirs: the status it moved to, or "" when a job is unfinished or d
// is not an in-progress, fanned-out request.
func (s *Store) settleByJobs(d *requestDoc, t tally, actor string) dsr.Status {
	if t.open > 0 {
		return ""
	}
	to, reason := dsr.Settlement(t.jobs == 0, t.failed)
	if !s.settle(d, to, reason, actor, &dsr.JobCounts{Failed: t.failed}) {
		return ""
	}
	return to
}

// settle moves d, when it is an in-progress, fanned-out request, to to
// (and, when completed, makes its notice pending), setting its job counts
// to counts when they were taken from the jobs. It reports whether it
// moved d.
func (s *Store) settle(d *requestDoc, to dsr.Status, reason, actor string, counts *dsr.JobCounts) bool {
	if d.Status != dsr.StatusInProgress || d.FannedOutAt == nil || dsr.CheckMove(dsr.StatusInProgress, to) != nil {
		return false
	}
	var notices []string
	if to == dsr.StatusCompleted {
		notices = []string{dsr.NoticeCompleted}
	}
	s.applyMove(d, dsr.StatusInProgress, to, dsr.Change{Actor: actor, Reason: reason, Notices: notices, JobCounts: counts, OutcomeHook: d.OutcomeHook})
	return true
}

// FannedOut records that the jobs of an in-progress request, jobs of them,
// exist and were handed to the queue, counts them as open, and settles the
// request when they have all finished meanwhile, in one transaction. It
// returns the request's new status, or "". A request marked already (a
// second fan-out raced this one), or no longer in progress, is settled by
// its jobs (Settle).
func (s *Store) FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error) {
	var to dsr.Status
	err := s.write(ctx, func(tx *wtx) error {
		_, err := s.updateIn(ctx, tx, id, func(d *requestDoc) error {
			if d.Status != dsr.StatusInProgress || d.FannedOutAt != nil {
				return errNoChange
			}
			now := s.now()
			d.FannedOutAt, d.UpdatedAt, d.FanoutError = &now, now, ""
			d.JobsOpen += jobs
			var err error
			to, err = s.settleCounted(ctx, tx, d, actor)
			return err
		})
		if errors.Is(err, errNoChange) || errors.Is(err, dsr.ErrNotFound) {
			to, err = s.settleIn(ctx, tx, id, actor)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("mark fanned out: %w", err)
	}
	return to, nil
}

// JobFinished counts a job of a request that reached its final outcome
// (failed says it failed for good) and, when it was the last open job of a
// fanned-out request, settles the request, in one transaction that reads
// no job (unless the counts were lost, see settleCounted). It returns the
// request's new status, or "". Call it once per job that FinishJob made
// terminal.
func (s *Store) JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error) {
	var to dsr.Status
	err := s.write(ctx, func(tx *wtx) error {
		_, err := s.updateIn(ctx, tx, requestID, func(d *requestDoc) error {
			d.JobsOpen--
			if failed {
				d.JobsFailed++
			}
			var err error
			to, err = s.settleCounted(ctx, tx, d, actor)
			return err
		})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("count finished job: %w", err)
	}
	return to, nil
}

// settleCounted settles d, read within tx, by its counts: nothing while it
// is not an in-progress, fanned-out request with no open job. Counts below
// zero once fanned out mean they were lost (a worker died between a job's
// end and its count, or the request was fanned out before jobs were
// counted): then the jobs themselves decide, read within tx.
func (s *Store) settleCounted(ctx context.Context, tx execer, d *requestDoc, actor string) (dsr.Status, error) {
	if d.Status != dsr.StatusInProgress || d.FannedOutAt == nil || d.JobsOpen > 0 {
		return "", nil
	}
	if d.JobsOpen < 0 {
		t, err := tallyJobs(ctx, tx, d.ID)
		if err != nil {
			return "", err
		}
		return s.settleByJobs(d, t, actor), nil
	}
	to, reason := dsr.Settlement(false, d.JobsFailed)
	if !s.settle(d, to, reason, actor, nil) {
		return "", nil
	}
	return to, nil
}

// jobsReopened counts n failed jobs of a request as open again (an agent's
// retry set them back to pending), within tx; nothing when the request
// does not exist.
func (s *Store) jobsReopened(ctx context.Context, tx execer, requestID string, n int) error {
	if n == 0 {
		return nil
	}
	_, err := s.updateIn(ctx, tx, requestID, func(d *requestDoc) error {
		d.JobsOpen += n
		d.JobsFailed -= n
		return nil
	})
	if err != nil && !errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("count retried jobs: %w", err)
	}
	return nil
}

// EachStaleJob calls fn for every job that should be running but may have
// lost its queue task, or is due to run: pending since before, running with
// a lease that expired before now, or waiting with its poll time reached.
// It reads in batches; fn may write.
func (s *Store) EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) error {
	for _, q := range []struct {
		col, cmp string
		st       dsr.JobStatus
		t        time.Time
	}{
		{"updated_at", "<", dsr.JobPending, before},
		{"lease_until", "<", dsr.JobRunning, now},
		{"poll_at", "<=", dsr.JobWaiting, now},
	} {
		query := `SELECT ` + q.col + `, id, doc FROM jobs WHERE status = ? AND ` + q.col + ` ` + q.cmp + ` ?`
		err := eachKeyed(ctx, s.r, "jobs", query, q.col, []any{string(q.st), ms(q.t)}, func(rows *sql.Rows) (int64, string, *dsr.Job, error) {
			var (
				at      int64
				id, doc string
				j       dsr.Job
			)
			if err := rows.Scan(&at, &id, &doc); err != nil {
				return 0, "", nil, err
			}
			return at, id, &j, decode(doc, &j)
		}, fn)
		if err != nil {
			return err
		}
	}
	return nil
}

// RetryFailedJobs sets the failed jobs of a request back to pending with
// their attempts counted afresh (and the remote work they waited on, if
// any, forgotten: the action starts again), counts them open again on the
// request, in one transaction, and returns their ids in id order. A job's
// RecordsIncomplete stays: its failed outcome recorded it.
func (s *Store) RetryFailedJobs(ctx context.Context, requestID string) ([]string, error) {
	var ids []string
	err := s.write(ctx, func(tx *wtx) error {
		ids = nil
		jobs, err := scanAll[dsr.Job](tx.QueryContext(ctx, `SELECT doc FROM jobs WHERE request_id = ? AND status = ? ORDER BY id`,
			requestID, string(dsr.JobFailed)))
		if err != nil {
			return fmt.Errorf("find failed jobs: %w", err)
		}
		now := s.now()
		for i := range jobs {
			j := &jobs[i]
			j.Status, j.Attempts, j.Error, j.UpdatedAt = dsr.JobPending, 0, "", now
			j.Retries++
			// A job that waited on a remote system starts the action afresh.
			j.FinishedAt, j.Handle, j.PollAt, j.WaitUntil, j.Waits, j.WaitedFailures, j.Recorded = nil, "", nil, nil, 0, 0, 0
			j.Answer, j.AnsweredAt = nil, nil
			if err := saveJob(ctx, tx, j); err != nil {
				return fmt.Errorf("retry failed jobs: %w", err)
			}
			ids = append(ids, j.ID)
		}
		return s.jobsReopened(ctx, tx, requestID, len(jobs))
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
