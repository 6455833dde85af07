package bench_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
	"github.com/dsar-project/dsar/workers"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const agentKey = "bench-agent-key-0123456789"

// duplicateWindow is the served API's DSAR_DUPLICATE_WINDOW.
const duplicateWindow = 30 * 24 * time.Hour

// driver is the store the benchmarks run on: DSAR_BENCH_STORE, "sqlite"
// (the default: a new SQLite file per benchmark) or "mongo" (a new
// database on the test store of internal/testenv).
func driver() string {
	if d := os.Getenv("DSAR_BENCH_STORE"); d != "" {
		return d
	}
	return "sqlite"
}

// benchStore is a store under benchmark with what it takes to write to it
// directly, bypassing the service.
type benchStore struct {
	store.Store
	// path is the SQLite file, "" on MongoDB.
	path string
	// db is the MongoDB database, nil on SQLite.
	db *mongo.Database
}

// openStore opens a new, empty store of driver().
func openStore(b testing.TB) *benchStore {
	b.Helper()
	ctx := context.Background()
	switch d := driver(); d {
	case "sqlite":
		path := filepath.Join(b.TempDir(), "dsar.db")
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return &benchStore{Store: s, path: path}
	case "mongo":
		db := testenv.Mongo(b)
		s := mongostore.New(db, nil)
		if err := s.Prepare(ctx); err != nil {
			b.Fatal(err)
		}
		return &benchStore{Store: s, db: db}
	default:
		b.Fatalf("DSAR_BENCH_STORE=%q: want sqlite or mongo", d)
		return nil
	}
}

// index is the blind index of every benchmark.
func index(b testing.TB) *dsr.BlindIndex {
	b.Helper()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	return idx
}

// service is the agent API served in-process on a store, with a real
// queue on the test Redis (no workers unless started).
type service struct {
	b      testing.TB
	url    string
	client *http.Client
	store  *benchStore
	index  *dsr.BlindIndex
	redis  asynq.RedisClientOpt
	qname  string
	queue  *workers.Queue
	// background runs filings' dispatches after their 202, as dsar's.
	background *app.Background
}

// queued returns how many tasks the service's queues hold (the work queue
// and its notices), pending or scheduled: no workers take them here.
func (s *service) queued() int {
	s.b.Helper()
	insp := asynq.NewInspector(s.redis)
	defer insp.Close()
	known, err := insp.Queues()
	if err != nil {
		s.b.Fatalf("queues: %v", err)
	}
	n := 0
	for _, q := range []string{s.qname, workers.NoticeQueue(s.qname)} {
		if !slices.Contains(known, q) {
			continue // nothing enqueued on it yet
		}
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			s.b.Fatalf("queue %s: %v", q, err)
		}
		n += info.Size
	}
	return n
}

// settle waits for the dispatches of the requests filed so far.
func (s *service) settle() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.background.Wait(ctx); err != nil {
		s.b.Fatal(err)
	}
}

// background returns the Background dsar serves with, waited for when b
// ends (before the queue, closed by a cleanup registered earlier).
func background(b testing.TB) *app.Background {
	bg := app.NewBackground(app.BackgroundLimit)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := bg.Wait(ctx); err != nil {
			b.Error(err)
		}
	})
	return bg
}

// serve serves the API on st.
func serve(b testing.TB, st *benchStore) *service {
	b.Helper()
	r := testenv.RedisServer(b)
	qname := testenv.Queue(b, r)
	redis := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(redis, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: time.Minute})
	b.Cleanup(func() { _ = queue.Close() })
	idx := index(b)
	bg := background(b) // as dsar serves: a filing's dispatch after its 202
	h := handlers.New(handlers.Deps{
		Store: st, Queue: queue, Index: idx, Log: slog.New(slog.DiscardHandler),
		Keys:            apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte(agentKey))}),
		DuplicateWindow: duplicateWindow,
		Background:      bg,
	})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	// As many idle connections as clients, so that 64 clients do not
	// open a connection per request.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &service{b: b, url: srv.URL, client: client, store: st, index: idx, redis: redis, qname: qname, queue: queue, background: bg}
}

// call sends a request with the agent's key and returns the status and
// the body. It may be called from any goroutine.
func (s *service) call(method, path, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+agentKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// post files a request of typ for email and returns its id: an error
// unless it is answered 202. It may be called from any goroutine.
func (s *service) post(typ dsr.Type, regulation dsr.Regulation, email string) (string, error) {
	code, data, err := s.call("POST", "/v1/requests", fmt.Sprintf(`{"type":%q,"regulation":%q,"subject":{"email":%q}}`, typ, regulation, email))
	if err != nil {
		return "", err
	}
	var out struct{ ID string }
	if code != http.StatusAccepted || json.Unmarshal(data, &out) != nil || out.ID == "" {
		return "", fmt.Errorf("file: %d %s", code, data)
	}
	return out.ID, nil
}

// file is post on the benchmark's goroutine: an error fails it.
func (s *service) file(typ dsr.Type, regulation dsr.Regulation, email string) string {
	s.b.Helper()
	id, err := s.post(typ, regulation, email)
	if err != nil {
		s.b.Fatal(err)
	}
	return id
}

// fill stores n verified requests straight into the store, in batches of
// 1,000 (CreateRequests), with distinct subjects and a mix of types and
// statuses, and returns their ids.
func fill(b testing.TB, st store.Store, idx *dsr.BlindIndex, tag string, n int) []string {
	b.Helper()
	return fillAt(b, st, idx, tag, n, time.Now(), false)
}

// fillAt is fill with every request received at receivedAt, and completed
// a day later when closed is set (the history of a store in service).
func fillAt(b testing.TB, st store.Store, idx *dsr.BlindIndex, tag string, n int, receivedAt time.Time, closed bool) []string {
	b.Helper()
	ctx := context.Background()
	types := []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut}
	ids := make([]string, 0, n)
	batch := make([]*dsr.Request, 0, 1000)
	for i := range n {
		r, err := dsr.NewRequest(dsr.Intake{
			Type: types[i%len(types)], Regulation: dsr.RegulationGDPR, Source: "agent_api", FiledBy: "desk",
			Status: dsr.StatusVerified, ReceivedAt: receivedAt, Notify: true, Notices: []string{dsr.NoticeReceipt},
			VerificationMethod: "attested by the filing agent",
			Identities:         []dsr.Identity{{Kind: dsr.KindEmail, Value: fmt.Sprintf("%s-%d@example.com", tag, i), Source: dsr.SourceSubject}},
		}, idx)
		if err != nil {
			b.Fatal(err)
		}
		if closed {
			at := receivedAt.Add(24 * time.Hour)
			r.Status, r.ClosedAt = dsr.StatusCompleted, &at
		}
		batch = append(batch, r)
		ids = append(ids, r.ID)
		if len(batch) == cap(batch) || i == n-1 {
			for j, err := range st.CreateRequests(ctx, batch) {
				if err != nil {
					b.Fatalf("fill: request %d: %v", i-len(batch)+1+j, err)
				}
			}
			batch = batch[:0]
		}
	}
	return ids
}

// inserter inserts copies of one stored request straight into the store's
// database, below the store's code: what the database itself does.
type inserter interface {
	insert(ctx context.Context) error
}

// newInserter returns an inserter of copies (each under a new id) of the
// stored request id.
func newInserter(b testing.TB, st *benchStore, id string) inserter {
	b.Helper()
	if st.db != nil {
		var doc bson.D
		if err := st.db.Collection(mongostore.RequestsCollection).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
			b.Fatal(err)
		}
		return &mongoInserter{coll: st.db.Collection(mongostore.RequestsCollection), doc: doc}
	}
	return newSQLiteInserter(b, st.path, id)
}

type mongoInserter struct {
	coll *mongo.Collection
	doc  bson.D
}

func (m *mongoInserter) insert(ctx context.Context) error {
	id, err := dsr.NewRequestID()
	if err != nil {
		return err
	}
	doc := slices.Clone(m.doc)
	doc[0] = bson.E{Key: "_id", Value: id}
	_, err = m.coll.InsertOne(ctx, doc)
	return err
}

// sqliteInserter inserts copies of a request's row (every column as
// stored, the id replaced, in the document too) with one INSERT each, in
// its own transaction, on one connection of its own to the file, with the
// store's settings (WAL, synchronous FULL): the fastest a process inserts
// one row per transaction into SQLite. It leaves out the request's rows in
// request_hashes and audit_events, which the store writes in the same
// transaction.
type sqliteInserter struct {
	db      *sql.DB
	columns []string
	row     []any
	idCol   int
	docCol  int
	id      string
	stmt    string
}

func newSQLiteInserter(b testing.TB, path, id string) *sqliteInserter {
	b.Helper()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { _ = db.Close() })
	rows, err := db.Query(`SELECT * FROM requests WHERE id = ?`, id)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || !rows.Next() {
		b.Fatalf("read request %s: %v", id, err)
	}
	row := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range row {
		ptrs[i] = &row[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		b.Fatal(err)
	}
	in := &sqliteInserter{db: db, columns: cols, row: row, idCol: slices.Index(cols, "id"), docCol: slices.Index(cols, "doc"), id: id}
	if in.idCol < 0 || in.docCol < 0 {
		b.Fatalf("requests has no id or doc column: %v", cols)
	}
	in.stmt = `INSERT INTO requests (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
	return in
}

func (s *sqliteInserter) insert(ctx context.Context) error {
	id, err := dsr.NewRequestID()
	if err != nil {
		return err
	}
	row := slices.Clone(s.row)
	row[s.idCol] = id
	doc, _ := row[s.docCol].(string)
	row[s.docCol] = strings.ReplaceAll(doc, s.id, id)
	_, err = s.db.ExecContext(ctx, s.stmt, row...)
	return err
}

// percentile is the p-th percentile (0 < p <= 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
