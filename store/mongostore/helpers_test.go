package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	store *mongostore.Store
	cmds  *testenv.Commands
	clock *testenv.Clock
	index *dsr.BlindIndex
}

func setup(t *testing.T) fixture {
	t.Helper()
	cmds := &testenv.Commands{}
	db := testenv.Mongo(t, cmds.ClientOptions())
	clk := testenv.NewClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	s := mongostore.New(db, clk.Now)
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cmds.Reset()
	return fixture{store: s, cmds: cmds, clock: clk, index: idx}
}

// newRequest stores a verified GDPR request of typ for email.
func (f fixture) newRequest(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r := f.requestValue(t, typ, email)
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// requestValue builds, without storing it, a verified GDPR request.
func (f fixture) requestValue(t *testing.T, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}},
		ReceivedAt: f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifying stores a GDPR access request for email waiting for its
// subject to confirm their identity: the state in which a clock may stop.
func (f fixture) verifying(t *testing.T, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerifying,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}},
		ReceivedAt: f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// commandStep is one store operation and the commands it must send.
type commandStep struct {
	name string
	do   func() error
	want []string
}

// checkCommands runs steps in order, each failing the test if it fails,
// and checks the names of the commands each one sends.
func (f fixture) checkCommands(t *testing.T, steps []commandStep) {
	t.Helper()
	for _, st := range steps {
		f.cmds.Reset()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, f.cmds.Names()); diff != "" {
			t.Errorf("%s: commands (-want +got):\n%s", st.name, diff)
		}
	}
}
