package sealedstore

import (
	"bytes"
	"context"
	"encoding/json"
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

// NewExportWriter seals every record under the export key of the job's
// request: into the store's export records, or into one object per job
// when an object store is configured (see objects.go).
func (s *Store) NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error) {
	xk, purged, err := s.requestKeyOr(ctx, job.RequestID, "x:")
	if err != nil {
		return nil, fmt.Errorf("job %s: export key: %w", job.ID, err)
	}
	if purged {
		return nil, fmt.Errorf("job %s: its request's exports were purged: no export is kept for it", job.ID)
	}
	if xk != nil && s.objects != nil {
		return s.newObjectWriter(ctx, job, xk)
	}
	w, err := s.Store.NewExportWriter(ctx, job)
	if err != nil || xk == nil {
		return w, err
	}
	return &exportWriter{ExportWriter: w, key: xk, jobID: job.ID}, nil
}

// exportWriter seals each record before the driver's writer stores it,
// and ends the export with a sealed end record (collection endCollection)
// that counts them, so that a reader can tell an export cut short.
type exportWriter struct {
	dsr.ExportWriter
	key   *envelope.DataKey
	jobID string
	buf   bytes.Buffer
	n     int // records stored
	ended bool
}

// endCollection is the collection of an export's end record: no system's
// collection is named so.
const endCollection = "\x00end"

// exportEnd is the content of an export's end record.
type exportEnd struct {
	Records int `json:"records"`
}

func (w *exportWriter) Flush(ctx context.Context) error {
	if !w.ended {
		if err := w.write(ctx, endCollection, exportEnd{Records: w.n}); err != nil {
			return err
		}
		w.ended = true
	}
	return w.ExportWriter.Flush(ctx)
}

func (w *exportWriter) WriteRecord(ctx context.Context, collection string, doc any) error {
	if w.ended || collection == endCollection {
		return fmt.Errorf("export record in %q: after the export's end", collection)
	}
	return w.write(ctx, collection, doc)
}

func (w *exportWriter) write(ctx context.Context, collection string, doc any) error {
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false) // as the drivers store records: characters as given
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("export record in %s: not JSON-encodable: %w", collection, err)
	}
	c, err := envelope.Seal(w.key, bytes.TrimSuffix(w.buf.Bytes(), []byte("\n")), aadExport(w.jobID, collection, w.n+1))
	if err != nil {
		return err
	}
	if err := w.ExportWriter.WriteRecord(ctx, collection, b64.EncodeToString(c)); err != nil {
		return err
	}
	w.n++ // as the driver numbers what it took
	return nil
}

// EachExportRecord opens each record of job jobID's export under its
// request's export key. Records stored in clear (a request in clear) are
// passed as they are.
func (s *Store) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error {
	xk, err := s.requestKey(ctx, dsr.JobRequestID(jobID), "x:")
	if errors.Is(err, dsr.ErrNotFound) {
		return s.Store.EachExportRecord(ctx, jobID, fn) // as the driver answers an unknown job
	}
	if err != nil {
		return fmt.Errorf("job %s: export key: %w", jobID, err)
	}
	if xk == nil {
		n := 0
		return s.Store.EachExportRecord(ctx, jobID, func(collection string, data json.RawMessage) error {
			n++
			var v string
			if json.Unmarshal(data, &v) == nil && looksSealed(v) {
				return fmt.Errorf("job %s: export record %d: %w", jobID, n, errNoDataKey)
			}
			return fn(collection, data)
		})
	}
	if s.objects != nil {
		if missing, err := s.eachObjectRecord(ctx, jobID, xk, fn); !missing {
			return err
		}
	}
	n, ended := 0, false
	err = s.Store.EachExportRecord(ctx, jobID, func(collection string, data json.RawMessage) error {
		n++
		if ended {
			return fmt.Errorf("job %s: export record %d: after the export's end", jobID, n)
		}
		// A JSON string of base64, which needs no escapes: its quotes go.
		if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
			return fmt.Errorf("job %s: export record %d: not sealed", jobID, n)
		}
		c, err := b64.DecodeString(string(data[1 : len(data)-1]))
		if err != nil {
			return fmt.Errorf("job %s: export record %d: not sealed (base64)", jobID, n)
		}
		plain, err := envelope.Open(xk, c, aadExport(jobID, collection, n))
		if err != nil {
			return fmt.Errorf("job %s: export record %d: %w", jobID, n, err)
		}
		if collection == endCollection {
			var end exportEnd
			if err := json.Unmarshal(plain, &end); err != nil || end.Records != n-1 {
				return fmt.Errorf("job %s: export record %d: the end record does not count the records before it", jobID, n)
			}
			ended = true
			return nil
		}
		return fn(collection, plain)
	})
	switch {
	case err != nil:
	case n == 0:
		// Every sealed export that succeeded has an object, or an end
		// record here: one that has neither is lost, not empty.
		err = s.exportLost(ctx, jobID)
	case !ended:
		err = fmt.Errorf("job %s: export cut short: %d records and no end record (records deleted, or the export never finished)", jobID, n)
	}
	return err
}

// exportLost returns the error for job jobID's export found neither in the
// bucket nor in the store: none for a job that has not exported (not an
// export, or not succeeded).
func (s *Store) exportLost(ctx context.Context, jobID string) error {
	j, err := s.Store.Job(ctx, jobID)
	if errors.Is(err, dsr.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
		return nil
	}
	if s.objects != nil {
		return fmt.Errorf("job %s: %w: no export object %s in the bucket and no export records in the store (the object deleted, or the bucket?)", jobID, dsr.ErrUnreadable, objectName(jobID))
	}
	return fmt.Errorf("job %s: %w: no export records, not even an end record (records deleted, or the export kept in a bucket no longer configured: DSAR_EXPORT_S3_*)", jobID, dsr.ErrUnreadable)
}
