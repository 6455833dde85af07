package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// cliRun is a run of dsar and what it must answer.
type cliRun struct {
	args   []string
	env    []string
	code   int
	stdout string // in stdout
	stderr string // in stderr
}

// checkRuns runs each of runs (see runOnce) and checks its exit status and
// output.
func checkRuns(t *testing.T, runs []cliRun) {
	t.Helper()
	for _, c := range runs {
		out, errOut, code := runOnce(t, c.env, c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errOut, c.stderr) {
			t.Errorf("dsar %s: exit %d (want %d)\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), code, c.code, out, errOut)
		}
	}
}

// runOnce runs `dsar args...` to its end with env added to the test
// process's environment (its DSAR_ variables removed) and returns what it
// printed and its exit status.
func runOnce(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DSAR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run dsar %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// auditStore returns a prepared store on db and appends events to the
// chains of the given requests, n each.
func auditStore(t *testing.T, db *mongo.Database, chains map[string]int) *mongostore.Store {
	t.Helper()
	ctx := context.Background()
	s := mongostore.New(db, nil)
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	appendChains(t, s, chains)
	return s
}

// appendChains appends n events to the chain of each request of chains.
func appendChains(t *testing.T, s store.Store, chains map[string]int) {
	t.Helper()
	for req, n := range chains {
		for i := range n {
			if _, err := s.AppendAudit(context.Background(), req, "worker", "job", map[string]string{"step": fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func auditReq(n int) string { return fmt.Sprintf("01a20d27-0000-7000-8000-%012d", n) }

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	a, b := auditReq(1), auditReq(2)
	auditStore(t, db, map[string]int{a: 3, b: 2})
	env := []string{"DSAR_MONGO_URI=" + testenv.MongoURI(t), "DSAR_MONGO_DB=" + db.Name()}

	out, errOut, code := runOnce(t, env, "audit", "verify")
	if code != 0 || out != "2 chains, 5 events checked, 0 broken\n" {
		t.Fatalf("intact store: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Edit one event in the store, behind dsar's back.
	_, err := db.Collection(mongostore.AuditCollection).UpdateOne(context.Background(),
		bson.D{{Key: "_id", Value: a + ":00000002"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "actor", Value: "someone"}}}})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runOnce(t, env, "audit", "verify")
	want := "broken: request " + a + " at seq 2: hash mismatch: the event was edited\n2 chains, 5 events checked, 1 broken\n"
	if code != 1 || out != want {
		t.Fatalf("after an edit: exit %d\nstdout: %s\nwant:   %s\nstderr: %s", code, out, want, errOut)
	}
	if !strings.Contains(errOut, "1 of 2 chains broken") || strings.Contains(out+errOut, "someone") {
		t.Errorf("stderr: %s", errOut)
	}

	// The wrong database is a usage error, not an empty trail.
	_, errOut, code = runOnce(t, []string{env[0], "DSAR_MONGO_DB=" + testenv.Name("none")}, "audit", "verify")
	if code != 2 || !strings.Contains(errOut, "no audit_events collection") {
		t.Errorf("unknown database: exit %d, stderr: %s", code, errOut)
	}
}

// TestAuditVerifyDataDir checks `dsar audit verify --data-dir` on the
// embedded store's file while another process (here the test, standing for
// `dsar dev`) keeps it open and writes to it meanwhile.
func TestAuditVerifyDataDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, embeddedStoreFile)
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a, b, c := auditReq(1), auditReq(2), auditReq(3)
	appendChains(t, s, map[string]int{a: 4, b: 2})

	// Verify while "dev" keeps appending to a third chain.
	stop := make(chan struct{})
	appended := make(chan int, 1)
	appendErr := make(chan error, 1)
	go func() {
		n := 0
		defer func() { appended <- n }()
		for {
			if _, err := s.AppendAudit(ctx, c, "worker", "job", nil); err != nil {
				appendErr <- err
				return
			}
			n++
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	out, errOut, code := runOnce(t, nil, "audit", "verify", "--data-dir", dataDir)
	close(stop)
	n := <-appended
	close(appendErr)
	if err := <-appendErr; err != nil {
		t.Fatalf("append while the verifier read: %v", err)
	}
	if code != 0 || !strings.HasSuffix(out, ", 0 broken\n") {
		t.Fatalf("intact store, read beside its owner: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("read while %d events were appended: %s", n, out)

	// Delete a middle event (through a connection of its own, as
	// someone with the file would); the owner still works, and the
	// verifier sees the gap.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `DELETE FROM audit_events WHERE id = ?`, a+":00000002"); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runOnce(t, nil, "audit", "verify", "--data-dir", dataDir)
	want := "broken: request " + a + " at seq 3: seq gap: event 2 is missing before event 3 (deleted, or a later one inserted)\n" +
		fmt.Sprintf("3 chains, %d events checked, 1 broken\n", 3+2+n)
	if code != 1 || out != want {
		t.Fatalf("after a deletion: exit %d\nstdout: %s\nwant:   %s\nstderr: %s", code, out, want, errOut)
	}
	if _, err := s.AppendAudit(ctx, auditReq(4), "ops", "filed", nil); err != nil {
		t.Fatalf("the owner after two verifier runs: %v", err)
	}
	if trail, err := s.AuditTrail(ctx, c); err != nil || !dsr.VerifyChain(trail).OK || len(trail) != n {
		t.Fatalf("the owner reads %d events of chain c, %v", len(trail), err)
	}

	// A directory without a store is a usage error.
	_, errOut, code = runOnce(t, nil, "audit", "verify", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "no embedded store") {
		t.Errorf("a directory without a store: exit %d, stderr: %s", code, errOut)
	}
}

func TestAuditUsage(t *testing.T) {
	t.Parallel()
	checkRuns(t, []cliRun{
		{[]string{"--help"}, nil, 0, "audit      check the audit trail", ""},
		{[]string{"audit"}, nil, 2, "", "no subcommand given"},
		{[]string{"audit", "--help"}, nil, 0, "verify     check every request's chain", ""},
		{[]string{"audit", "nope"}, nil, 2, "", `unknown subcommand "nope"`},
		{[]string{"audit", "verify", "--help"}, nil, 0, "-data-dir DIR", ""},
		{[]string{"audit", "verify", "extra"}, nil, 2, "", "unexpected argument"},
		{[]string{"audit", "verify", "--nope"}, nil, 2, "", "flag provided but not defined"},
		{[]string{"audit", "verify"}, nil, 2, "", "no store: set DSAR_MONGO_URI"},
		{[]string{"audit", "verify"}, []string{"DSAR_MONGO_URI=redis://x"}, 2, "", "DSAR_MONGO_URI"},
		{[]string{"audit", "verify", "--data-dir", "x"}, []string{"DSAR_MONGO_URI=mongodb://127.0.0.1:1"}, 2, "", "give one"},
	})
}
