package sealedstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
)

// CreateJobs seals each job's identities under its request's data key.
func (s *Store) CreateJobs(ctx context.Context, jobs []dsr.Job) error {
	sealed := make([]dsr.Job, len(jobs))
	for i, j := range jobs {
		dk, err := s.requestKey(ctx, j.RequestID, "d:")
		if err != nil {
			return fmt.Errorf("job %s: data key: %w", j.ID, err)
		}
		if dk != nil {
			if j.Identities, err = sealIdentities(dk, j.Identities, fieldJobIdentity, j.ID); err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
			if len(j.Answer) > 0 {
				if j.Answer, err = envelope.Seal(dk, j.Answer, aad(fieldAnswer, j.ID)); err != nil {
					return fmt.Errorf("job %s: seal answer: %w", j.ID, err)
				}
			}
		}
		sealed[i] = j
	}
	return s.Store.CreateJobs(ctx, sealed)
}

// openJob opens j's identities and answer in place, under its request's
// data key (read when not cached). A job of a request in clear is left as
// it is; one of a request purged has none. What does not open is
// dsr.ErrUnreadable; a failed read of the store is returned as it is (a
// retry may succeed).
func (s *Store) openJob(ctx context.Context, j *dsr.Job) error {
	if j == nil || (len(j.Identities) == 0 && len(j.Answer) == 0) {
		return nil
	}
	dk, purged, err := s.requestKeyOr(ctx, j.RequestID, "d:")
	if err != nil {
		return fmt.Errorf("job %s: data key: %w", j.ID, err)
	}
	unreadable := func(what string, err error) error {
		return fmt.Errorf("%w: job %s: open %s: %w", dsr.ErrUnreadable, j.ID, what, err)
	}
	if dk == nil {
		if identitiesLookSealed(j.Identities) || answerLooksSealed(j.Answer) {
			// A purge removes the data key but keeps the identities of a
			// job still running (the drivers' PurgeIdentities), which
			// can no longer be opened: the job runs as one whose
			// identities were purged, with none (never handed
			// ciphertexts). Otherwise the key was removed behind the
			// store.
			if !purged {
				return fmt.Errorf("job %s: %w", j.ID, errNoDataKey)
			}
			withholdJob(j)
		}
		return nil
	}
	if err := openIdentities(dk, j.Identities, fieldJobIdentity, j.ID); err != nil {
		return unreadable("identities", err)
	}
	if len(j.Answer) > 0 {
		if j.Answer, err = envelope.Open(dk, j.Answer, aad(fieldAnswer, j.ID)); err != nil {
			return unreadable("answer", err)
		}
	}
	return nil
}

// answerLooksSealed reports whether a job's answer has the form of a
// sealed one (an answer stored in clear, for a request stored in clear,
// does not).
func answerLooksSealed(a []byte) bool {
	return len(a) >= envelope.SealOverhead && a[0] == 0x01
}

// withholdJob drops j's sealed values. None at all, not identities with
// empty values: a job without identities is run on its request's, which a
// purge emptied too, whereas empty values would be sent to a connector.
func withholdJob(j *dsr.Job) { j.Identities, j.Answer = nil, nil }

func (s *Store) openedJob(ctx context.Context, j *dsr.Job, err error) (*dsr.Job, error) {
	if err != nil {
		if j != nil && s.openJob(ctx, j) != nil { // a driver's answer beside its error
			withholdJob(j)
		}
		return j, err
	}
	if err := s.openJob(ctx, j); err != nil {
		return nil, err
	}
	return j, nil
}

// Jobs opens the request's jobs; one that does not open comes with its
// values withheld rather than failing the list: its callers (the API's
// and the console's view of a request, its outcome) read the jobs' heads,
// and the agent must be able to work the request it is part of.
func (s *Store) Jobs(ctx context.Context, requestID string) ([]dsr.Job, error) {
	jobs, err := s.Store.Jobs(ctx, requestID)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		if err := s.openJob(ctx, &jobs[i]); err != nil {
			if !errors.Is(err, dsr.ErrUnreadable) {
				return nil, err
			}
			withholdJob(&jobs[i])
		}
	}
	return jobs, nil
}

func (s *Store) Job(ctx context.Context, id string) (*dsr.Job, error) {
	j, err := s.Store.Job(ctx, id)
	return s.openedJob(ctx, j, err)
}

// ClaimJob claims the job; one claimed that then does not open is returned
// with its values withheld and an error that is dsr.ErrUnreadable, so that
// the worker, which holds the claim, records it as failed for good.
func (s *Store) ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error) {
	j, err := s.Store.ClaimJob(ctx, id, lease)
	if err != nil {
		return j, err
	}
	if err := s.openJob(ctx, j); err != nil {
		withholdJob(j)
		return j, err
	}
	return j, nil
}

func (s *Store) EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) error {
	var k skipped
	err := s.Store.EachStaleJob(ctx, before, now, func(j *dsr.Job) error {
		if err := s.openJob(ctx, j); err != nil {
			// Given all the same, with its values withheld: the sweep
			// queues it by id; ClaimJob then fails on it.
			k.add(err)
			for i := range j.Identities { // the sweep reads the kinds only
				j.Identities[i].Value = ""
			}
			j.Answer = nil
		}
		return fn(j)
	})
	return k.join("jobs", err)
}

// AnswerJob seals answer under the data key of the job's request. It
// checks the answer's size itself: the driver gets the sealed, longer one.
func (s *Store) AnswerJob(ctx context.Context, jobID, handle string, answer []byte) error {
	if len(answer) == 0 || len(answer) > dsr.MaxAnswer {
		return dsr.ErrAnswerSize
	}
	dk, purged, err := s.requestKeyOr(ctx, dsr.JobRequestID(jobID), "d:")
	if errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("job %s: %w", jobID, dsr.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("job %s: data key: %w", jobID, err)
	}
	if purged { // nothing personal is kept for it any more
		return fmt.Errorf("job %s: its request's identities were purged: %w", jobID, dsr.ErrJobNotWaiting)
	}
	if dk != nil {
		if answer, err = envelope.Seal(dk, answer, aad(fieldAnswer, jobID)); err != nil {
			return fmt.Errorf("job %s: seal answer: %w", jobID, err)
		}
	}
	return s.Store.AnswerJob(ctx, jobID, handle, answer)
}
