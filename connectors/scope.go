package connectors

import "slices"

// Scope is a use of a person's data that they can refuse, and that a
// suppression keeps them out of (package dsr names it dsr.Scope and keeps
// the suppression list by it). A connector's data_map may declare the
// scopes its system serves (DataMap.Scopes): an opt-out of some scopes
// then reaches only the systems that serve one of them. The preference
// centre calls scopes purposes, and shows them by [Scope.Purpose].
type Scope string

// The scopes. ScopeAll is what a deletion suppresses: every use.
const (
	ScopeSaleShare Scope = "sale_share" // sale, or sharing for cross-context behavioural advertising
	ScopeMarketing Scope = "marketing"  // direct marketing: emails, messages, calls
	ScopeProfiling Scope = "profiling"  // personalisation and segmentation
	ScopeAll       Scope = "all"        // every use: the person asked to be deleted
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeSaleShare, ScopeMarketing, ScopeProfiling, ScopeAll}

// Valid reports whether s is one of Scopes.
func (s Scope) Valid() bool { return slices.Contains(Scopes, s) }

// Covers reports whether a suppression under s keeps a person out of use
// want: s is want, or s is ScopeAll.
func (s Scope) Covers(want Scope) bool { return s == want || s == ScopeAll }

// Purpose is how the preference centre names s to a person.
func (s Scope) Purpose() string {
	switch s {
	case ScopeMarketing:
		return "Email and other direct marketing"
	case ScopeProfiling:
		return "Personalisation and segmentation"
	case ScopeSaleShare:
		return "Sale or sharing with partners"
	case ScopeAll:
		return "Any use (the person asked to be deleted)"
	}
	return string(s)
}

// Serves reports whether a connector whose data map declares scopes
// serves an opt-out of want: it declares none (it serves every opt-out),
// or one of want.
func Serves(declared, want []Scope) bool {
	if len(declared) == 0 {
		return true
	}
	for _, s := range declared {
		if slices.Contains(want, s) {
			return true
		}
	}
	return false
}

// StillSuppressed returns the scopes of active (those still suppressed for
// a person) that keep a connector whose data map declares scopes from
// lifting its own suppression of them: ScopeAll, and every scope it
// serves (every one, when it declares none). Empty: it may lift.
func StillSuppressed(declared, active []Scope) []Scope {
	var out []Scope
	for _, s := range active {
		if s == ScopeAll || len(declared) == 0 || slices.Contains(declared, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
