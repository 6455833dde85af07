package dsr

import (
	"fmt"
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
		if !Type(t).Valid() {
			return p, fmt.Errorf("approval policy: %q: unknown request type (want one of access, deletion, opt_out)", t)
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
