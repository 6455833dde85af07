package drp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Tokens issues and checks the pair-wise bearer tokens of section 2.05. A
// token names its agent and is signed by the service, so no token is
// stored: "drp1.<agent id>.<random>.<signature>". It stands as long as the
// agent is in the directory and the key it was signed under is given; an
// agent removed from the directory loses its tokens with it.
type Tokens struct {
	// keys sign (the first) and check (all) tokens.
	keys [][]byte
}

// NewTokens returns the tokens signed under keys, the current first (keys
// derived for this purpose only from the blind index's).
func NewTokens(keys ...[]byte) *Tokens {
	if len(keys) == 0 {
		panic("drp: tokens without a key") // a programming error
	}
	return &Tokens{keys: keys}
}

const tokenPrefix = "drp1."

// Issue returns a new token for agentID.
func (t *Tokens) Issue(agentID string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	body := tokenPrefix + agentID + "." + base64.RawURLEncoding.EncodeToString(b)
	return body + "." + mac(t.keys[0], body)
}

// Agent returns the agent a token was issued to, or "" when the token is
// not one of this service's.
func (t *Tokens) Agent(token string) string {
	i := strings.LastIndexByte(token, '.')
	if i < 0 || !strings.HasPrefix(token, tokenPrefix) {
		return ""
	}
	body, sig := token[:i], token[i+1:]
	ok := false
	for _, k := range t.keys {
		ok = hmac.Equal([]byte(sig), []byte(mac(k, body))) || ok
	}
	if !ok {
		return ""
	}
	rest := strings.TrimPrefix(body, tokenPrefix)
	j := strings.LastIndexByte(rest, '.')
	if j <= 0 {
		return ""
	}
	return rest[:j]
}

func mac(key []byte, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
