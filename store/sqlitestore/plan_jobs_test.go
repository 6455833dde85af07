package sqlitestore

import (
	"context"
	"strings"
	"testing"
)

// TestJobQueriesUseIndexes: every query of jobs.go, export.go,
// idempotency.go and stats.go, as they compose it, searches an index
// (EXPLAIN QUERY PLAN names no SCAN of a table). Keep the list in step
// with those files.
func TestJobQueriesUseIndexes(t *testing.T) {
	s := openTest(t)
	page := func(q, col string) string {
		return q + ` AND (` + col + `, id) > (?, ?) ORDER BY ` + col + `, id LIMIT 100`
	}
	queries := []string{
		// jobs.go
		`SELECT doc FROM jobs WHERE id = ?`,
		`UPDATE jobs SET doc = ? WHERE id = ?`,
		`SELECT doc FROM jobs WHERE request_id = ? ORDER BY id`,
		`SELECT status, COUNT(*) FROM jobs WHERE request_id = ? GROUP BY status`,
		`SELECT doc FROM jobs WHERE request_id = ? AND status = ? ORDER BY id`,
		`SELECT doc FROM jobs WHERE request_id = ? AND status IN (?, ?, ?) ORDER BY id`,
		page(`SELECT updated_at, id, doc FROM jobs WHERE status = ? AND updated_at < ?`, "updated_at"),
		page(`SELECT lease_until, id, doc FROM jobs WHERE status = ? AND lease_until < ?`, "lease_until"),
		page(`SELECT poll_at, id, doc FROM jobs WHERE status = ? AND poll_at <= ?`, "poll_at"),
		// export.go
		`DELETE FROM export_records WHERE job_id = ?`,
		`SELECT seq, collection, data FROM export_records WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		// idempotency.go
		`SELECT doc FROM idempotency_keys WHERE id = ?`,
		// stats.go
		`SELECT status, type, regulation, COUNT(*) FROM requests WHERE status IN (?,?,?) GROUP BY status, type, regulation`,
		`SELECT type, regulation, COUNT(*) FROM requests WHERE status IN (?,?,?) AND due_at < ? AND paused_at IS NULL GROUP BY type, regulation`,
		`SELECT connector, action, COUNT(*) FROM jobs WHERE status = ? GROUP BY connector, action`,
		page(`SELECT closed_at, id, type, regulation, received_at FROM requests WHERE status = ? AND closed_at >= ?`, "closed_at"),
		page(`SELECT finished_at, id, connector, action, status, created_at FROM jobs WHERE finished_at >= ?`, "finished_at"),
		`SELECT type, regulation, status, received_at, due_at, closed_at, coalesce(json_extract(doc, '$.denial_basis'), ''), paused_at
			FROM requests WHERE received_at >= ? AND received_at < ?`,
	}
	for _, q := range queries {
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = 1
		}
		rows, err := s.w.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("%s\nscans: %v", q, plan)
			}
		}
		if len(plan) == 0 {
			t.Errorf("%s: no plan", q)
		}
	}
}
