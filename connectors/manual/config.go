package manual

import (
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsar-project/dsar/connectors"
)

// Spec is a manual connector's settings in the connectors file.
type Spec struct {
	// Owner is the email address of the person who does the work by hand.
	Owner string `yaml:"owner"`
	// System describes the system in a few words ("Paper archive"); the
	// owner's emails and the task page name it.
	System string `yaml:"system"`
	// Instructions says, per action (export, erase, opt_out), what the
	// owner does. The connector handles exactly the actions listed.
	Instructions map[string]string `yaml:"instructions"`
	// RemindEvery is how often the owner is reminded while the task is
	// open; default 24h.
	RemindEvery time.Duration `yaml:"remind_every"`
	// EscalateAfter is how long after the task was made the escalation
	// channel is told it is still open; default 72h. The task stays open.
	EscalateAfter time.Duration `yaml:"escalate_after"`
	// LinkTTL is how long each emailed link works; every reminder carries
	// a fresh one. Default 168h (7 days).
	LinkTTL time.Duration `yaml:"link_ttl"`
	// MaxUpload bounds an uploaded export, in bytes; default 5 MiB, at
	// most 8 MiB.
	MaxUpload int64 `yaml:"max_upload"`
	// MaxRecords bounds the records of an uploaded export; default 10000.
	MaxRecords int `yaml:"max_records"`
}

// The defaults and bounds of a Spec.
const (
	DefaultRemindEvery   = 24 * time.Hour
	DefaultEscalateAfter = 72 * time.Hour
	DefaultLinkTTL       = 7 * 24 * time.Hour
	DefaultMaxUpload     = 5 << 20
	MaxMaxUpload         = 8 << 20
	DefaultMaxRecords    = 10_000
	MaxMaxRecords        = 1_000_000
	// MinInterval is the shortest remind_every or escalate_after.
	MinInterval = time.Second
	// maxSystem and maxInstructions bound the texts of the file.
	maxSystem       = 100
	maxInstructions = 2000
)

// withDefaults fills the settings left out.
func (s Spec) withDefaults() Spec {
	if s.RemindEvery == 0 {
		s.RemindEvery = DefaultRemindEvery
	}
	if s.EscalateAfter == 0 {
		s.EscalateAfter = DefaultEscalateAfter
	}
	if s.LinkTTL == 0 {
		s.LinkTTL = DefaultLinkTTL
	}
	if s.MaxUpload == 0 {
		s.MaxUpload = DefaultMaxUpload
	}
	if s.MaxRecords == 0 {
		s.MaxRecords = DefaultMaxRecords
	}
	return s
}

// validate returns every problem of s (after withDefaults).
func (s Spec) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Owner == "" {
		bad("owner: required: the email address of the person who does the work")
	} else if a, err := mail.ParseAddress(s.Owner); err != nil || a.Name != "" || a.Address != s.Owner {
		bad("owner: want one plain email address (name@example.com), not %q", s.Owner)
	}
	switch {
	case strings.TrimSpace(s.System) == "":
		bad("system: required: describe the system in a few words (\"Paper archive\")")
	case utf8.RuneCountInString(s.System) > maxSystem || strings.ContainsAny(s.System, "\r\n"):
		bad("system: want one line of at most %d characters", maxSystem)
	}
	if len(s.Instructions) == 0 {
		bad("instructions: say what the owner does for each action the system handles (export, erase, opt_out)")
	}
	for _, k := range connectors.SortedKeys(s.Instructions) {
		switch connectors.Action(k) {
		case connectors.ActionExport, connectors.ActionErase, connectors.ActionOptOut:
		default:
			bad("instructions: unknown action %q (known: export, erase, opt_out)", k)
		}
		if v := s.Instructions[k]; strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > maxInstructions {
			bad("instructions: %s: want 1 to %d characters", k, maxInstructions)
		}
	}
	for name, d := range map[string]time.Duration{"remind_every": s.RemindEvery, "escalate_after": s.EscalateAfter, "link_ttl": s.LinkTTL} {
		if d < MinInterval {
			bad("%s: want a duration of at least %s (e.g. 24h), not %s", name, MinInterval, d)
		}
	}
	if s.LinkTTL < s.RemindEvery {
		bad("link_ttl (%s) is shorter than remind_every (%s): the link of one reminder would expire before the next arrives", s.LinkTTL, s.RemindEvery)
	}
	if s.MaxUpload < 1 || s.MaxUpload > MaxMaxUpload {
		bad("max_upload: want 1 to %d bytes, not %d", MaxMaxUpload, s.MaxUpload)
	}
	if s.MaxRecords < 1 || s.MaxRecords > MaxMaxRecords {
		bad("max_records: want 1 to %d, not %d", MaxMaxRecords, s.MaxRecords)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
