package sealedstore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
	"github.com/klauspost/compress/s2"
)

// TestCryptoShredding: a copy of a request's sealed documents taken before
// its purges (a backup, say) no longer opens with anything the store holds
// once its identities and exports are purged: its wrapped keys are gone,
// and no key left in the store opens any of its sealed fields; its
// pseudonymised record (blind index, history, correction hashes, job
// counts) and its audit chain remain. A copy carries its own wrapped keys,
// though: it opens under the master keys until the master key that wrapped
// them is retired (after the others were re-wrapped), as shown at the end.
func TestCryptoShredding(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		inner, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = inner.Close() })
		shred(t, inner)
	})
	t.Run("mongodb", func(t *testing.T) {
		if !teststore.OnMongo() {
			t.Skip("runs with DSAR_TEST_STORE=mongodb or DSAR_TEST_MONGO_URI")
		}
		t.Parallel()
		inner := mongostore.New(testenv.Mongo(t), nil)
		if err := inner.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		shred(t, inner)
	})
}

// keyLister is what both drivers offer for key rotation.
type keyLister interface {
	EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error
}

// The fields a value is sealed for (the aad), as sealedstore binds them.
func aad(field, id string) []byte { return []byte("dsar/sealed/v1\x00" + field + "\x00" + id) }

// sealedField is one sealed value of the copy, and what it holds.
type sealedField struct {
	what, sealed, clear string
	aad                 []byte
	export              bool // sealed under the export key, else the data key
	compressed          bool // compressed (S2 block) before it was sealed: an export's chunk
}

// opens reports whether sealed opens under the wrapped key w of ring.
func opens(ring *envelope.Keyring, w string, f sealedField) (string, bool) {
	pw, err := envelope.ParseWrapped(w)
	if err != nil {
		return "", false
	}
	dk, err := ring.Unwrap(pw)
	if err != nil {
		return "", false
	}
	c, err := base64.RawStdEncoding.DecodeString(f.sealed)
	if err != nil {
		return "", false
	}
	p, err := envelope.Open(dk, c, f.aad)
	if err != nil {
		return "", false
	}
	if f.compressed {
		if p, err = s2.Decode(nil, p); err != nil {
			return "", false
		}
	}
	return string(p), true
}

func shred(t *testing.T, inner store.Store) {
	ctx := context.Background()
	entry := envelope.GenerateMasterKey()
	ring, err := envelope.ParseKeyring(entry)
	if err != nil {
		t.Fatal(err)
	}
	s := sealedstore.New(inner, ring, sealedstore.Options{})
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	file := func(in dsr.Intake) *dsr.Request {
		t.Helper()
		in.Regulation, in.Source, in.FiledBy, in.Status, in.ReceivedAt = dsr.RegulationGDPR, "test", "tester", dsr.StatusVerified, now
		r, err := dsr.NewRequest(in, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ada := []dsr.Identity{{Kind: dsr.KindEmail, Value: "shred-ada@example.net", Source: dsr.SourceSubject},
		{Kind: dsr.KindPhone, Value: "+442079460111", Source: dsr.SourceSubject}}
	access := file(dsr.Intake{Type: dsr.TypeAccess, Identities: ada, Note: "shred note: called from the number on file",
		Agent: &dsr.Agent{Name: "Shred Helpers Agency", Email: "agent@shred-helpers.example", SignedPermission: true}})
	corr := file(dsr.Intake{Type: dsr.TypeCorrection,
		Identities:  []dsr.Identity{{Kind: dsr.KindEmail, Value: "shred-cora@example.net", Source: dsr.SourceSubject}},
		Corrections: []dsr.FieldValue{{Field: "name", Value: "Cora Shrednewname"}}})
	file(dsr.Intake{Type: dsr.TypeAccess,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "bystander@example.net", Source: dsr.SourceSubject}}})

	// The access request runs: a job with its identities exports a record,
	// and it completes; the correction is cancelled. Both are closed.
	if _, err := s.Transition(ctx, access.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	job := dsr.NewJob(access.ID, "shop", dsr.ActionExport, now)
	job.Identities = access.Identities
	if err := s.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimJob(ctx, job.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewExportWriter(ctx, claimed)
	if err != nil {
		t.Fatal(err)
	}
	const record = `{"address":"1 Shred Row, Leeds","email":"shred-ada@example.net"}`
	if err := w.WriteRecord(ctx, "customers", json.RawMessage(record)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 1}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{access.ID, corr.ID} {
		if _, err := s.AppendAudit(ctx, id, "tester", "note_added", map[string]string{"request": id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FannedOut(ctx, access.ID, 1, "t"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Settle(ctx, access.ID, "t"); err != nil || st != dsr.StatusCompleted {
		t.Fatalf("settle: %s, %v; want completed", st, err)
	}
	if _, err := s.Transition(ctx, corr.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}

	// The copy, as a backup taken now holds it: the driver's documents.
	rawAccess, err := inner.Request(ctx, access.ID)
	if err != nil {
		t.Fatal(err)
	}
	rawCorr, err := inner.Request(ctx, corr.ID)
	if err != nil {
		t.Fatal(err)
	}
	rawJobs, err := inner.Jobs(ctx, access.ID)
	if err != nil || len(rawJobs) != 1 {
		t.Fatalf("jobs %+v, %v", rawJobs, err)
	}
	var rawRecords []string
	if err := inner.EachExportRecord(ctx, job.ID, func(collection string, data json.RawMessage) error {
		var sealed string
		if err := json.Unmarshal(data, &sealed); err != nil {
			t.Errorf("export record in %s is not a sealed string: %s", collection, data)
		}
		rawRecords = append(rawRecords, sealed)
		return nil
	}); err != nil || len(rawRecords) != 2 { // the record and the export's end record
		t.Fatalf("export records %d, %v", len(rawRecords), err)
	}
	if !strings.HasPrefix(rawRecords[0], "chunk:") {
		t.Fatalf("the export record is not a sealed chunk: %.20q", rawRecords[0])
	}
	if rawAccess.DataKey == "" || rawAccess.ExportKey == "" || rawCorr.DataKey == "" {
		t.Fatal("the requests were stored without wrapped keys")
	}
	fields := []sealedField{
		{what: "access note", sealed: rawAccess.Note, clear: access.Note, aad: aad("note", access.ID)},
		{what: "agent name", sealed: rawAccess.Agent.Name, clear: access.Agent.Name, aad: aad("agent.name", access.ID)},
		{what: "agent email", sealed: rawAccess.Agent.Email, clear: access.Agent.Email, aad: aad("agent.email", access.ID)},
		{what: "correction new value", sealed: rawCorr.NewValues["name"], clear: "Cora Shrednewname", aad: aad("new_value\x00name", corr.ID)},
		{what: "correction identity", sealed: rawCorr.Identities[0].Value, clear: "shred-cora@example.net", aad: aad("identity", corr.ID)},
		// The export's one chunk: its records, each followed by a newline,
		// compressed, bound to the job, the collection, its seq (1) and
		// its first record's number (1).
		{what: "export record", sealed: strings.TrimPrefix(rawRecords[0], "chunk:"), clear: record + "\n", aad: aad("export-chunk\x00"+job.ID+"\x00customers\x001", "1"), export: true, compressed: true},
	}
	for i, id := range rawAccess.Identities {
		fields = append(fields, sealedField{what: "identity", sealed: id.Value, clear: ada[i].Value, aad: aad("identity", access.ID)})
	}
	for i, id := range rawJobs[0].Identities {
		fields = append(fields, sealedField{what: "job identity", sealed: id.Value, clear: ada[i].Value, aad: aad("job.identity", job.ID)})
	}
	wrapped := func(f sealedField) string {
		switch {
		case f.export:
			return rawAccess.ExportKey
		case strings.HasPrefix(f.what, "correction"):
			return rawCorr.DataKey
		}
		return rawAccess.DataKey
	}
	// Before the purge the copy is sealed, and opens with its own keys.
	for _, f := range fields {
		if f.sealed == f.clear || strings.Contains(f.sealed, f.clear) {
			t.Errorf("%s stored in clear: %q", f.what, f.sealed)
		}
		if got, ok := opens(ring, wrapped(f), f); !ok || got != f.clear {
			t.Errorf("%s: the copy does not open with its own key: %q, %v", f.what, got, ok)
		}
	}
	auditBefore := map[string][]dsr.AuditEvent{}
	for _, id := range []string{access.ID, corr.ID} {
		if auditBefore[id], err = s.AuditTrail(ctx, id); err != nil || len(auditBefore[id]) == 0 {
			t.Fatalf("audit trail of %s: %d events, %v", id, len(auditBefore[id]), err)
		}
	}

	// The purges.
	for _, id := range []string{access.ID, corr.ID} {
		if ok, err := s.PurgeIdentities(ctx, id); err != nil || !ok {
			t.Fatalf("purge identities of %s: %v, %v", id, ok, err)
		}
		if ok, err := s.PurgeExports(ctx, id); err != nil || !ok {
			t.Fatalf("purge exports of %s: %v, %v", id, ok, err)
		}
	}

	// The wrapped keys are gone from the documents and from the keys the
	// store lists (the bystander's are still there).
	for _, id := range []string{access.ID, corr.ID} {
		r, err := inner.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.DataKey != "" || r.ExportKey != "" {
			t.Errorf("request %s keeps wrapped keys after its purges: data %t, export %t", id, r.DataKey != "", r.ExportKey != "")
		}
	}
	lister, ok := inner.(keyLister)
	if !ok {
		t.Fatalf("%T lists no wrapped keys", inner)
	}
	var held []string
	if err := lister.EachWrappedKeys(ctx, "", func(id, data, export string) error {
		if id == access.ID || id == corr.ID {
			t.Errorf("the store still lists wrapped keys of purged request %s", id)
		}
		for _, k := range []string{data, export} {
			if k != "" {
				held = append(held, k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 {
		t.Errorf("the store holds %d wrapped keys, want the bystander's 2", len(held))
	}
	// No key the store holds opens any field of the copy, under the
	// master keys.
	for _, f := range fields {
		for _, k := range held {
			if _, ok := opens(ring, k, f); ok {
				t.Errorf("%s of the copy opens with a key the store still holds", f.what)
			}
		}
	}
	// Read afresh (no key cached), or through the store that purged: the
	// personal fields are empty, the export has no record.
	for _, st := range []*sealedstore.Store{s, sealedstore.New(inner, ring, sealedstore.Options{})} {
		r, err := st.Request(ctx, access.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Identities) != 0 || r.Note != "" || r.Agent != nil {
			t.Errorf("after the purge: identities %v, note %q, agent %+v", r.Identities, r.Note, r.Agent)
		}
		c, err := st.Request(ctx, corr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.NewValues) != 0 || len(c.Identities) != 0 {
			t.Errorf("the correction after the purge: new values %v, identities %v", c.NewValues, c.Identities)
		}
		n := 0
		if err := st.EachExportRecord(ctx, job.ID, func(string, json.RawMessage) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("export after the purge: %d records, %v", n, err)
		}
		// The pseudonymised record remains.
		if !slices.Equal(r.IdentityHashes, access.IdentityHashes) || len(r.IdentityHashes) != 2 || r.PurgedAt == nil || r.ExportsPurgedAt == nil ||
			len(r.History) < 3 || r.Status != dsr.StatusCompleted {
			t.Errorf("after the purge: hashes %v (want %v), purged %v, exports purged %v, history %d, status %s",
				r.IdentityHashes, access.IdentityHashes, r.PurgedAt, r.ExportsPurgedAt, len(r.History), r.Status)
		}
		if len(c.Corrections) != 1 || c.Corrections[0].Hash == "" || !slices.Equal(c.IdentityHashes, corr.IdentityHashes) {
			t.Errorf("the correction's evidence after the purge: %+v, hashes %v", c.Corrections, c.IdentityHashes)
		}
		j, err := st.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Identities) != 0 || j.Records != 1 || j.Status != dsr.JobSucceeded {
			t.Errorf("the job after the purge: identities %v, records %d, status %s", j.Identities, j.Records, j.Status)
		}
	}
	for id, before := range auditBefore {
		after, err := s.AuditTrail(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if check := dsr.VerifyChain(after); !check.OK || len(after) < len(before) || after[len(before)-1].Hash != before[len(before)-1].Hash {
			t.Errorf("audit chain of %s after the purge: %+v, %d events (were %d)", id, check, len(after), len(before))
		}
	}

	// The limit: the copy holds its own wrapped keys, which open it under
	// the master key that wrapped them while it is listed. Rotated to a new
	// master key with the store's keys re-wrapped, and the old key retired,
	// the copy no longer opens; what the store holds still does.
	if _, ok := opens(ring, rawAccess.DataKey, fields[0]); !ok {
		t.Error("the copy's own wrapped key no longer opens it under the master key that wrapped it")
	}
	next := envelope.GenerateMasterKey()
	both, err := envelope.ParseKeyring(next + "," + entry)
	if err != nil {
		t.Fatal(err)
	}
	retired, err := envelope.ParseKeyring(next)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range held {
		pw, err := envelope.ParseWrapped(k)
		if err != nil {
			t.Fatal(err)
		}
		re, _, err := both.Rewrap(pw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := retired.Unwrap(re); err != nil {
			t.Errorf("a re-wrapped key does not open under the new master key: %v", err)
		}
	}
	for _, f := range fields {
		if _, ok := opens(retired, wrapped(f), f); ok {
			t.Errorf("%s of the copy opens once the master key that wrapped it is retired", f.what)
		}
	}
}
