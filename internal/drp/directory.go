package drp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
)

// Agent is one authorised agent of the directory (section 3.05.1): the
// service trusts the messages signed with its verify key.
type Agent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// VerifyKey is base64 of the agent's 32-byte Ed25519 public key.
	VerifyKey            string `json:"verify_key"`
	WebURL               string `json:"web_url,omitempty"`
	IdentityAssuranceURL string `json:"identity_assurance_url,omitempty"`
	TechnicalContact     string `json:"technical_contact,omitempty"`
	BusinessContact      string `json:"business_contact,omitempty"`

	key ed25519.PublicKey
}

// Key returns the agent's verify key.
func (a Agent) Key() ed25519.PublicKey { return a.key }

// agentID is what an agent id may hold: the directory's schema says
// [A-Z_]+ while its examples use lower case and hyphens; ids travel in
// URLs and tokens, so they are kept to letters, digits, '_', '-' and '.'.
var agentID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Directory is the agents the service trusts, by id.
type Directory map[string]Agent

// ParseDirectory reads the agent directory as the protocol's operators
// publish it: a JSON array of agent entries (a single entry is read as a
// list of one). Every entry needs an id and a verify key; ids are unique.
func ParseDirectory(data []byte) (Directory, error) {
	data = bytes.TrimSpace(data)
	var list []Agent
	if len(data) > 0 && data[0] == '{' {
		var one Agent
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("agent directory: %w", err)
		}
		list = []Agent{one}
	} else if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("agent directory: want a JSON array of agents: %w", err)
	}
	dir := Directory{}
	for i, a := range list {
		switch {
		case !agentID.MatchString(a.ID):
			return nil, fmt.Errorf("agent directory: entry %d: id %q: want 1 to 64 letters, digits, '_', '-' or '.'", i+1, a.ID)
		case dir[a.ID].ID != "":
			return nil, fmt.Errorf("agent directory: entry %d: id %q listed twice", i+1, a.ID)
		}
		k, err := base64.StdEncoding.DecodeString(a.VerifyKey)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("agent directory: entry %d (%s): verify_key: want base64 of a %d-byte Ed25519 public key", i+1, a.ID, ed25519.PublicKeySize)
		}
		a.key = ed25519.PublicKey(k)
		dir[a.ID] = a
	}
	return dir, nil
}
