package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dsar-project/dsar/store"
)

// keysBatch is how many requests one read of EachWrappedKeys returns.
const keysBatch = 500

// EachWrappedKeys calls fn with the wrapped data keys of every request that
// holds one, in id order, ids after after ("" for all), reading in batches.
func (s *Store) EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error {
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT id, coalesce(json_extract(doc, '$.data_key'), ''), coalesce(json_extract(doc, '$.export_key'), '')
			FROM requests WHERE id > ? AND (json_extract(doc, '$.data_key') IS NOT NULL OR json_extract(doc, '$.export_key') IS NOT NULL)
			ORDER BY id LIMIT ?`, after, keysBatch)
		if err != nil {
			return fmt.Errorf("wrapped keys: %w", err)
		}
		type row struct{ id, data, export string }
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data, &r.export); err != nil {
				_ = rows.Close()
				return fmt.Errorf("wrapped keys: %w", err)
			}
			batch = append(batch, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("wrapped keys: %w", err)
		}
		for _, r := range batch {
			if err := fn(r.id, r.data, r.export); err != nil {
				return err
			}
		}
		if len(batch) < keysBatch {
			return nil
		}
		after = batch[len(batch)-1].id
	}
}

// SwapWrappedKeys replaces request id's wrapped keys, in one transaction,
// as [store.WrappedKeys] says.
func (s *Store) SwapWrappedKeys(ctx context.Context, id, oldData, newData, oldExport, newExport string) (bool, error) {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.DataKey != oldData || d.ExportKey != oldExport {
			return errNoChange
		}
		if d.DataKey != "" && newData != "" {
			d.DataKey = newData
		}
		if d.ExportKey != "" && newExport != "" {
			d.ExportKey = newExport
		}
		return nil
	})
	return changed("swap wrapped keys", err)
}

// SwapHashes replaces request id's blind-index hashes, with its rows of
// request_hashes, in one transaction, as [store.IndexHashes] says.
func (s *Store) SwapHashes(ctx context.Context, id string, from, to store.Hashes) (bool, error) {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if !slices.Equal(d.IdentityHashes, from.Identity) || !slices.Equal(d.ProvenHashes, from.Proven) {
			return errNoChange
		}
		d.IdentityHashes, d.ProvenHashes = to.Identity, to.Proven
		return nil
	})
	return changed("swap hashes", err)
}
