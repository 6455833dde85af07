package connectors_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// acting records which method ran and with what.
type acting struct {
	named
	ran  *[]string
	poll bool
}

func (a acting) Export(_ context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	*a.ran = append(*a.ran, "export "+s.Values("email")[0])
	var r connectors.Result
	r.Add("customers", "exported", 1)
	return r, out.WriteRecord(context.Background(), "customers", map[string]any{"email": s.Values("email")[0]})
}

func (a acting) Erase(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	*a.ran = append(*a.ran, "erase "+s.Values("email")[0])
	return connectors.Result{Records: 2}, nil
}

func (a acting) OptOut(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	*a.ran = append(*a.ran, "opt_out "+s.Values("email")[0])
	return connectors.Result{Records: 3}, nil
}

func (a acting) OptIn(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	*a.ran = append(*a.ran, "opt_in "+s.Values("email")[0])
	return connectors.Result{Records: 6}, nil
}

func (a acting) CorrectFields() []string { return []string{"name"} }

func (a acting) Correct(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	*a.ran = append(*a.ran, "correct "+s.Values("email")[0]+" "+s.Corrections[0].Field+"="+s.Corrections[0].Value)
	return connectors.Result{Records: 5}, nil
}

func (a acting) Poll(_ context.Context, act connectors.Action, handle string, out connectors.RecordWriter) (connectors.Result, error) {
	*a.ran = append(*a.ran, "poll "+string(act)+" "+handle+" writer="+map[bool]string{true: "yes", false: "no"}[out != nil])
	return connectors.Result{Records: 4}, nil
}

// panicky panics in every action.
type panicky struct{ named }

func (panicky) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	panic("boom")
}

type sink struct{ n int }

func (s *sink) WriteRecord(context.Context, string, any) error { s.n++; return nil }

// TestActionTable: every action is dispatched to its interface by the one
// table; support checks and runs agree, unsupported and unknown actions are
// permanent errors, and the writer reaches exports only.
func TestActionTable(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff([]connectors.Action{connectors.ActionCorrect, connectors.ActionErase, connectors.ActionExport, connectors.ActionOptIn, connectors.ActionOptOut}, connectors.Actions()); diff != "" {
		t.Errorf("Actions (-want +got):\n%s", diff)
	}
	ada := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}},
		Corrections: []connectors.Correction{{Field: "name", Value: "Ada King"}}}
	tests := []struct {
		action  connectors.Action
		records bool
		want    int64
		ran     string
	}{
		{connectors.ActionExport, true, 1, "export ada@example.com"},
		{connectors.ActionErase, false, 2, "erase ada@example.com"},
		{connectors.ActionOptOut, false, 3, "opt_out ada@example.com"},
		{connectors.ActionCorrect, false, 5, "correct ada@example.com name=Ada King"},
		{connectors.ActionOptIn, false, 6, "opt_in ada@example.com"},
	}
	for _, tt := range tests {
		t.Run(string(tt.action), func(t *testing.T) {
			t.Parallel()
			var ran []string
			c := acting{named: "full", ran: &ran}
			if got := connectors.WritesRecords(tt.action); got != tt.records {
				t.Errorf("WritesRecords = %v; want %v", got, tt.records)
			}
			if !connectors.Supports(c, tt.action) {
				t.Fatal("Supports = false")
			}
			w := &sink{}
			res, err := connectors.Run(t.Context(), c, tt.action, ada, w)
			if err != nil || res.Records != tt.want {
				t.Fatalf("Run = %v, %v; want %d records", res.Records, err, tt.want)
			}
			if tt.records != (w.n == 1) {
				t.Errorf("records written: %d; the writer must reach exports only", w.n)
			}
			res, err = connectors.Do(t.Context(), c, tt.action, ada, "op-1", nil, w)
			if err != nil || res.Records != 4 {
				t.Fatalf("Do with a handle = %v, %v; want the poll's 4 records", res.Records, err)
			}
			writer := map[bool]string{true: "yes", false: "no"}[tt.records]
			if diff := cmp.Diff([]string{tt.ran, "poll " + string(tt.action) + " op-1 writer=" + writer}, ran); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}

			// A connector without the interface, or scoped away from it.
			for _, c := range []connectors.Connector{named("plain"), scoped{full: full{exporter{"none"}}}} {
				if connectors.Supports(c, tt.action) {
					t.Errorf("Supports(%s) = true", c.Name())
				}
				_, err := connectors.Run(t.Context(), c, tt.action, ada, w)
				if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), `connector "`+c.Name()+`" cannot `+string(tt.action)) {
					t.Errorf("Run on %s: %v; want a permanent 'cannot %s'", c.Name(), err, tt.action)
				}
				_, err = connectors.Poll(t.Context(), c, tt.action, "op-1", w)
				if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "cannot poll") {
					t.Errorf("Poll on %s: %v; want a permanent 'cannot poll'", c.Name(), err)
				}
			}
		})
	}

	var ran []string
	c := acting{named: "full", ran: &ran}
	if connectors.Supports(c, "sell") {
		t.Error(`Supports("sell") = true for an unknown action`)
	}
	if _, err := connectors.Run(t.Context(), c, "sell", ada, nil); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf(`Run("sell") = %v; want a permanent error`, err)
	}
	if _, err := connectors.Run(t.Context(), c, connectors.ActionExport, ada, nil); err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("export without a writer: %v; want an error (a caller's bug, not the connector's)", err)
	}
	if len(ran) != 0 {
		t.Errorf("calls %v; want none", ran)
	}
	_, err := connectors.Run(t.Context(), panicky{"wild"}, connectors.ActionErase, ada, nil)
	if err == nil || err.Error() != "connector wild panicked: boom" {
		t.Errorf("Run on a connector that panics: %v", err)
	}
}

// answering takes answers and, when poll is set, is polled too.
type answering struct {
	named
	ran *[]string
}

func (a answering) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: "op-1"}}, nil
}

func (a answering) Export(context.Context, connectors.Subject, connectors.RecordWriter) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: "op-1"}}, nil
}

func (a answering) Answer(_ context.Context, act connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error) {
	*a.ran = append(*a.ran, "answer "+string(act)+" "+handle+" "+string(answer)+" writer="+map[bool]string{true: "yes", false: "no"}[out != nil])
	return connectors.Result{Records: 5}, nil
}

// TestDoAnswer: a waiting job with an answer goes to Answer (the writer for
// exports only); without one, an Answerer that cannot be polled keeps
// waiting, not polled until its deadline; an answer for a connector that
// takes none is a permanent error.
func TestDoAnswer(t *testing.T) {
	t.Parallel()
	ada := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}
	var ran []string
	c := answering{named: "hook", ran: &ran}
	if !connectors.Waits(c) || connectors.Waits(named("plain")) {
		t.Error("Waits: want true for an Answerer, false for a plain connector")
	}
	for _, a := range []connectors.Action{connectors.ActionExport, connectors.ActionErase} {
		res, err := connectors.Do(t.Context(), c, a, ada, "op-1", []byte(`{"ok":true}`), &sink{})
		if err != nil || res.Records != 5 || res.Pending != nil {
			t.Errorf("Do(%s) with an answer = %+v, %v; want the answer's 5 records", a, res, err)
		}
		res, err = connectors.Do(t.Context(), c, a, ada, "op-1", nil, &sink{})
		if err != nil || res.Pending == nil || res.Pending.Handle != "op-1" || res.Pending.PollAfter < connectors.NoPoll {
			t.Errorf("Do(%s) without an answer = %+v, %v; want still pending on op-1, not polled", a, res.Pending, err)
		}
	}
	want := []string{`answer export op-1 {"ok":true} writer=yes`, `answer erase op-1 {"ok":true} writer=no`}
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	var polled []string
	_, err := connectors.Do(t.Context(), acting{named: "full", ran: &polled}, connectors.ActionErase, ada, "op-1", []byte(`{}`), nil)
	if !errors.Is(err, connectors.ErrPermanent) || len(polled) != 0 {
		t.Errorf("an answer for a connector that takes none: %v (calls %v); want a permanent error, no call", err, polled)
	}
}
