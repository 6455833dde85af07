package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// openDuplicatesQuery finds the requests whose proven identities (the
// request_hashes rows with proven = 1) hold one of the hashes of a JSON
// array (one argument, however many hashes), each request once, then
// keeps those of the types and statuses, received since, not appeals. The
// blind index's primary key (hash, proven, request_id) serves the first
// step, the requests' primary key the second.
const openDuplicatesQuery = `SELECT id, type, status, received_at, appeal_of, json_extract(doc, '$.proven_hashes') FROM requests
	WHERE id IN (SELECT request_id FROM request_hashes WHERE hash IN (SELECT value FROM json_each(?)) AND proven = 1)
	AND type IN (SELECT value FROM json_each(?)) AND status IN (SELECT value FROM json_each(?)) AND received_at >= ? AND appeal_of = ''`

// OpenDuplicates returns, in one query, every request that a new request of
// one of types, received at since or later, could be a duplicate of: open
// ones with an established identity ([dsr.DuplicateCandidates]) whose proven
// identities share one of hashes (blind-index hashes), appeals left out.
// Only the fields [dsr.PickDuplicate] reads are filled in (id, type,
// status, proven hashes, received at, appeal of). It serves a whole batch
// of filings at once; pick each one's duplicate from the result with
// PickDuplicate.
func (s *Store) OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error) {
	if len(hashes) == 0 || len(types) == 0 {
		return nil, nil
	}
	hs, err := json.Marshal(hashes)
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	ts, err := json.Marshal(types)
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	st, err := json.Marshal(dsr.DuplicateCandidates)
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, openDuplicatesQuery, string(hs), string(ts), string(st), ms(since))
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	defer rows.Close()
	var out []dsr.Request
	for rows.Next() {
		var (
			r        dsr.Request
			received int64
			proven   *string
		)
		if err := rows.Scan(&r.ID, &r.Type, &r.Status, &received, &r.AppealOf, &proven); err != nil {
			return nil, fmt.Errorf("find duplicates: %w", err)
		}
		r.ReceivedAt = time.UnixMilli(received).UTC()
		if proven != nil {
			if err := json.Unmarshal([]byte(*proven), &r.ProvenHashes); err != nil {
				return nil, fmt.Errorf("find duplicates: request %s: %w", r.ID, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	return out, nil
}
