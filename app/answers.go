package app

import (
	"context"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
)

// answerStore is what answering a waiting job reads and writes.
type answerStore interface {
	Job(ctx context.Context, id string) (*dsr.Job, error)
	AnswerJob(ctx context.Context, jobID, handle string, answer []byte) error
}

// Job returns job id, or dsr.ErrNotFound. Its Identities and Answer may
// hold personal data: a surface shows neither.
func (s *Service) Job(ctx context.Context, id string) (*dsr.Job, error) {
	if !dsr.ValidJobID(id) {
		return nil, fmt.Errorf("job: %w", dsr.ErrNotFound) // never the id: anyone may send one
	}
	return s.store.Job(ctx, id)
}

// AnswerJob hands a waiting job the answer an outside party sent for the
// work it waits on (handle): a webhook receiver's callback, a manual
// task's upload, already authenticated by the caller (by names who
// answered, for the audit trail). It stores the answer only while the job
// waits on exactly handle with no answer yet (dsr.ErrJobNotWaiting,
// dsr.ErrAlreadyAnswered otherwise, and nothing changes), records the
// job_answered audit event, and hands the job to the workers at once (the
// sweep does it later if the queue fails).
func (s *Service) AnswerJob(ctx context.Context, jobID, handle string, answer []byte, by string) error {
	if !dsr.ValidJobID(jobID) {
		return fmt.Errorf("answer job: %w", dsr.ErrNotFound)
	}
	if err := s.store.AnswerJob(ctx, jobID, handle, answer); err != nil {
		return err
	}
	j, err := s.store.Job(ctx, jobID)
	if err != nil {
		return fmt.Errorf("answered job: %w", err)
	}
	s.log.InfoContext(ctx, "job answered", "request_id", j.RequestID, "job", j.Connector+"/"+string(j.Action), "bytes", len(answer))
	s.audit(ctx, j.RequestID, by, "job_answered", map[string]string{"connector": j.Connector, "action": string(j.Action), "bytes": fmt.Sprint(len(answer))})
	if err := s.queue.EnqueueJob(ctx, jobID); err != nil {
		s.log.WarnContext(ctx, "answered job not enqueued; the sweep will hand it on", "request_id", j.RequestID, "error", err)
	}
	return nil
}
