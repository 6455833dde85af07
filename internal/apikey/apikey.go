// Package apikey holds what an API key is and may do: the roles, the keys as
// configured (only the SHA-256 of a secret), and the keyring that
// authenticates a secret. It is defined once here, with no HTTP and no
// configuration format, so that config (which reads keys), the HTTP toolkit
// (which checks them) and the application (which names agents) share one
// type.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Role is what the holder of an API key may do.
type Role string

// The roles a key can hold.
const (
	RoleAdmin   Role = "admin"
	RoleAgent   Role = "agent"
	RoleAuditor Role = "auditor"
	// RolePipeline is a segmentation pipeline's: it may check identities
	// against the suppression list and filter lists through it, and call
	// nothing else.
	RolePipeline Role = "pipeline"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleAgent, RoleAuditor, RolePipeline}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleAgent || r == RoleAuditor || r == RolePipeline
}

// WorksOnRequests reports whether a holder of r may act on requests (file,
// approve, be assigned one): an agent or an admin.
func (r Role) WorksOnRequests() bool {
	return r == RoleAgent || r == RoleAdmin
}

// Key is one API key as configured: its name, role and the SHA-256 of its
// secret (the secret itself is never kept).
type Key struct {
	Name string
	Role Role
	Hash [32]byte
}

// Principal is an authenticated caller: the name and role of the key it
// presented.
type Principal struct {
	Name string
	Role Role
}

// Keyring authenticates secrets against keys in constant time.
type Keyring struct {
	keys []Key
}

// NewKeyring returns a keyring of keys.
func NewKeyring(keys ...Key) *Keyring {
	return &Keyring{keys: append([]Key(nil), keys...)}
}

// Authenticate returns the principal holding secret, and false when no key
// has it. The time it takes does not depend on which key matched.
func (k *Keyring) Authenticate(secret string) (Principal, bool) {
	h := sha256.Sum256([]byte(secret))
	var found Principal
	ok := false
	for _, key := range k.keys { // no early exit
		if subtle.ConstantTimeCompare(h[:], key.Hash[:]) == 1 {
			found, ok = Principal{Name: key.Name, Role: key.Role}, true
		}
	}
	return found, ok
}

// HasAgent reports whether name is a key that may work on requests.
func (k *Keyring) HasAgent(name string) bool {
	for _, key := range k.keys {
		if key.Name == name && key.Role.WorksOnRequests() {
			return true
		}
	}
	return false
}

// Lookup returns the key named name, with the hash of its secret (to tell
// whether it is still the key a session was signed in with).
func (k *Keyring) Lookup(name string) (Key, bool) {
	for _, key := range k.keys {
		if key.Name == name {
			return key, true
		}
	}
	return Key{}, false
}

// Principals lists the keys' names and roles, in the order given, without
// their hashes.
func (k *Keyring) Principals() []Principal {
	out := make([]Principal, len(k.keys))
	for i, key := range k.keys {
		out[i] = Principal{Name: key.Name, Role: key.Role}
	}
	return out
}
