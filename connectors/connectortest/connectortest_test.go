package connectortest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// TestSuite runs the suite against an in-memory system, answering at once
// and finishing later, and with each fault: every case of the contract runs
// somewhere, also those the mongodb type skips (Async, Rejected,
// RateLimited).
func TestSuite(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			t.Parallel()
			connectortest.Run(t, connectortest.Harness{
				New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
					m := &memory{async: async, ops: map[string]*op{}}
					return m, m.fixture()
				},
				Fault: func(_ *testing.T, f connectortest.Fault) connectors.Connector {
					return &memory{fault: f, ops: map[string]*op{}}
				},
			})
		})
	}
}

type contact struct {
	Email, CustomerID, Name string
	OptedOut                bool
}

// memory is a system holding contacts and a mailing list, reached by a
// connector that implements every interface.
type memory struct {
	async bool
	fault connectortest.Fault

	mu       sync.Mutex
	contacts []contact
	list     []string // member emails
	ops      map[string]*op
	nextOp   int
}

// op is work the system accepted and finishes after one Advance.
type op struct {
	res     connectors.Result
	records []any
	ready   bool
}

func (m *memory) Name() string { return "mem" }

func (m *memory) failure() error {
	switch m.fault {
	case connectortest.Unreachable:
		return errors.New("dial tcp 192.0.2.1:443: connection refused")
	case connectortest.Rejected:
		return connectors.Permanent(errors.New("401 Unauthorized: invalid API key"))
	case connectortest.RateLimited:
		return connectors.RetryAfter(30*time.Second, errors.New("429 Too Many Requests"))
	}
	return nil
}

func (m *memory) matches(c contact, s connectors.Subject) bool {
	return slices.Contains(s.Values("email"), c.Email) || slices.Contains(s.Values("customer_id"), c.CustomerID)
}

// finish answers with res at once, or, when the system is asynchronous,
// with Pending until the work is advanced.
func (m *memory) finish(res connectors.Result, records []any, out connectors.RecordWriter) (connectors.Result, error) {
	if !m.async {
		return res, write(out, records)
	}
	m.nextOp++
	h := fmt.Sprintf("op-%d", m.nextOp)
	m.ops[h] = &op{res: res, records: records}
	return connectors.Result{Pending: &connectors.Pending{Handle: h, PollAfter: time.Minute}}, nil
}

func write(out connectors.RecordWriter, records []any) error {
	for _, r := range records {
		coll := "contacts"
		if _, ok := r.(map[string]any); ok {
			coll = "lists"
		}
		if err := out.WriteRecord(context.Background(), coll, r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memory) Export(_ context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	if err := m.failure(); err != nil {
		return connectors.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res connectors.Result
	var records []any
	for _, c := range m.contacts {
		if m.matches(c, s) {
			records = append(records, c)
		}
	}
	res.Add("contacts", "exported", int64(len(records)))
	var mine []string
	for _, e := range m.list {
		if slices.Contains(s.Values("email"), e) {
			mine = append(mine, e)
		}
	}
	if len(mine) > 0 {
		records = append(records, map[string]any{"list": "newsletter", "members": mine})
		res.Add("lists", "exported", 1)
	}
	return m.finish(res, records, out)
}

func (m *memory) Erase(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	if err := m.failure(); err != nil {
		return connectors.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res connectors.Result
	kept := m.contacts[:0]
	for _, c := range m.contacts {
		if !m.matches(c, s) {
			kept = append(kept, c)
		}
	}
	res.Add("contacts", "deleted", int64(len(m.contacts)-len(kept)))
	m.contacts = kept
	res.Add("lists", "pulled", m.pull(s))
	return m.finish(res, nil, nil)
}

func (m *memory) pull(s connectors.Subject) int64 {
	before := len(m.list)
	m.list = slices.DeleteFunc(m.list, func(e string) bool { return slices.Contains(s.Values("email"), e) })
	if len(m.list) < before {
		return 1
	}
	return 0
}

func (m *memory) OptOut(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	if err := m.failure(); err != nil {
		return connectors.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res connectors.Result
	var n int64
	for i, c := range m.contacts {
		if m.matches(c, s) && !c.OptedOut {
			m.contacts[i].OptedOut = true
			n++
		}
	}
	res.Add("contacts", "set", n)
	res.Add("lists", "pulled", m.pull(s))
	return m.finish(res, nil, nil)
}

func (m *memory) Resolve(_ context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	if err := m.failure(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []connectors.Identity
	for _, c := range m.contacts {
		if slices.Contains(s.Values("email"), c.Email) {
			out = append(out, connectors.Identity{Kind: "customer_id", Value: c.CustomerID, Source: "mem/contacts"})
		}
	}
	return out, nil
}

func (m *memory) Poll(_ context.Context, _ connectors.Action, handle string, out connectors.RecordWriter) (connectors.Result, error) {
	if err := m.failure(); err != nil {
		return connectors.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.ops[handle]
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("operation %q not found", handle))
	}
	if !o.ready {
		return connectors.Result{Pending: &connectors.Pending{Handle: handle}}, nil
	}
	if out != nil {
		if err := write(out, o.records); err != nil {
			return connectors.Result{}, err
		}
	}
	return o.res, nil
}

// advance finishes every operation accepted so far.
func (m *memory) advance(context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.ops {
		o.ready = true
	}
}

func (m *memory) fixture() *connectortest.Fixture {
	ada := contact{Email: "ada@example.com", CustomerID: "cus_ada", Name: "Ada Lovelace"}
	grace := contact{Email: "grace@example.com", CustomerID: "cus_grace", Name: "Grace Hopper"}
	count := func(f func(contact) bool) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, c := range m.contacts {
			if f(c) {
				n++
			}
		}
		return n
	}
	inList := func(e string) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Contains(m.list, e)
	}
	return &connectortest.Fixture{
		Subject:     connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada.Email}}},
		Resolved:    []connectors.Identity{{Kind: "customer_id", Value: ada.CustomerID}},
		OtherValues: []string{grace.Email, grace.CustomerID, grace.Name},
		Seed: func(context.Context) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.contacts = []contact{ada, {Email: "ada.l@example.com", CustomerID: ada.CustomerID, Name: ada.Name}, grace}
			m.list = []string{grace.Email, ada.Email}
		},
		SubjectRecords: func(context.Context) int {
			return count(func(c contact) bool { return c.CustomerID == ada.CustomerID }) + map[bool]int{true: 1}[inList(ada.Email)]
		},
		OtherRecords: func(context.Context) int {
			return count(func(c contact) bool { return c == grace }) + map[bool]int{true: 1}[inList(grace.Email)]
		},
		InSegment: func(context.Context) bool { return inList(ada.Email) },
		OptedOut: func(context.Context) bool {
			return count(func(c contact) bool { return c.CustomerID == ada.CustomerID && !c.OptedOut }) == 0
		},
		Export:  map[string]int64{"contacts": 2, "lists": 1},
		Erase:   map[string]int64{"contacts": 2, "lists": 1},
		OptOut:  map[string]int64{"contacts": 2, "lists": 1},
		Advance: m.advance,
	}
}
