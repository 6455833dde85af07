package sqlitestore

// schema creates every table and index the store uses; each statement is
// idempotent. Times are Unix milliseconds (UTC), as MongoDB keeps them.
// Columns are derived from the document on every write (see columnsOf); the
// document is the truth.
const schema = `
CREATE TABLE IF NOT EXISTS requests (
	id                TEXT PRIMARY KEY,
	status            TEXT NOT NULL,
	type              TEXT NOT NULL,
	regulation        TEXT NOT NULL,
	source            TEXT NOT NULL,
	assigned_to       TEXT NOT NULL,
	appeal_of         TEXT NOT NULL,
	received_at       INTEGER NOT NULL,
	due_at            INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	closed_at         INTEGER,
	paused_at         INTEGER,
	overdue_at        INTEGER,
	exports_purged_at INTEGER,
	purged_at         INTEGER,
	fanned_out_at     INTEGER,
	audit_due         INTEGER NOT NULL,
	notices           INTEGER NOT NULL,
	doc               TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_status_id ON requests (status, id);
CREATE INDEX IF NOT EXISTS requests_type_id ON requests (type, id);
CREATE INDEX IF NOT EXISTS requests_due_id ON requests (due_at, id);
CREATE INDEX IF NOT EXISTS requests_status_due_id ON requests (status, due_at, id);
CREATE INDEX IF NOT EXISTS requests_type_due_id ON requests (type, due_at, id);
CREATE INDEX IF NOT EXISTS requests_regulation_due_id ON requests (regulation, due_at, id);
CREATE INDEX IF NOT EXISTS requests_source_due_id ON requests (source, due_at, id);
CREATE INDEX IF NOT EXISTS requests_assignee_due_id ON requests (assigned_to, due_at, id);
CREATE INDEX IF NOT EXISTS requests_status_updated ON requests (status, updated_at);
CREATE INDEX IF NOT EXISTS requests_status_closed ON requests (status, closed_at);
CREATE INDEX IF NOT EXISTS requests_notices_updated ON requests (notices, updated_at) WHERE notices > 0;
CREATE INDEX IF NOT EXISTS requests_audit_due_updated ON requests (audit_due, updated_at) WHERE audit_due = 1;
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at);

-- The blind index of a request's identities (proven = 0) and of the ones
-- it stands on (proven = 1), one row per hash: what finds requests by
-- identity.
CREATE TABLE IF NOT EXISTS request_hashes (
	hash       TEXT NOT NULL,
	proven     INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	PRIMARY KEY (hash, proven, request_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS request_hashes_request ON request_hashes (request_id);

CREATE TABLE IF NOT EXISTS jobs (
	id          TEXT PRIMARY KEY,
	request_id  TEXT NOT NULL,
	connector   TEXT NOT NULL,
	action      TEXT NOT NULL,
	status      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	lease_until INTEGER,
	poll_at     INTEGER,
	finished_at INTEGER,
	doc         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_request_id ON jobs (request_id, id);
-- A request's jobs by status: settling, retrying, purging their identities.
CREATE INDEX IF NOT EXISTS jobs_request_status ON jobs (request_id, status, id);
-- The sweep's stale jobs, each read by (time, id) pages.
CREATE INDEX IF NOT EXISTS jobs_status_updated ON jobs (status, updated_at, id);
CREATE INDEX IF NOT EXISTS jobs_status_lease ON jobs (status, lease_until, id);
CREATE INDEX IF NOT EXISTS jobs_status_poll ON jobs (status, poll_at, id);
-- Waiting jobs counted by connector and action, from the index alone.
CREATE INDEX IF NOT EXISTS jobs_status_connector_action ON jobs (status, connector, action);
-- Job outcomes since a time, for the metrics, by (finished_at, id) pages.
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at, id) WHERE finished_at IS NOT NULL;

-- Statistics (stats.go): requests counted by status, type and regulation
-- from the index alone. (Completions are read by (closed_at, id) pages on
-- requests_status_closed, whose entries end with the primary key.)
CREATE INDEX IF NOT EXISTS requests_status_type_regulation ON requests (status, type, regulation);

CREATE TABLE IF NOT EXISTS audit_events (
	id         TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	doc        TEXT NOT NULL,
	UNIQUE (request_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS export_records (
	job_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	collection TEXT NOT NULL,
	data       TEXT NOT NULL,
	PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS export_records_request ON export_records (request_id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
	id  TEXT PRIMARY KEY,
	doc TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS health (
	id TEXT PRIMARY KEY,
	at INTEGER NOT NULL
) WITHOUT ROWID;
`
