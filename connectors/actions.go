package connectors

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// actionSpec says, for one action, which interface a connector implements to
// perform it and how to run it. The table [actions] is the only place that
// maps actions to interfaces: [Supports], [Registry.For], [Run], [Poll] and
// [Answer] all read it, so a new action is one entry here.
type actionSpec struct {
	// implements reports whether c has the action's interface.
	implements func(c Connector) bool
	// run performs the action; out is nil unless records is set.
	run func(ctx context.Context, c Connector, s Subject, out RecordWriter) (Result, error)
	// records says the action writes records to a RecordWriter.
	records bool
}

// actions is the action table.
var actions = map[Action]actionSpec{
	ActionExport: {
		implements: is[Exporter],
		run: func(ctx context.Context, c Connector, s Subject, out RecordWriter) (Result, error) {
			return c.(Exporter).Export(ctx, s, out)
		},
		records: true,
	},
	ActionErase: {
		implements: is[Eraser],
		run: func(ctx context.Context, c Connector, s Subject, _ RecordWriter) (Result, error) {
			return c.(Eraser).Erase(ctx, s)
		},
	},
	ActionOptOut: {
		implements: is[OptOuter],
		run: func(ctx context.Context, c Connector, s Subject, _ RecordWriter) (Result, error) {
			return c.(OptOuter).OptOut(ctx, s)
		},
	},
	ActionCorrect: {
		implements: is[Corrector],
		run: func(ctx context.Context, c Connector, s Subject, _ RecordWriter) (Result, error) {
			return c.(Corrector).Correct(ctx, s)
		},
	},
	ActionOptIn: {
		implements: is[OptInner],
		run: func(ctx context.Context, c Connector, s Subject, _ RecordWriter) (Result, error) {
			return c.(OptInner).OptIn(ctx, s)
		},
	},
}

func is[I any](c Connector) bool {
	_, ok := c.(I)
	return ok
}

// Actions returns every action a connector can be asked to do, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(actions))
	for a := range actions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// WritesRecords reports whether action a hands records to a [RecordWriter]
// (an export): [Run] and [Poll] need a writer for it, and ignore the one
// given for any other action.
func WritesRecords(a Action) bool {
	return actions[a].records
}

// Supports reports whether c can perform a: it implements the action's
// interface and, when it is [Scoped], says it handles a. An unknown action is
// supported by none.
func Supports(c Connector, a Action) bool {
	spec, known := actions[a]
	if !known || !spec.implements(c) {
		return false
	}
	if s, scoped := c.(Scoped); scoped {
		return s.Handles(a)
	}
	return true
}

// Run performs action a for subject s on c. out receives the records of an
// export (see [WritesRecords]) and is not used otherwise (nil is fine). A
// connector that cannot perform a (see [Supports]) gets a [Permanent] error,
// since retrying cannot help; a panic in the connector becomes an error.
func Run(ctx context.Context, c Connector, a Action, s Subject, out RecordWriter) (res Result, err error) {
	if !Supports(c, a) {
		return Result{}, Permanent(fmt.Errorf("connector %q cannot %s", c.Name(), a))
	}
	spec := actions[a]
	if !spec.records {
		out = nil
	} else if out == nil {
		return Result{}, fmt.Errorf("connector %q: %s needs a record writer", c.Name(), a)
	}
	defer recoverPanic(c, &err)
	return spec.run(ctx, c, s, out)
}

// Poll asks c how the work of action a it accepted earlier, named by handle
// (see [Pending]), is going. out receives an export's records as for [Run].
// A connector that is not a [Poller] gets a [Permanent] error.
func Poll(ctx context.Context, c Connector, a Action, handle string, out RecordWriter) (res Result, err error) {
	p, ok := c.(Poller)
	if !ok {
		return Result{}, Permanent(fmt.Errorf("connector %q waits on a remote system but cannot poll it any more", c.Name()))
	}
	if !WritesRecords(a) {
		out = nil
	}
	defer recoverPanic(c, &err)
	return p.Poll(ctx, a, handle, out)
}

// Answer hands c the answer an outside party sent for the work of action
// a named by handle (see [Answerer]). out receives an export's records as
// for [Run]. A connector that is not an [Answerer] gets a [Permanent]
// error.
func Answer(ctx context.Context, c Connector, a Action, handle string, answer []byte, out RecordWriter) (res Result, err error) {
	an, ok := c.(Answerer)
	if !ok {
		return Result{}, Permanent(fmt.Errorf("connector %q was answered but takes no answers", c.Name()))
	}
	if !WritesRecords(a) {
		out = nil
	}
	defer recoverPanic(c, &err)
	return an.Answer(ctx, a, handle, answer, out)
}

// Waits reports whether c can leave a job waiting on work its system
// finishes later: it is a [Poller] or an [Answerer].
func Waits(c Connector) bool {
	return is[Poller](c) || is[Answerer](c)
}

// Do is what a worker calls for one job: when the job waits on work the
// system accepted earlier (handle is set), [Answer] when an answer came
// for it, else [Poll] (an [Answerer] that cannot be polled just keeps
// waiting, PollAfter NoPoll); else [Run].
func Do(ctx context.Context, c Connector, a Action, s Subject, handle string, answer []byte, out RecordWriter) (Result, error) {
	switch {
	case handle == "":
		return Run(ctx, c, a, s, out)
	case len(answer) > 0:
		return Answer(ctx, c, a, handle, answer, out)
	case !is[Poller](c) && is[Answerer](c):
		return Result{Pending: &Pending{Handle: handle, PollAfter: NoPoll}}, nil
	}
	return Poll(ctx, c, a, handle, out)
}

// recoverPanic turns a panic of connector c into an error in *err.
func recoverPanic(c Connector, err *error) {
	if rec := recover(); rec != nil {
		*err = fmt.Errorf("connector %s panicked: %v", c.Name(), rec)
	}
}

// Owns reports whether c can correct field: it performs corrections (see
// [Supports]) and its CorrectFields name field.
func Owns(c Connector, field string) bool {
	cr, ok := c.(Corrector)
	return ok && Supports(c, ActionCorrect) && slices.Contains(cr.CorrectFields(), field)
}
