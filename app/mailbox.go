package app

import (
	"strings"

	"golang.org/x/net/idna"
)

// MailboxKey is the form of an email that the per-mailbox limit counts:
// the address as its provider delivers it, so variants that reach one
// inbox share one limit. Every address loses a "+tag" from its local part
// and is compared in lower case, its domain in ASCII (punycode); where the
// provider is known to ignore more (mailboxRules), that goes too.
//
// It is for counting only: the blind index, merges and duplicate checks
// match the address as given, since a wrong guess here must never join two
// people's requests.
func MailboxKey(email string) string {
	local, domain, ok := strings.Cut(strings.ToLower(email), "@")
	if !ok {
		return strings.ToLower(email)
	}
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = a
	}
	local, _, _ = strings.Cut(local, "+")
	rule, known := mailboxRules[domain]
	if !known {
		// Subdomain addressing: anything@user.fastmail.com reaches
		// user@fastmail.com.
		if sub, parent, ok := strings.Cut(domain, "."); ok && mailboxRules[parent].subdomains {
			local, domain, rule = sub, parent, mailboxRules[parent]
		}
	}
	if rule.dashTag {
		local, _, _ = strings.Cut(local, "-")
	}
	if rule.noDots {
		local = strings.ReplaceAll(local, ".", "")
	}
	if rule.domain != "" {
		domain = rule.domain
	}
	return local + "@" + domain
}

// mailboxRule is what a provider ignores in the addresses it delivers,
// beyond the "+tag" every address loses.
type mailboxRule struct {
	noDots     bool   // dots in the local part are ignored
	dashTag    bool   // "name-keyword" is a disposable address of "name"
	subdomains bool   // "x@name.domain" reaches "name@domain"
	domain     string // another domain of the same mailboxes
}

// mailboxRules lists the providers whose rules are documented by the
// provider (docs/portal.md cites each). Providers not listed (Outlook,
// iCloud, Proton...) are counted with "+tags" removed only.
var mailboxRules = map[string]mailboxRule{
	"gmail.com":      {noDots: true},
	"googlemail.com": {noDots: true, domain: "gmail.com"},
	"yahoo.com":      {dashTag: true},
	"fastmail.com":   {subdomains: true},
	"fastmail.fm":    {subdomains: true},
}
