package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

var _ store.Copier = (*Store)(nil)

// copyBatch is how many rows one read of EachDocument takes.
const copyBatch = 500

// copyTables are the tables of the collections a copy moves whose key is
// their id column (export records are keyed by job id and seq).
var copyTables = map[string]bool{store.Requests: true, store.Jobs: true, store.Audit: true, store.Idempotency: true,
	store.SuppressionList: true, store.ConsentEvents: true, store.Removals: true}

// checkCollection refuses a name that is none of store.Collections (the
// name goes into SQL text).
func checkCollection(collection string) error {
	if copyTables[collection] || collection == store.ExportRecords {
		return nil
	}
	return fmt.Errorf("copy: no collection %q", collection)
}

// Count returns how many documents collection holds.
func (s *Store) Count(ctx context.Context, collection string) (int64, error) {
	if err := checkCollection(collection); err != nil {
		return 0, err
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+collection).Scan(&n); err != nil && !missingTable(err) {
		return 0, fmt.Errorf("count %s: %w", collection, err)
	}
	return n, nil
}

// missingTable reports whether err is SQLite's for a table that does not
// exist: a collection added after the file was last opened to write, in a
// file opened ReadOnly (dsar migrate's source), which is not given the
// schema. The copy reads such a collection as empty.
func missingTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// copyRecord is an export record as a document, in the form MongoDB keeps
// it (without its _id).
type copyRecord struct {
	JobID      string `bson:"job_id"`
	RequestID  string `bson:"request_id"`
	Collection string `bson:"collection"`
	Seq        int64  `bson:"seq"`
	Data       string `bson:"data"`
}

// EachDocument calls fn for every document of collection whose key sorts
// after after ("" for all), in key order, reading copyBatch rows at a time
// by key (no read stays open while fn runs). The documents are the bson
// form of what the store keeps: a request with its job counts, a job, an
// audit event (its seq and hash as stored), an idempotency record, an
// export record keyed by store.ExportRecordKey, a suppression entry (from
// its columns), a consent event, a removal.
func (s *Store) EachDocument(ctx context.Context, collection, after string, fn func(key string, doc bson.Raw) error) error {
	if err := checkCollection(collection); err != nil {
		return err
	}
	type item struct {
		key string
		doc bson.Raw
	}
	var job string
	seq := int64(-1)
	if collection == store.ExportRecords && after != "" {
		var err error
		if job, seq, err = store.ParseExportRecordKey(after); err != nil {
			return err
		}
	}
	for {
		var (
			rows *sql.Rows
			err  error
		)
		switch collection {
		case store.ExportRecords:
			rows, err = s.r.QueryContext(ctx, `SELECT job_id, seq, request_id, collection, data FROM export_records
				WHERE (job_id, seq) > (?, ?) ORDER BY job_id, seq LIMIT ?`, job, seq, copyBatch)
		case store.SuppressionList: // columns, no document
			rows, err = s.r.QueryContext(ctx, `SELECT `+suppressionColumns+` FROM suppressions WHERE id > ? ORDER BY id LIMIT ?`, after, copyBatch)
		default:
			rows, err = s.r.QueryContext(ctx, `SELECT id, doc FROM `+collection+` WHERE id > ? ORDER BY id LIMIT ?`, after, copyBatch)
		}
		if missingTable(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("copy: read %s: %w", collection, err)
		}
		var page []item
		for rows.Next() {
			var it item
			switch collection {
			case store.SuppressionList:
				var e *dsr.Suppression
				if e, err = scanSuppression(rows); err == nil {
					it.key, after = e.ID, e.ID
					it.doc, err = bson.Marshal(e)
				}
			case store.ExportRecords:
				var r copyRecord
				err = rows.Scan(&r.JobID, &r.Seq, &r.RequestID, &r.Collection, &r.Data)
				if err == nil {
					it.key = store.ExportRecordKey(r.JobID, r.Seq)
					job, seq = r.JobID, r.Seq
					it.doc, err = bson.Marshal(r)
				}
			default:
				var doc string
				err = rows.Scan(&it.key, &doc)
				if err == nil {
					after = it.key
					it.doc, err = documentOf(collection, doc)
				}
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("copy: read %s: %w", collection, err)
			}
			page = append(page, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("copy: read %s: %w", collection, err)
		}
		for _, it := range page {
			if err := fn(it.key, it.doc); err != nil {
				return err
			}
		}
		if len(page) < copyBatch {
			return nil
		}
	}
}

// documentOf is the bson form of a document column of collection: decoded
// through its type, so that its fields have the types MongoDB keeps (an
// Extended JSON number does not say whether it was an int32 or an int64).
func documentOf(collection, doc string) (bson.Raw, error) {
	var v any
	switch collection {
	case store.Requests:
		v = new(requestDoc)
	case store.Jobs:
		v = new(dsr.Job)
	case store.Audit:
		v = new(dsr.AuditEvent)
	case store.ConsentEvents:
		v = new(dsr.ConsentEvent)
	case store.Removals:
		v = new(dsr.Removal)
	default: // idempotency records: strings and a date
		v = new(bson.D)
	}
	if err := decode(doc, v); err != nil {
		return nil, err
	}
	return bson.Marshal(v)
}

// LastKey returns the key of collection's last document in key order, ""
// when it has none: where a copy into this store that stopped goes on.
func (s *Store) LastKey(ctx context.Context, collection string) (string, error) {
	if err := checkCollection(collection); err != nil {
		return "", err
	}
	// max() of a key's first column is one search of the primary key.
	var key sql.NullString
	var seq sql.NullInt64
	var err error
	if collection == store.ExportRecords {
		err = s.r.QueryRowContext(ctx, `SELECT job_id, max(seq) FROM export_records
			WHERE job_id = (SELECT max(job_id) FROM export_records)`).Scan(&key, &seq)
	} else {
		err = s.r.QueryRowContext(ctx, `SELECT max(id) FROM `+collection).Scan(&key)
	}
	switch {
	case missingTable(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("copy: last of %s: %w", collection, err)
	case !key.Valid:
		return "", nil
	case collection == store.ExportRecords:
		return store.ExportRecordKey(key.String, seq.Int64), nil
	}
	return key.String, nil
}

// HasKey reports whether collection holds the document with key.
func (s *Store) HasKey(ctx context.Context, collection, key string) (bool, error) {
	if err := checkCollection(collection); err != nil {
		return false, err
	}
	has, err := hasKey(ctx, s.r, collection, key)
	if err != nil && !missingTable(err) {
		return false, fmt.Errorf("copy: find in %s: %w", collection, err)
	}
	return has, nil
}

// hasKey reports whether collection (checked) holds key.
func hasKey(ctx context.Context, q querier, collection, key string) (bool, error) {
	var has bool
	if collection == store.ExportRecords {
		job, seq, err := store.ParseExportRecordKey(key)
		if err != nil {
			return false, err
		}
		err = q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM export_records WHERE job_id = ? AND seq = ?)`, job, seq).Scan(&has)
		return has, err
	}
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+collection+` WHERE id = ?)`, key).Scan(&has)
	return has, err
}

// PutDocuments stores docs (in the form EachDocument gives, as either
// driver keeps them) in collection, in one transaction, leaving any whose
// key is stored already as it is. An audit event goes in with its seq and
// hash unchanged; an export record's _id, if it has one, is dropped, and a
// record stored as a BSON document (MongoDB, before records were JSON)
// becomes its relaxed Extended JSON, as exports render it. It returns how
// many it stored.
func (s *Store) PutDocuments(ctx context.Context, collection string, docs []bson.Raw) (int, error) {
	if err := checkCollection(collection); err != nil {
		return 0, err
	}
	var stored int
	err := s.write(ctx, func(tx *wtx) error {
		stored = 0
		for i, doc := range docs {
			ok, err := putDocument(ctx, tx, collection, doc)
			if err != nil {
				return fmt.Errorf("document %d: %w", i, err)
			}
			if ok {
				stored++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("copy: store into %s: %w", collection, err)
	}
	return stored, nil
}

// putDocument stores doc into collection (checked) within tx unless its key
// is taken, and reports whether it stored it.
func putDocument(ctx context.Context, tx execer, collection string, doc bson.Raw) (bool, error) {
	switch collection {
	case store.Requests:
		d := new(requestDoc)
		if err := bson.Unmarshal(doc, d); err != nil {
			return false, fmt.Errorf("decode request: %w", err)
		}
		if has, err := hasKey(ctx, tx, collection, d.ID); err != nil || has {
			return false, err
		}
		return true, insertRequest(ctx, tx, d)
	case store.Jobs:
		j := new(dsr.Job)
		if err := bson.Unmarshal(doc, j); err != nil {
			return false, fmt.Errorf("decode job: %w", err)
		}
		if has, err := hasKey(ctx, tx, collection, j.ID); err != nil || has {
			return false, err
		}
		return true, insertJob(ctx, tx, j)
	case store.Audit:
		e := new(dsr.AuditEvent)
		if err := bson.Unmarshal(doc, e); err != nil {
			return false, fmt.Errorf("decode audit event: %w", err)
		}
		text, err := encode(e)
		if err != nil {
			return false, err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, request_id, seq, doc) VALUES (?,?,?,?) ON CONFLICT DO NOTHING`,
			e.ID, e.RequestID, e.Seq, text)
		return inserted(res, err)
	case store.SuppressionList:
		e := new(dsr.Suppression)
		if err := bson.Unmarshal(doc, e); err != nil {
			return false, fmt.Errorf("decode suppression: %w", err)
		}
		return insertSuppression(ctx, tx, e)
	case store.ConsentEvents:
		e := new(dsr.ConsentEvent)
		if err := bson.Unmarshal(doc, e); err != nil {
			return false, fmt.Errorf("decode consent event: %w", err)
		}
		return insertConsentEvent(ctx, tx, e)
	case store.Removals:
		r := new(dsr.Removal)
		if err := bson.Unmarshal(doc, r); err != nil {
			return false, fmt.Errorf("decode removal: %w", err)
		}
		return insertRemoval(ctx, tx, r)
	case store.Idempotency:
		id, ok := doc.Lookup("_id").StringValueOK()
		if !ok {
			return false, errors.New("an idempotency record whose _id is not a string")
		}
		text, err := encode(doc)
		if err != nil {
			return false, err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (id, doc) VALUES (?,?) ON CONFLICT DO NOTHING`, id, text)
		return inserted(res, err)
	default: // store.ExportRecords
		job, ok := doc.Lookup("job_id").StringValueOK()
		req, ok2 := doc.Lookup("request_id").StringValueOK()
		coll, ok3 := doc.Lookup("collection").StringValueOK()
		seq, ok4 := doc.Lookup("seq").AsInt64OK()
		data, ok5 := recordText(doc.Lookup("data"))
		if !ok || !ok2 || !ok3 || !ok4 || !ok5 {
			return false, errors.New("a malformed export record")
		}
		if has, err := hasKey(ctx, tx, collection, store.ExportRecordKey(job, seq)); err != nil || has {
			return false, err
		}
		return true, insertExportRecord(ctx, tx, job, req, coll, seq, data)
	}
}

// inserted reports whether an INSERT ... ON CONFLICT DO NOTHING stored its
// row.
func inserted(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// recordText is an export record's data as JSON text: its text, or for a
// record MongoDB stored as a BSON document, the document's relaxed Extended
// JSON (as mongostore renders it).
func recordText(v bson.RawValue) (string, bool) {
	if text, ok := v.StringValueOK(); ok {
		return text, true
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return "", false
	}
	js, err := bson.MarshalExtJSON(doc, false, false)
	return string(js), err == nil
}
