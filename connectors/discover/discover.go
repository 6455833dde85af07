// Package discover tells identity-shaped values from others, for the
// connector types that implement connectors.Discoverer: an email or a phone
// number by its value, a customer id, an advertising id or a device id by
// the name of the field that holds it and a value of the kind's form (a
// UUID is no advertising id in a field named order_ref). A [Tally] counts, over the
// documents or rows sampled from one collection or table, which fields hold
// such values, and turns the counts into findings. Nothing here keeps a
// value: only counts per field and kind.
package discover

import (
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// The identity kinds Classify returns; they are connectors.IdentityKinds.
const (
	KindEmail         = "email"
	KindPhone         = "phone"
	KindCustomerID    = "customer_id"
	KindAdvertisingID = "advertising_id"
	KindDeviceID      = "device_id"
)

var (
	email = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$`)
	// e164 is a phone number as intake stores it.
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	// phoneish is a number as people write it: digits with spaces, dots,
	// dashes and brackets, maybe a leading +.
	phoneish = regexp.MustCompile(`^(?:\+[1-9]|[0-9(])[0-9 ().-]{5,24}[0-9]$`)
)

// Classify returns the identity kind value looks like, held in a field
// called field (the last part of a dotted path is what counts), or "" when
// it looks like none:
//
//   - email: an address, local@domain.tld, at most 254 characters;
//   - phone: E.164 (+442079460958), or digits written with spaces, dots,
//     dashes or brackets (7 to 15 digits) that start with + or sit in a
//     field named like a phone (phone, mobile, tel, msisdn...);
//   - advertising_id: an advertising id as dsr.Normalize takes it (a UUID,
//     not a placeholder) in a field named like one (idfa, gaid,
//     advertising_id...: see [AdvertisingField]);
//   - device_id: a device id as dsr.Normalize takes it in a field named
//     like one (android_id, idfv, device_id...: see [DeviceField]);
//   - customer_id: a value of 1 to 64 characters without spaces in a field
//     named like a customer's id (customer_id, customerId, user_id,
//     account_no, member_ref...: see [IDField]).
func Classify(field, value string) string {
	v := strings.TrimSpace(value)
	if v == "" {
		return ""
	}
	if len(v) <= 254 && strings.Contains(v, "@") && email.MatchString(v) {
		return KindEmail
	}
	if e164.MatchString(v) {
		return KindPhone
	}
	if phoneish.MatchString(v) {
		if d := digits(v); d >= 7 && d <= 15 && (v[0] == '+' || PhoneField(field)) {
			return KindPhone
		}
	}
	if AdvertisingField(field) {
		if _, err := dsr.Normalize(dsr.KindAdvertisingID, v); err == nil {
			return KindAdvertisingID
		}
	}
	if DeviceField(field) {
		if _, err := dsr.Normalize(dsr.KindDeviceID, v); err == nil {
			return KindDeviceID
		}
	}
	if IDField(field) && len(v) <= 64 && !strings.ContainsFunc(v, unicode.IsSpace) {
		return KindCustomerID
	}
	return ""
}

// AdvertisingField reports whether a field is named like one holding an
// advertising id: its last part is idfa, gaid, aaid, ifa, afai, rida or
// maid, or contains advertisingid (ios_advertising_id, AdvertisingId).
func AdvertisingField(field string) bool {
	w := words(field)
	switch w {
	case "idfa", "gaid", "aaid", "ifa", "afai", "rida", "maid":
		return true
	}
	return strings.Contains(w, "advertisingid")
}

// DeviceField reports whether a field is named like one holding a vendor-
// or publisher-scoped device id: its last part is androidid, ssaid, idfv
// or vendorid, or contains deviceid or publisherid (device_id,
// roku_publisher_id).
func DeviceField(field string) bool {
	w := words(field)
	switch w {
	case "androidid", "ssaid", "idfv", "vendorid":
		return true
	}
	return strings.Contains(w, "deviceid") || strings.Contains(w, "publisherid")
}

func digits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

// words returns the last part of a dotted path, lower case, without
// separators: "billing.Customer_ID" -> "customerid".
func words(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, field)
}

// idOwners and idSuffixes make the names IDField accepts: an owner, then
// a suffix ("customer" + "id").
var (
	idOwners   = []string{"customer", "cust", "client", "user", "account", "acct", "member", "subscriber", "contact", "person", "buyer", "shopper", "patient", "profile", "consumer"}
	idSuffixes = []string{"id", "no", "nr", "num", "number", "ref", "key", "uuid", "guid", "code"}
)

// IDField reports whether a field is named like a customer's id: an owner
// (customer, cust, client, user, account, acct, member, subscriber,
// contact, person, buyer, shopper, patient, profile, consumer) followed by
// id, no, nr, num, number, ref, key, uuid, guid or code, in any case and
// with any separators (customer_id, customerId, CUST-NO), or uid. Of a
// dotted path only the last part counts: user.uuid is not one.
func IDField(field string) bool {
	w := words(field)
	if w == "uid" {
		return true
	}
	for _, o := range idOwners {
		rest, ok := strings.CutPrefix(w, o)
		if !ok {
			continue
		}
		for _, s := range idSuffixes {
			if rest == s {
				return true
			}
		}
	}
	return false
}

// PhoneField reports whether a field is named like one holding a phone
// number: its last part contains phone or mobile, or is tel, telephone,
// cell, cellular, msisdn or fax.
func PhoneField(field string) bool {
	w := words(field)
	if strings.Contains(w, "phone") || strings.Contains(w, "mobile") {
		return true
	}
	switch w {
	case "tel", "telephone", "cell", "cellular", "msisdn", "fax":
		return true
	}
	return false
}

// Tally counts which fields of the documents or rows sampled from one
// collection or table hold identity-shaped values. The zero value is ready
// to use. Call Row before each document or row, then Value for each of its
// values. It keeps counts only.
type Tally struct {
	rows   int
	fields map[fieldKind]*count
}

type fieldKind struct{ field, kind string }

type count struct {
	rows int // rows holding a value of the kind
	last int // the row that last counted, so a row counts once
}

// Row starts the next document or row.
func (t *Tally) Row() { t.rows++ }

// Rows returns how many documents or rows were counted.
func (t *Tally) Rows() int { return t.rows }

// Value classifies one value held in field (a dotted path) of the current
// row. Several values of one field in a row (an array) count the row once.
func (t *Tally) Value(field, value string) {
	kind := Classify(field, value)
	if kind == "" {
		return
	}
	if t.fields == nil {
		t.fields = map[fieldKind]*count{}
	}
	k := fieldKind{field, kind}
	c := t.fields[k]
	if c == nil {
		c = &count{}
		t.fields[k] = c
	}
	if c.last != t.rows {
		c.last = t.rows
		c.rows++
	}
}

// Findings returns, sorted by field and kind, a finding for each field and
// kind counted, except the fields covered says the configuration covers.
// collectionCovered says whether the collection itself is configured (see
// connectors.Finding.Covered).
func (t *Tally) Findings(collection string, collectionCovered bool, covered func(field string) bool) []connectors.Finding {
	var out []connectors.Finding
	for k, c := range t.fields {
		if covered != nil && covered(k.field) {
			continue
		}
		out = append(out, connectors.Finding{Collection: collection, Field: k.field, Kind: k.kind,
			Matches: c.rows, Sampled: t.rows, Covered: collectionCovered})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// CoveredBy returns a function reporting whether a field is one of paths
// or lies inside one ("shipping" covers "shipping.email").
func CoveredBy(paths ...string) func(field string) bool {
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
	}
	return func(field string) bool {
		for f := field; ; {
			if set[f] {
				return true
			}
			i := strings.LastIndexByte(f, '.')
			if i < 0 {
				return false
			}
			f = f[:i]
		}
	}
}
