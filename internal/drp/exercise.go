package drp

import (
	"fmt"
	"strings"
)

// The rights an exercise asks for (section 3.01). The protocol writes the
// opt-outs both ways: sale:opt_out in its table and schema, sale:opt-out in
// its examples; both are read, as [Exercise.Right] says.
const (
	RightOptOut     = "sale:opt_out"
	RightOptIn      = "sale:opt_in"
	RightDeletion   = "deletion"
	RightAccess     = "access"
	RightCategories = "access:categories"
	RightSpecific   = "access:specific"
)

// Rights are the rights of the protocol, in its order.
var Rights = []string{RightOptOut, RightOptIn, RightDeletion, RightAccess, RightCategories, RightSpecific}

// Address is the OpenID Connect address claim (Core 1.0, 5.1.1).
type Address struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"street_address,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country,omitempty"`
}

// Exercise is the signed body of POST /v1/data-rights-request: the
// envelope, the request, and the person's identity claims
// (schema.org/Person, section 3.04).
type Exercise struct {
	Envelope
	AgentRequestID string   `json:"agent-request-id,omitempty"`
	Exercise       string   `json:"exercise"`
	Regime         string   `json:"regime,omitempty"`
	Relationships  []string `json:"relationships,omitempty"`
	StatusCallback string   `json:"status_callback,omitempty"`

	Name                string   `json:"name,omitempty"`
	Email               string   `json:"email,omitempty"`
	EmailVerified       bool     `json:"email_verified,omitempty"`
	PhoneNumber         string   `json:"phone_number,omitempty"`
	PhoneNumberVerified bool     `json:"phone_number_verified,omitempty"`
	Address             *Address `json:"address,omitempty"`
	AddressVerified     bool     `json:"address_verified,omitempty"`
	PowerOfAttorney     string   `json:"power_of_attorney,omitempty"`
}

// MaxAgentRequestID bounds agent-request-id.
const MaxAgentRequestID = 255

// ParseExercise parses the JSON of a verified exercise message. It checks
// the fields' form, not the envelope (see [Envelope.Check]) nor whether the
// business serves the right.
func ParseExercise(msg []byte) (*Exercise, error) {
	var x Exercise
	if err := decode(msg, &x); err != nil {
		return nil, err
	}
	if x.Right() == "" {
		return nil, fmt.Errorf("%w: exercise is not one of %s", ErrMalformed, strings.Join(Rights, ", "))
	}
	if x.Regime != "" && x.Regime != "ccpa" && x.Regime != "voluntary" {
		return nil, fmt.Errorf("%w: regime is not ccpa or voluntary (or absent, for voluntary processing)", ErrMalformed)
	}
	if len(x.AgentRequestID) > MaxAgentRequestID {
		return nil, fmt.Errorf("%w: agent-request-id longer than %d characters", ErrMalformed, MaxAgentRequestID)
	}
	if x.Email == "" && x.PhoneNumber == "" {
		return nil, fmt.Errorf("%w: neither email nor phone_number: no identity to act on", ErrMalformed)
	}
	return &x, nil
}

// Right returns the exercise's right in the protocol's table form
// (sale:opt_out), or "" when it is none of Rights.
func (x *Exercise) Right() string {
	r := strings.ReplaceAll(x.Exercise, "-", "_")
	for _, known := range Rights {
		if r == known {
			return known
		}
	}
	return ""
}
