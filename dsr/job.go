package dsr

import "time"

// NewJob returns a pending job for a request, connector and action.
func NewJob(requestID, connector string, a Action, now time.Time) Job {
	now = now.UTC().Truncate(time.Millisecond)
	return Job{
		ID:        JobID(requestID, connector, a),
		RequestID: requestID,
		Connector: connector,
		Action:    a,
		Status:    JobPending,
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// Outcome is how one attempt at a job ended.
type Outcome struct {
	// Status is JobSucceeded, JobFailed or JobSkipped for a final outcome,
	// or JobPending when the attempt failed and will be retried.
	Status      JobStatus
	Records     int64
	Collections []CollectionResult
	// DataMap, with a final status, is what the connector's entry declares
	// of its system, kept on the job (Job.DataMap); nil when it declares
	// nothing.
	DataMap *DataMap
	// Error is the attempt's error, safe to show (it names no person).
	Error string
	// Deferred, with Status JobPending, says the system asked to be called
	// again later (a rate limit, a quota): the attempt is counted with the
	// waits, not against the job's retries (see Job.Deferrable).
	Deferred bool
	// Handle, PollAt and WaitUntil are set with Status JobWaiting: the
	// remote work to poll, when, and until when.
	Handle            string
	PollAt, WaitUntil time.Time
}

// UnrecordedChange reports whether an attempt before the one that claimed j
// may have changed records without recording it: j changes data (an erase
// or opt-out; an export changes nothing) and fewer attempts than those
// before this one recorded an outcome. A store marks such a job's outcome
// records_incomplete when it records it.
func (j *Job) UnrecordedChange() bool {
	return j.Action != ActionExport && j.Attempts-1 > j.Recorded
}

// Settlement is how a fanned-out request whose jobs have all finished
// closes, and the reason its history gives: completed when none of its jobs
// failed, needs_attention otherwise. noJobs says it had none.
func Settlement(noJobs bool, failed int) (Status, string) {
	switch {
	case failed > 0:
		return StatusNeedsAttention, "a job failed past its retries"
	case noJobs:
		return StatusCompleted, "no connector handles this request type"
	default:
		return StatusCompleted, "every job finished"
	}
}

// Deferrable reports whether an attempt of j that the system answered with
// "call again later" may leave the job's retries untouched: for as long as a
// job may wait on its system (waitMax since it was created, the bound of an
// asynchronous job's wait too). Past it the attempt counts as a failure, so
// a system that always defers ends in front of an agent, not in a loop.
func (j *Job) Deferrable(now time.Time, waitMax time.Duration) bool {
	return now.Before(j.CreatedAt.Add(waitMax))
}

// JobCounts are a request's counts of its jobs that are not finished (Open)
// and that failed for good (Failed), kept on the request so that settling it
// reads no job.
type JobCounts struct {
	Open, Failed int
}
