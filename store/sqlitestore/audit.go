package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// AppendAudit appends an event to request requestID's chain and returns it,
// in one transaction: appends to one chain are linear, even from several
// processes, because each holds the write lock from reading the chain's
// last event to inserting the next.
func (s *Store) AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error) {
	if err := dsr.CheckAuditInput(requestID, actor, kind, data); err != nil {
		return nil, err
	}
	var e *dsr.AuditEvent
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		e, err = s.appendAudit(ctx, tx, requestID, actor, kind, data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: append to %s: %w", requestID, err)
	}
	return e, nil
}

// appendAudit appends an event within tx.
func (s *Store) appendAudit(ctx context.Context, tx execer, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error) {
	var last dsr.AuditEvent
	err := tx.QueryRowContext(ctx, `SELECT seq, json_extract(doc, '$.hash') FROM audit_events WHERE request_id = ? ORDER BY seq DESC LIMIT 1`, requestID).
		Scan(&last.Seq, &last.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read the chain: %w", err)
	}
	e := &dsr.AuditEvent{RequestID: requestID, Seq: last.Seq + 1, At: s.now(), Actor: actor, Kind: kind, PrevHash: last.Hash}
	if len(data) > 0 { // without data, stored without it; hashed as {} either way
		e.Data = maps.Clone(data)
	}
	e.ID = dsr.AuditEventID(requestID, e.Seq)
	e.Hash = e.ComputeHash()
	doc, err := encode(e)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, request_id, seq, doc) VALUES (?,?,?,?)`, e.ID, e.RequestID, e.Seq, doc); err != nil {
		return nil, err
	}
	return e, nil
}

// catchUp appends the audit events of r's history entries beyond
// r.Audited within tx and marks them copied, as the transaction that added
// them writes r. An entry the audit chain refuses (dsr.CheckAuditInput)
// stays due, for the sweep to report.
func (s *Store) catchUp(ctx context.Context, tx execer, r *dsr.Request) error {
	for ; r.Audited < len(r.History); r.Audited++ {
		e := dsr.HistoryEvent(r, r.Audited)
		if dsr.CheckAuditInput(r.ID, e.Actor, e.Kind, e.Data) != nil {
			r.AuditDue = true
			return nil
		}
		if _, err := s.appendAudit(ctx, tx, r.ID, e.Actor, e.Kind, e.Data); err != nil {
			return err
		}
	}
	r.AuditDue = false
	return nil
}

// CatchUpAudit copies the history entries of r beyond r.Audited into the
// audit chain and marks them copied, in one transaction, reading r afresh:
// of two catch-ups, the second finds nothing to do.
func (s *Store) CatchUpAudit(ctx context.Context, r *dsr.Request) error {
	_, err := s.update(ctx, r.ID, func(d *requestDoc) error {
		if !d.AuditDue && d.Audited == len(d.History) {
			return errNoChange
		}
		for i := d.Audited; i < len(d.History); i++ {
			e := dsr.HistoryEvent(&d.Request, i)
			if err := dsr.CheckAuditInput(d.ID, e.Actor, e.Kind, e.Data); err != nil {
				return err
			}
		}
		return nil // update catches up
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// EachAuditDue calls fn for every request whose audit chain is behind its
// history since before.
func (s *Store) EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return s.eachRequest(ctx, "requests audit due", `audit_due = 1 AND updated_at < ?`, []any{ms(before)}, "updated_at", fn)
}

// AuditTrail returns a request's events in seq order (none when it has no
// chain).
func (s *Store) AuditTrail(ctx context.Context, requestID string) ([]dsr.AuditEvent, error) {
	out, err := scanAll[dsr.AuditEvent](s.r.QueryContext(ctx, `SELECT doc FROM audit_events WHERE request_id = ? ORDER BY seq`, requestID))
	if err != nil {
		return nil, fmt.Errorf("audit: read the chain of %s: %w", requestID, err)
	}
	return out, nil
}

// EachAuditChain calls fn with every request's chain, request by request
// (in request id order), each chain in seq order, ready for VerifyChain.
// It reads by event id (the primary key, "<request id>:<seq>"), 100 events
// at a time, holding one chain in memory; an event whose request_id field
// was changed stays in the chain its id puts it in, where VerifyChain
// reports it.
func (s *Store) EachAuditChain(ctx context.Context, fn func(requestID string, events []dsr.AuditEvent) error) error {
	g := dsr.NewChainGrouper(fn)
	err := eachDoc(ctx, s.r, `SELECT id, doc FROM audit_events WHERE id > ? ORDER BY id LIMIT `+fmt.Sprint(batch), nil, func(e *dsr.AuditEvent) error {
		return g.Add(*e)
	})
	if err != nil {
		return fmt.Errorf("audit: scan: %w", err)
	}
	return g.Flush()
}
