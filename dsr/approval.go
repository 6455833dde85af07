package dsr

import (
	"fmt"
	"slices"
	"strings"
)

// ApprovalPolicy says which verified requests wait for an agent's approval
// before they are processed. The zero value approves nothing.
type ApprovalPolicy struct {
	rules map[string]bool
}

// ParseApprovalPolicy reads a comma-separated list of request types, each
// optionally narrowed to a regulation ("deletion", "access:ccpa"), or
// "none".
func ParseApprovalPolicy(s string) (ApprovalPolicy, error) {
	p := ApprovalPolicy{rules: map[string]bool{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || part == "none" {
			continue
		}
		t, reg, narrowed := strings.Cut(part, ":")
		if !slices.Contains(FiledTypes, Type(t)) {
			return p, fmt.Errorf("approval policy: %q: unknown request type (want one of access, deletion, opt_out, correction)", t)
		}
		if narrowed && !Regulation(reg).Valid() {
			return p, fmt.Errorf("approval policy: %q: unknown regulation", reg)
		}
		p.rules[part] = true
	}
	return p, nil
}

// Requires reports whether a request of type t under reg waits for
// approval.
func (p ApprovalPolicy) Requires(t Type, reg Regulation) bool {
	return p.rules[string(t)] || p.rules[string(t)+":"+string(reg)]
}

// ActorPolicy is the actor of the history entries recorded by rule rather
// than for a person (a request held for approval).
const ActorPolicy = "policy"

// ReasonAwaitingApproval is the history reason of a request held for an
// agent's approval.
const ReasonAwaitingApproval = "waiting for an agent's approval"

// Holds is the rule of which requests wait for an agent's approval before
// they are processed: a verified one, not approved yet, whose type (and
// regulation) p names, or any appeal or correction (an appeal is always
// decided by an agent, and a correction, which writes what a person says
// into the business's systems, is never applied without one). An opt-in
// is never held: its lift is done when it is filed. Whoever moves a request into verified applies it (intake, the
// portal's verification, the fan-out for requests verified before).
func (p ApprovalPolicy) Holds(r *Request) bool {
	return r.Status == StatusVerified && r.ApprovedBy == "" && r.Type != TypeOptIn && (p.Requires(r.Type, r.Regulation) || r.AppealOf != "" || r.Type == TypeCorrection)
}
