package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/internal/webhook"
	dsarstore "github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// sealedCRMSecret signs the calls of the test's webhook connector and its
// callbacks.
const sealedCRMSecret = "sealed e2e crm secret, 16+ bytes"

// sealedHookSecret signs the calls of the test's pre-fan-out hook and its
// resume.
const sealedHookSecret = "sealed e2e hook secret, 16+ bytes"

// markers are values of the flows of TestSealedAtRest, each unique to the
// test run, with what each is; none may reach dsar's store in clear.
type markers map[string]string

func (m markers) add(what, v string) string { m[v] = what; return v }

// randomTag is a short random tag that makes every marker unique to a run.
func randomTag(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// fictionalPhone returns a distinct London number of the range kept for
// drama (020 7946 0xxx), E.164, not the demo's.
func fictionalPhone(t *testing.T, used map[string]bool) string {
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(900))
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("+442079460%03d", 100+n.Int64())
		if !used[p] {
			used[p] = true
			return p
		}
	}
}

// crmCall is one signed call dsar made to the test's webhook connector.
type crmCall struct {
	ID         string `json:"id"`
	Action     string `json:"action"`
	Identities []struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	} `json:"identities"`
	CallbackURL string `json:"callback_url"`
}

// TestSealedAtRest runs dsar dev through every flow that stores personal
// data, with values unique to the run: a portal access request verified by
// its emailed code whose export (a MongoDB shop and a webhook CRM answering
// by callback) is downloaded from the emailed link; a portal deletion filed
// by an authorised agent; an agent's deletion with a note, filed by
// customer id and phone (with an idempotency key), held by the pre-fan-out
// hook and resumed with an identity (the hook adds one to every request); a correction with new
// values; a portal opt-out, then an agent's opt-in for the same person; an
// opt-out filed in bulk; a VCDPA deletion denied, appealed (on an agent's
// new proof) and approved. Then it stops dsar and reads
// its store raw: the SQLite file with its -wal and -shm as bytes, or on
// MongoDB every document of every collection; none of the identities,
// agent's details, note, new values, old values or exported values may be
// there in clear (as given, lower-cased, JSON-escaped, or inside any
// base64 run of the raw bytes).
func TestSealedAtRest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		if testenv.RealMongo() {
			t.Skip("DSAR_TEST_MONGO_URI is set: dev's store is MongoDB, not the SQLite file")
		}
		sealedAtRest(t, false)
	})
	t.Run("mongodb", func(t *testing.T) {
		if !teststore.OnMongo() {
			t.Skip("runs with DSAR_TEST_STORE=mongodb or DSAR_TEST_MONGO_URI")
		}
		sealedAtRest(t, true)
	})
}

func sealedAtRest(t *testing.T, onMongo bool) {
	ctx := context.Background()
	tag := randomTag(t)
	m := markers{}
	phones := map[string]bool{}
	email := func(who string) string { return m.add(who+" email", who+"-"+tag+"@example.net") }

	// The people, each in the shop with values of their own.
	pa := struct{ email, phone, id, name, addr, ticket, item string }{
		email("portal-access"), m.add("portal-access phone", fictionalPhone(t, phones)), m.add("portal-access customer id", "cus_pa_"+tag),
		m.add("portal-access name (exported)", "Perdita Marker"+tag), m.add("portal-access address (exported)", tag+" Marker Street, Leeds"),
		m.add("portal-access ticket (exported)", "Parcel "+tag+" never came"), m.add("portal-access order item (exported)", "widget-"+tag),
	}
	da := struct{ email, phone, id, agentName, agentEmail string }{
		email("agent-deletion"), m.add("agent-deletion phone", fictionalPhone(t, phones)), m.add("agent-deletion customer id", "cus_da_"+tag),
		m.add("authorised agent name", "Helpers"+tag+" Agency"), m.add("authorised agent email", "agent-"+tag+"@helpers.example"),
	}
	dn := struct{ email, phone, id, note string }{
		email("noted-deletion"), m.add("noted-deletion phone", fictionalPhone(t, phones)), m.add("noted-deletion customer id", "cus_dn_"+tag),
		m.add("agent's note", "Called from the number on file, ref note"+tag),
	}
	co := struct{ email, id, oldName, newName, newAddr string }{
		email("correction"), m.add("correction customer id", "cus_co_"+tag), m.add("correction old name", "Oldname"+tag+" Person"),
		m.add("correction new name", "Newname"+tag+" Person"), m.add("correction new address", tag+" Corrected Road, York"),
	}
	oo := struct{ email, id string }{email("opt-out"), m.add("opt-out customer id", "cus_oo_"+tag)}
	ap := struct{ email, phone, id string }{email("appeal"), m.add("appeal phone", fictionalPhone(t, phones)), m.add("appeal customer id", "cus_ap_"+tag)}

	client := testenv.Client(t)
	shop := testenv.Database(t, client)
	if err := seedDemoInto(ctx, shop); err != nil {
		t.Fatal(err)
	}
	customer := func(id, email, phone, name, addr string) any {
		return bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}, {Key: "phone", Value: phone}, {Key: "name", Value: name},
			{Key: "address", Value: addr}, {Key: "marketing_opt_in", Value: true}}
	}
	if _, err := shop.Collection("customers").InsertMany(ctx, []any{
		customer(pa.id, pa.email, pa.phone, pa.name, pa.addr),
		customer(da.id, da.email, da.phone, "Dora Deleted", "1 Gone Lane"),
		customer(dn.id, dn.email, dn.phone, "Ned Noted", "2 Gone Lane"),
		customer(co.id, co.email, "", co.oldName, "3 Old Road"),
		customer(oo.id, oo.email, "", "Otto Out", "4 Quiet Road"),
		customer(ap.id, ap.email, ap.phone, "Abe Appeal", "5 Gone Lane"),
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Must(t, insert(ctx, shop, "orders", bson.D{{Key: "_id", Value: "ord_" + tag}, {Key: "customer_id", Value: pa.id},
		{Key: "items", Value: bson.A{pa.item}}, {Key: "total", Value: 9.5}, {Key: "shipping_address", Value: pa.addr}}))
	testenv.Must(t, insert(ctx, shop, "tickets", bson.D{{Key: "_id", Value: "tkt_" + tag}, {Key: "email", Value: pa.email}, {Key: "subject", Value: pa.ticket}}))
	_, err := shop.Collection("segments").UpdateOne(ctx, bson.D{{Key: "_id", Value: "seg_newsletter"}},
		bson.D{{Key: "$push", Value: bson.D{{Key: "members", Value: bson.D{{Key: "$each", Value: bson.A{pa.email, oo.email, da.email}}}}}}})
	testenv.Must(t, err)

	// The CRM: a webhook that answers every export later, by callback.
	calls := make(chan crmCall, 16)
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c crmCall
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &c); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		calls <- c
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(crm.Close)

	// The pre-fan-out hook adds a customer id to every request, and holds
	// the noted deletion, which a signed resume releases with another.
	hookID, resumeID := m.add("customer id the pre-fan-out hook adds", "cus_hook_"+tag), m.add("customer id the hook's resume adds", "cus_resume_"+tag)
	held := make(chan string, 1)
	preHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			RequestID  string `json:"request_id"`
			Identities []struct {
				Value string `json:"value"`
			} `json:"identities"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &c)
		for _, id := range c.Identities {
			if id.Value == dn.phone {
				select {
				case held <- c.RequestID:
				default:
				}
				w.WriteHeader(http.StatusAccepted)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"add_identities":[{"kind":"customer_id","value":%q}]}`, hookID)
	}))
	t.Cleanup(preHook.Close)

	spec := strings.Replace(demoConnectors, "    database: demo_shop        # no uri: the demo shop's server, which dsar dev --demo starts",
		fmt.Sprintf("    uri: %q\n    database: %s", testenv.MongoURI(t), shop.Name()), 1)
	spec = strings.Replace(spec, "        opt_out: {set: {marketing_opt_in: false}}\n",
		"        opt_out: {set: {marketing_opt_in: false}}\n        correct: {name: name, address: address}\n", 1)
	spec += fmt.Sprintf(`  - name: crm
    type: webhook
    url: %s
    secret: ${SEALED_CRM_SECRET}
    actions: [export]
    allow_insecure: true
    allow_private: true
`, crm.URL)
	dataDir := t.TempDir()
	connectorsFile := filepath.Join(t.TempDir(), "connectors.yaml")
	testenv.Must(t, os.WriteFile(connectorsFile, []byte(spec), 0o600))

	r := testenv.RedisServer(t)
	dbName := testenv.Name("sealed")
	var store *mongo.Database
	env := baseEnv(t, dataDir, r.Addr, testenv.Queue(t, r), dbName)
	if onMongo {
		store = testenv.Database(t, client) // dropped when the test ends
		dbName = store.Name()
		if !testenv.RealMongo() {
			env = append(env, "DSAR_MONGO_URI="+testenv.MongoURI(t))
		}
		env = append(env, "DSAR_MONGO_DB="+dbName) // the last one counts
	}
	env = append(env, "DSAR_CONNECTORS_FILE="+connectorsFile, "SEALED_CRM_SECRET="+sealedCRMSecret,
		"DSAR_HOOK_PRE_URL="+preHook.URL, "DSAR_HOOK_SECRET="+sealedHookSecret)
	p := startDSAR(t, env, "dev")

	// seen collects what dsar answered: each marker must pass through it,
	// or the scan below would prove nothing.
	var seen bytes.Buffer
	get := func(id string) request {
		t.Helper()
		resp := p.raw("GET", "/v1/requests/"+id, "")
		if resp.status != http.StatusOK {
			t.Fatalf("get %s: %d %s", id, resp.status, resp.body)
		}
		seen.WriteString(resp.body)
		var got request
		testenv.Must(t, json.Unmarshal([]byte(resp.body), &got))
		return got
	}
	answerCRM := func() {
		t.Helper()
		var c crmCall
		select {
		case c = <-calls:
		case <-time.After(60 * time.Second):
			t.Fatalf("the CRM was never called\n%s", p.stderr)
		}
		var addr string
		for _, id := range c.Identities {
			if id.Kind == "email" {
				addr = id.Value
			}
		}
		interest := m.add("CRM record (exported by callback)", "crm-interest-"+tag+"-"+c.ID[:8])
		body, _ := json.Marshal(map[string]any{
			"handle":      c.ID,
			"collections": []map[string]any{{"name": "contacts", "records": 1}},
			"export":      map[string]any{"contacts": []map[string]any{{"email": addr, "interest": interest}}},
		})
		key, err := webhook.ParseSecret(sealedCRMSecret)
		testenv.Must(t, err)
		// The CRM answers at once, maybe before the job has recorded
		// that it waits (409): it tries again, as a webhook sender does.
		for try := 0; ; try++ {
			req, err := http.NewRequest("POST", p.base+"/v1/callbacks/"+url.PathEscape(c.ID), bytes.NewReader(body))
			testenv.Must(t, err)
			req.Header.Set("Content-Type", "application/json")
			key.SignHeaders(req.Header, "cb_"+c.ID, time.Now(), body)
			resp, err := p.client.Do(req)
			testenv.Must(t, err)
			_ = resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
			if resp.StatusCode != http.StatusConflict || try == 50 {
				t.Fatalf("callback for %s: %d", c.ID, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// 1. Portal access, verified by the emailed code; the export is
	// downloaded from the link of the completion email.
	access := portalFile(t, p, fmt.Sprintf(`{"type":"access","jurisdiction":"GB","subject":{"email":%q}}`, pa.email))
	portalVerify(t, p, dataDir, access)
	answerCRM()
	get(p.waitCompleted(access.ID).ID)
	link := regexp.MustCompile(`http://\S+/export\?\S+`).FindString(outboxText(t, dataDir, access.ID, "completed"))
	if link == "" {
		t.Fatal("no download link in the completion email")
	}
	resp, err := p.client.Get(link)
	testenv.Must(t, err)
	zipped, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	for _, data := range unzip(t, zipped) {
		seen.Write(data)
	}

	// 2. A deletion filed on the portal by an authorised agent.
	agentDel := portalFile(t, p, fmt.Sprintf(`{"type":"deletion","regulation":"ccpa","subject":{"email":%q,"phone":%q},"agent":{"name":%q,"email":%q,"signed_permission":true}}`,
		da.email, da.phone, da.agentName, da.agentEmail))
	portalVerify(t, p, dataDir, agentDel)
	get(p.waitCompleted(agentDel.ID).ID)
	if rep := p.raw("GET", "/v1/requests/"+agentDel.ID+"/report", ""); rep.status == http.StatusOK {
		seen.WriteString(rep.body) // names the authorised agent
	}

	// 3. An agent's deletion by customer id and phone, with a note, filed
	// with an idempotency key.
	var noted request
	{
		req, err := http.NewRequest("POST", p.base+"/v1/requests", strings.NewReader(fmt.Sprintf(
			`{"type":"deletion","regulation":"gdpr","subject":{"customer_id":%q,"phone":%q},"channel":"phone","note":%q}`, dn.id, dn.phone, dn.note)))
		testenv.Must(t, err)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "sealed-"+tag)
		resp, err := p.client.Do(req)
		testenv.Must(t, err)
		err = json.NewDecoder(resp.Body).Decode(&noted)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("file the noted deletion: %d %v", resp.StatusCode, err)
		}
	}
	// Approved, it is held by the hook until a signed resume.
	for deadline := time.Now().Add(60 * time.Second); ; {
		var r request
		p.call("GET", "/v1/requests/"+noted.ID, "", &r)
		if r.Status == "awaiting_approval" {
			p.call("POST", "/v1/requests/"+noted.ID+"/approve", "", nil)
		}
		select {
		case id := <-held:
			if id != noted.ID {
				t.Fatalf("the hook held %s, want %s", id, noted.ID)
			}
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("the noted deletion was never held (%s)\n%s", r.Status, p.stderr)
			}
			continue
		}
		break
	}
	{
		body := fmt.Sprintf(`{"request_id":%q,"add_identities":[{"kind":"customer_id","value":%q}]}`, noted.ID, resumeID)
		req, err := http.NewRequest("POST", p.base+"/v1/hooks/resume/"+noted.ID, strings.NewReader(body))
		testenv.Must(t, err)
		req.Header.Set("Content-Type", "application/json")
		key, err := webhook.ParseSecret(sealedHookSecret)
		testenv.Must(t, err)
		key.SignHeaders(req.Header, "resume_"+tag, time.Now(), []byte(body))
		resp, err := p.client.Do(req)
		testenv.Must(t, err)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("resume: %d\n%s", resp.StatusCode, p.stderr)
		}
	}
	get(p.waitCompleted(noted.ID).ID)

	// 4. A correction of the name and address, approved.
	var corr request
	if code := p.call("POST", "/v1/requests", fmt.Sprintf(`{"type":"correction","regulation":"gdpr","subject":{"email":%q},"corrections":[{"field":"name","value":%q},{"field":"address","value":%q}]}`,
		co.email, co.newName, co.newAddr), &corr); code != http.StatusAccepted {
		t.Fatalf("file the correction: %d", code)
	}
	get(p.waitCompleted(corr.ID).ID)
	var corrected struct{ Name, Address string }
	testenv.Must(t, shop.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: co.id}}).Decode(&corrected))
	if corrected.Name != co.newName || corrected.Address != co.newAddr {
		t.Errorf("the correction did not reach the shop: %+v", corrected)
	}
	seen.WriteString(co.oldName) // overwritten in the shop: dsar never shows it, and must not keep it

	// 5. An opt-out on the portal (no code needed).
	optOut := portalFile(t, p, fmt.Sprintf(`{"type":"opt_out","regulation":"ccpa","subject":{"email":%q}}`, oo.email))
	get(p.waitCompleted(optOut.ID).ID)

	// 5b. An opt-in by an agent for the person who opted out: an opt_in
	// request with their identities and a consent event.
	var optIn struct {
		OptInRequestID string `json:"opt_in_request_id"`
	}
	if code := p.call("POST", "/v1/consent/opt-in", fmt.Sprintf(`{"subject":{"email":%q},"scopes":["marketing"]}`, oo.email), &optIn); code != http.StatusOK || optIn.OptInRequestID == "" {
		t.Fatalf("opt-in: %d %+v", code, optIn)
	}
	get(p.waitCompleted(optIn.OptInRequestID).ID)

	// 5c. An opt-out filed in bulk.
	bulkEmail := email("bulkout")
	var bulk struct {
		Results []struct {
			Status  int     `json:"status"`
			Request request `json:"request"`
		} `json:"results"`
	}
	if code := p.call("POST", "/v1/requests/bulk", fmt.Sprintf(`{"requests":[{"type":"opt_out","regulation":"ccpa","subject":{"email":%q}}]}`, bulkEmail), &bulk); code != http.StatusOK ||
		len(bulk.Results) != 1 || bulk.Results[0].Status != http.StatusAccepted {
		t.Fatalf("bulk: %d %+v", code, bulk)
	}
	get(p.waitCompleted(bulk.Results[0].Request.ID).ID)

	// 6. A VCDPA deletion, denied, appealed, and the appeal approved.
	var denied request
	if code := p.call("POST", "/v1/requests", fmt.Sprintf(`{"type":"deletion","regulation":"vcdpa","subject":{"email":%q,"phone":%q}}`, ap.email, ap.phone), &denied); code != http.StatusAccepted {
		t.Fatalf("file the deletion to deny: %d", code)
	}
	waitStatus(t, p, denied.ID, "awaiting_approval")
	if code := p.call("POST", "/v1/requests/"+denied.ID+"/deny", `{"reason":"The account could not be matched.","basis":"other"}`, nil); code != http.StatusOK {
		t.Fatalf("deny: %d", code)
	}
	var appeal request
	if code := p.call("POST", "/v1/requests/"+denied.ID+"/appeal", `{"reason":"The person sent a utility bill.","identity":{"verified":true,"method":"utility bill"}}`, &appeal); code/100 != 2 || appeal.ID == "" {
		t.Fatalf("appeal: %d %+v", code, appeal)
	}
	get(denied.ID)
	get(p.waitCompleted(appeal.ID).ID)

	// The scan finds a marker however it is written.
	for _, blob := range []string{"x" + pa.email, strings.ToUpper(pa.email),
		base64.StdEncoding.EncodeToString([]byte(`{"email":"` + pa.email + `"}`))} {
		if len(m.scan("self-check", []byte(`{"v":"`+blob+`"}`))) == 0 {
			t.Fatalf("the scan misses %q", blob)
		}
	}
	// The SQLite file and its WAL while dev runs, then once it stopped.
	scanLite := func(when string) (leaks []string, scanned int) {
		files, _ := filepath.Glob(filepath.Join(dataDir, "dsar.db*"))
		if len(files) == 0 {
			t.Fatalf("no dsar.db in %s", dataDir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			testenv.Must(t, err)
			scanned += len(data)
			leaks = append(leaks, m.scan(filepath.Base(f)+" "+when, data)...)
			t.Logf("%s %s: %d bytes", filepath.Base(f), when, len(data))
		}
		return leaks, scanned
	}
	var leaks []string
	if !onMongo {
		leaks, _ = scanLite("(dev running)")
	}
	p.stop()
	filed := []string{access.ID, agentDel.ID, noted.ID, corr.ID, optOut.ID, optIn.OptInRequestID, bulk.Results[0].Request.ID, denied.ID, appeal.ID}

	// The store, raw.
	scanned := 0
	if onMongo {
		names, err := store.ListCollectionNames(ctx, bson.D{})
		testenv.Must(t, err)
		sort.Strings(names)
		var perColl []string
		for _, coll := range names {
			before := scanned
			cur, err := store.Collection(coll).Find(ctx, bson.D{})
			testenv.Must(t, err)
			for cur.Next(ctx) {
				scanned++
				raw := []byte(cur.Current)
				ext, err := bson.MarshalExtJSON(cur.Current, false, false)
				testenv.Must(t, err)
				id := cur.Current.Lookup("_id").String()
				leaks = append(leaks, m.scan(coll+" "+id, raw)...)
				leaks = append(leaks, m.scan(coll+" "+id+" (extended JSON)", ext)...)
			}
			testenv.Must(t, cur.Err())
			_ = cur.Close(ctx)
			perColl = append(perColl, fmt.Sprintf("%s %d", coll, scanned-before))
		}
		t.Logf("MongoDB documents scanned: %s", strings.Join(perColl, ", "))
		if scanned == 0 {
			t.Fatalf("no document in dsar's database %s", dbName)
		}
	} else {
		l, n := scanLite("(dev stopped)")
		leaks, scanned = append(leaks, l...), n
	}
	// Whatever else dev keeps in its data dir but the outbox (the key
	// files) is dsar's too.
	entries, err := os.ReadDir(dataDir)
	testenv.Must(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "dsar.db") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dataDir, e.Name()))
		testenv.Must(t, err)
		leaks = append(leaks, m.scan(e.Name(), data)...)
	}
	for _, l := range leaks {
		t.Errorf("in clear at rest: %s", l)
	}

	// Every marker but the overwritten name is in the store, sealed: read
	// through the sealing store under dev's master key file, the requests,
	// their jobs and their exports hold it (and every one showed in dsar's
	// answers but the authorised agent's email, which none shows). So the
	// scan above looked for what was there to find.
	stored := openedStore(t, dataDir, store, filed)
	for v, what := range m {
		if v == co.oldName {
			continue // the correction keeps hashes of what it overwrote only
		}
		if !bytes.Contains(stored, []byte(v)) {
			t.Errorf("%s %q is not in the store even sealed: the flows did not carry it", what, v)
		}
		if v != da.agentEmail && !bytes.Contains(seen.Bytes(), []byte(v)) {
			t.Errorf("%s %q never showed in dsar's answers", what, v)
		}
	}
	t.Logf("scanned %d %s for %d markers: %d in clear", scanned, map[bool]string{true: "MongoDB documents", false: "bytes of SQLite"}[onMongo], len(m), len(leaks))

	// The outbox holds the notices dev writes without SMTP: mail, not the
	// store; report what it holds.
	emls, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*.eml"))
	var inOutbox []string
	for _, f := range emls {
		data, err := os.ReadFile(f)
		testenv.Must(t, err)
		for _, l := range m.scan(filepath.Base(f), data) {
			inOutbox = append(inOutbox, l)
		}
	}
	t.Logf("outbox: %d notices, %d marker hits (mail to people, in clear by design):\n%s", len(emls), len(inOutbox), strings.Join(inOutbox, "\n"))
}

// openedStore opens dev's store after it stopped (the SQLite file in
// dataDir, or mongoDB when not nil) through the sealing store under the
// master key file dev made in dataDir, and returns, as JSON, the requests
// ids with their jobs and the records of their exports, opened.
func openedStore(t *testing.T, dataDir string, mongoDB *mongo.Database, ids []string) []byte {
	t.Helper()
	ctx := context.Background()
	ring, created, err := envelope.LoadOrCreateKeyFile(dataDir)
	testenv.Must(t, err)
	if created {
		t.Fatal("dev made no master key file in its data dir")
	}
	var inner dsarstore.Store
	if mongoDB != nil {
		inner = mongostore.New(mongoDB, nil)
	} else {
		lite, err := sqlitestore.Open(ctx, filepath.Join(dataDir, "dsar.db"), sqlitestore.Options{})
		testenv.Must(t, err)
		defer lite.Close()
		inner = lite
	}
	s := sealedstore.New(inner, ring, sealedstore.Options{})
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	for _, id := range ids {
		r, err := s.Request(ctx, id)
		testenv.Must(t, err)
		testenv.Must(t, enc.Encode(r))
		jobs, err := s.Jobs(ctx, id)
		testenv.Must(t, err)
		for _, j := range jobs {
			testenv.Must(t, enc.Encode(j))
			out.Write(j.Answer)
			testenv.Must(t, s.EachExportRecord(ctx, j.ID, func(_ string, data json.RawMessage) error {
				_, err := out.Write(data)
				return err
			}))
		}
	}
	return out.Bytes()
}

func insert(ctx context.Context, db *mongo.Database, coll string, doc bson.D) error {
	_, err := db.Collection(coll).InsertOne(ctx, doc)
	return err
}

// base64Run is a run of base64 text long enough to hold a marker.
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{12,}={0,2}`)

// scan reports each marker in data, where: as given, lower-cased,
// upper-cased, JSON-escaped, or in the decoding of any base64 run of data
// (standard or URL alphabet, padded or not).
func (m markers) scan(where string, data []byte) []string {
	var out []string
	forms := func(v string) []string {
		j, _ := json.Marshal(v)
		return []string{v, strings.ToLower(v), strings.ToUpper(v), string(j[1 : len(j)-1])}
	}
	lower := bytes.ToLower(data)
	var decoded [][]byte
	for _, run := range base64Run.FindAll(data, -1) {
		s := strings.TrimRight(string(run), "=")
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			if d, err := enc.DecodeString(s); err == nil {
				decoded = append(decoded, bytes.ToLower(d))
			}
		}
	}
	keys := make([]string, 0, len(m))
	for v := range m {
		keys = append(keys, v)
	}
	sort.Strings(keys)
	for _, v := range keys {
		found := ""
		for _, f := range forms(v) {
			if bytes.Contains(data, []byte(f)) || bytes.Contains(lower, []byte(strings.ToLower(f))) {
				found = "in clear"
				break
			}
		}
		if found == "" {
			for _, d := range decoded {
				if bytes.Contains(d, []byte(strings.ToLower(v))) {
					found = "base64-encoded"
					break
				}
			}
		}
		if found != "" {
			out = append(out, fmt.Sprintf("%s: %s %q %s", where, m[v], v, found))
		}
	}
	return out
}

// portalFiled is a request filed on the portal.
type portalFiled struct {
	ID          string `json:"id"`
	StatusToken string `json:"status_token"`
}

// portalFile files body on the portal, as a person does.
func portalFile(t *testing.T, p *proc, body string) portalFiled {
	t.Helper()
	req, _ := http.NewRequest("POST", p.base+"/v1/portal/requests", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	testenv.Must(t, err)
	defer resp.Body.Close()
	var f portalFiled
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || resp.StatusCode != http.StatusAccepted || f.ID == "" {
		t.Fatalf("portal: %d %v %+v", resp.StatusCode, err, f)
	}
	return f
}

// portalVerify reads the code from the verification email in the outbox
// and gives it back on the portal.
func portalVerify(t *testing.T, p *proc, dataDir string, f portalFiled) {
	t.Helper()
	code := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(outboxText(t, dataDir, f.ID, "verify"))
	if code == nil {
		t.Fatal("no code in the verification email")
	}
	req, _ := http.NewRequest("POST", p.base+"/v1/portal/requests/"+f.ID+"/verify", strings.NewReader(`{"code":"`+code[1]+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.StatusToken)
	resp, err := p.client.Do(req)
	testenv.Must(t, err)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
}

// outboxText waits for the notice kind of request id in dev's outbox and
// returns its body, decoded.
func outboxText(t *testing.T, dataDir, id, kind string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		emls, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*-"+id+"-"+kind+"*.eml"))
		if len(emls) > 0 {
			data, err := os.ReadFile(emls[0])
			testenv.Must(t, err)
			msg, err := mail.ReadMessage(bytes.NewReader(data))
			testenv.Must(t, err)
			body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
			testenv.Must(t, err)
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s notice of %s in the outbox", kind, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus waits until request id is in status.
func waitStatus(t *testing.T, p *proc, id, status string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var r request
		p.call("GET", "/v1/requests/"+id, "", &r)
		if r.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s is %s, want %s\n%s", id, r.Status, status, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unzip returns the files of a zip archive.
func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		testenv.Must(t, err)
		files[f.Name], err = io.ReadAll(rc)
		testenv.Must(t, err)
		_ = rc.Close()
	}
	return files
}
