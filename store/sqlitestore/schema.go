package sqlitestore

// The status sets of the partial indexes, as SQL lists: the queries that
// use an index repeat its list (a test checks them against package dsr).
const (
	// openStatusesSQL is dsr.OverdueStatuses: every open status.
	openStatusesSQL = `('received','verifying','verified','awaiting_approval','in_progress','needs_attention','duplicate')`
	// closedStatusesSQL is dsr.ClosedStatuses.
	closedStatusesSQL = `('completed','denied','cancelled','expired')`
)

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
	reminded          TEXT NOT NULL, -- the reminders sent, ",7,2," (see remindedColumn)
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
CREATE INDEX IF NOT EXISTS requests_notices_due ON requests (updated_at) WHERE notices > 0;
CREATE INDEX IF NOT EXISTS requests_audit_due_updated ON requests (audit_due, updated_at) WHERE audit_due = 1;
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at);
-- The counts (CountRequests, CountOverdue: the metrics and the console's
-- dashboard) read these alone, never a request's row.
CREATE INDEX IF NOT EXISTS requests_counts ON requests (status, type, regulation);
CREATE INDEX IF NOT EXISTS requests_overdue_counts ON requests (status, due_at, type, regulation) WHERE paused_at IS NULL;
-- Newest first under one filter (ListRequests; status and type above).
CREATE INDEX IF NOT EXISTS requests_regulation_id ON requests (regulation, id);
CREATE INDEX IF NOT EXISTS requests_source_id ON requests (source, id);
CREATE INDEX IF NOT EXISTS requests_assignee_id ON requests (assigned_to, id);
-- Partial indexes hold only the requests a query may still want: their
-- conditions are the fields a request loses once acted on (its clock
-- paused, marked overdue, closed, purged), so a list or a check with
-- nothing to find examines nothing. A query uses one only when its WHERE
-- repeats the index's terms word for word: the status lists are the
-- constants below, in both.
-- The overdue list: open, the clock running, by due date.
CREATE INDEX IF NOT EXISTS requests_running_due_id ON requests (due_at, id)
	WHERE paused_at IS NULL AND status IN ` + openStatusesSQL + `;
-- The reminders and the escalation (EachToRemind, EachToEscalate): open,
-- the clock running, not yet marked overdue; with the reminders sent, so
-- that a reminder already sent is skipped in the index.
CREATE INDEX IF NOT EXISTS requests_checks_due ON requests (due_at, id, reminded)
	WHERE overdue_at IS NULL AND paused_at IS NULL AND status IN ` + openStatusesSQL + `;
-- Retention (EachExportsToPurge, EachIdentitiesToPurge): closed, by when,
-- not yet purged.
CREATE INDEX IF NOT EXISTS requests_checks_exports ON requests (closed_at, id)
	WHERE exports_purged_at IS NULL AND type = 'access' AND status IN ` + closedStatusesSQL + `;
CREATE INDEX IF NOT EXISTS requests_checks_identities ON requests (closed_at, id)
	WHERE purged_at IS NULL AND status IN ` + closedStatusesSQL + `;

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

-- export_records is a table with rowids, not WITHOUT ROWID: its records
-- are sealed chunks of up to about 87 KiB (store/sealedstore), and a WITHOUT
-- ROWID table's b-tree compares keys whose cells overflow by reading each
-- such cell whole, tens of times an insert. Its primary key is then an
-- index of its own, of small keys. Files made when it was WITHOUT ROWID
-- have it rebuilt at their first start (Store.upgradeExportRecords).
CREATE TABLE IF NOT EXISTS export_records (
	job_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	collection TEXT NOT NULL,
	data       TEXT NOT NULL,
	PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS export_records_request ON export_records (request_id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
	id  TEXT PRIMARY KEY,
	doc TEXT NOT NULL
) WITHOUT ROWID;

-- The suppression list (suppressions.go): one row per hash and scope, its
-- fields as columns (no document: the change feed reads every entry at a
-- checker's start and each full reload, and columns cost no decoding).
-- Times are Unix milliseconds; lifted_at is NULL while the entry is active.
-- The rows are kept in change-feed order, (updated_at, id), so that the
-- feed reads the table in order, page after page, and new entries are
-- appended. An entry is found by id, its unique index: by Suppress,
-- LiftSuppressions, and Suppressions, which looks a hash up under each
-- scope (no index of its own on hash: one random insert fewer per entry).
CREATE TABLE IF NOT EXISTS suppressions (
	id          TEXT NOT NULL UNIQUE, -- hash "|" scope
	hash        TEXT NOT NULL,
	scope       TEXT NOT NULL,
	source      TEXT NOT NULL,
	request_id  TEXT NOT NULL,
	partner     TEXT NOT NULL,
	at          INTEGER NOT NULL,
	lifted_at   INTEGER,
	lifted_by   TEXT NOT NULL,
	lift_reason TEXT NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (updated_at, id)
) WITHOUT ROWID;

-- The consent history: one row per event, and one per hash it concerns
-- (an event concerns several), by which a person's history is found,
-- oldest first.
CREATE TABLE IF NOT EXISTS consent_events (
	id  TEXT PRIMARY KEY,
	at  INTEGER NOT NULL,
	doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consent_hashes (
	hash     TEXT NOT NULL,
	at       INTEGER NOT NULL,
	event_id TEXT NOT NULL,
	PRIMARY KEY (hash, at, event_id)
) WITHOUT ROWID;

-- Removals from segments, read by (at, id) pages for the report.
CREATE TABLE IF NOT EXISTS segment_removals (
	id  TEXT PRIMARY KEY,
	at  INTEGER NOT NULL,
	doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segment_removals_at_id ON segment_removals (at, id);

CREATE TABLE IF NOT EXISTS health (
	id TEXT PRIMARY KEY,
	at INTEGER NOT NULL
) WITHOUT ROWID;
`
