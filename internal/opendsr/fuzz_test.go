package opendsr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/opendsr"
)

// addSpecExamples adds the specification's example messages
// (testdata/*.json) to f's seeds.
func addSpecExamples(f *testing.F) {
	f.Helper()
	paths, err := filepath.Glob("testdata/*.json")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no examples in testdata: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzDecode: Decode never panics; what it accepts is JSON once the
// commas it tolerates are dropped, and those are only commas after a value
// and before the } or ] that closes it (white space between), nothing
// else; and it accepts all JSON, reading it as encoding/json does (the
// commas it drops are never inside a string).
func FuzzDecode(f *testing.F) {
	addSpecExamples(f)
	for _, s := range []string{`{"a":[1,2,],}`, `[,]`, `{,}`, `{"a":",}"}`, `{"a":"\\",}`, `[1,,]`, `{"a":1}}`, `{"a":1}]`, `{"a":1} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got any
		err := opendsr.Decode(data, &got)
		if err != nil && !errors.Is(err, opendsr.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if json.Valid(data) && len(data) <= opendsr.MaxMessage {
			var want any
			if uerr := json.Unmarshal(data, &want); uerr != nil {
				t.Fatal(uerr)
			}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("valid JSON %q decoded as %#v, %v; want %#v", data, got, err, want)
			}
			return
		}
		if err != nil {
			return
		}
		cleaned, ok := withoutTrailingCommas(data)
		if !ok {
			t.Fatalf("accepted %q: a comma that is not after a value and before } or ]", data)
		}
		if !json.Valid(cleaned) {
			t.Fatalf("accepted %q, which is not JSON without its trailing commas (%q)", data, cleaned)
		}
	})
}

// withoutTrailingCommas drops from data the commas outside strings that
// follow a value and precede (after white space) a } or ]; ok is false
// when a comma precedes a } or ] without following a value (`[,]`), which
// no JSON with trailing commas has.
func withoutTrailingCommas(data []byte) (out []byte, ok bool) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	var last byte // the last byte kept outside white space
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			out = append(out, c)
			continue
		}
		if c == ',' {
			j := i + 1
			for j < len(data) && isSpace(data[j]) {
				j++
			}
			if j < len(data) && (data[j] == '}' || data[j] == ']') {
				if last == 0 || bytes.IndexByte([]byte("[{,:"), last) >= 0 {
					return nil, false
				}
				continue
			}
		}
		if c == '"' {
			inString = true
		}
		if !isSpace(c) {
			last = c
		}
		out = append(out, c)
	}
	return out, true
}

// FuzzParseRequest: ParseRequest never panics, and a request it accepts
// holds every invariant the service relies on: a lower-case UUID v4 id, a
// known type and regulation, 1 to MaxIdentities identities of known types
// and formats, each hashed one the hex digest of its format's length, an
// RFC 3339 submitted_time and at most MaxCallbacks absolute http(s)
// callback URLs without credentials. Its errors wrap ErrMalformed and
// never quote an identity's value.
func FuzzParseRequest(f *testing.F) {
	addSpecExamples(f)
	f.Add([]byte(`{"subject_request_id":"a7551968-d5d6-44b2-9831-815ac9017798","subject_request_type":"access","submitted_time":"2018-10-02T15:00:00Z",` +
		`"subject_identities":[{"identity_type":"email","identity_value":" 0123456789ABCDEF0123456789abcdef ","identity_format":"md5"}],"regulation":"ccpa"}`))
	f.Add([]byte(`{"subject_request_id":"A7551968-D5D6-44B2-9831-815AC9017798","subject_request_type":"erasure","submitted_time":"2018-10-02T15:00:00Z",` +
		`"subject_identities":[{"identity_type":"email","identity_value":"secret-person@example.com","identity_format":"sha256"}],` +
		`"status_callback_urls":["https://u:p@example.com/cb","/relative"]}`))
	hexLen := map[string]int{opendsr.FormatMD5: 32, opendsr.FormatSHA1: 40, opendsr.FormatSHA256: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := opendsr.ParseRequest(data)
		if err != nil {
			if r != nil {
				t.Fatal("a request returned with an error")
			}
			if !errors.Is(err, opendsr.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			checkNoIdentityQuoted(t, data, err)
			return
		}
		if !validUUIDv4(r.SubjectRequestID) {
			t.Fatalf("accepted id %q", r.SubjectRequestID)
		}
		if !slices.Contains(opendsr.Types, r.SubjectRequestType) {
			t.Fatalf("accepted type %q", r.SubjectRequestType)
		}
		if r.Regulation != "gdpr" && r.Regulation != "ccpa" {
			t.Fatalf("accepted regulation %q", r.Regulation)
		}
		if _, err := time.Parse(time.RFC3339, r.SubmittedTime); err != nil {
			t.Fatalf("accepted submitted_time %q", r.SubmittedTime)
		}
		if n := len(r.SubjectIdentities); n < 1 || n > opendsr.MaxIdentities {
			t.Fatalf("accepted %d identities", n)
		}
		for i, id := range r.SubjectIdentities {
			if !slices.Contains(opendsr.IdentityTypes, id.Type) || !slices.Contains(opendsr.Formats, id.Format) {
				t.Fatalf("identity %d: accepted type %q, format %q", i, id.Type, id.Format)
			}
			v := strings.TrimSpace(id.Value)
			if v == "" || len(v) > 512 {
				t.Fatalf("identity %d: accepted a value of %d bytes", i, len(v))
			}
			if n := hexLen[id.Format]; n > 0 && (len(v) != n || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "") {
				t.Fatalf("identity %d: accepted %q as %s", i, v, id.Format)
			}
		}
		if len(r.StatusCallbackURLs) > opendsr.MaxCallbacks {
			t.Fatalf("accepted %d callbacks", len(r.StatusCallbackURLs))
		}
		for i, u := range r.StatusCallbackURLs {
			p, err := url.Parse(u)
			if err != nil || !p.IsAbs() || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
				t.Fatalf("callback %d: accepted %q", i, u)
			}
		}
		// What was accepted reads back the same once encoded.
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := opendsr.ParseRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
		if !reflect.DeepEqual(normalExtensions(again), normalExtensions(r)) {
			t.Fatalf("re-encoded request reads as %+v, not %+v", again, r)
		}
	})
}

// normalExtensions returns r with its extensions compacted, so that two
// encodings of the same extensions compare equal.
func normalExtensions(r *opendsr.Request) opendsr.Request {
	out := *r
	out.Extensions = map[string]json.RawMessage{}
	for k, v := range r.Extensions {
		var b bytes.Buffer
		if json.Compact(&b, v) == nil {
			v = b.Bytes()
		}
		out.Extensions[k] = v
	}
	return out
}

// validUUIDv4 reports whether id is a lower-case version 4 UUID of the
// RFC 4122 variant, checked byte by byte.
func validUUIDv4(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		case 14:
			if c != '4' {
				return false
			}
		case 19:
			if c != '8' && c != '9' && c != 'a' && c != 'b' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// checkNoIdentityQuoted fails t when err quotes the value of an identity
// of data (one of 6 bytes or more, which no message of ParseRequest's
// holds by chance).
func checkNoIdentityQuoted(t *testing.T, data []byte, err error) {
	t.Helper()
	var body struct {
		Identities []struct {
			Value string `json:"identity_value"`
		} `json:"subject_identities"`
	}
	if json.Unmarshal(data, &body) != nil {
		return
	}
	for _, id := range body.Identities {
		v := strings.TrimSpace(id.Value)
		if len(v) >= 6 && !strings.Contains(opendsrMessages, v) && strings.Contains(err.Error(), v) {
			t.Fatalf("the error quotes an identity's value: %v", err)
		}
	}
}

// opendsrMessages is the fixed text of ParseRequest's errors (whose
// words a value may happen to be).
const opendsrMessages = "opendsr: malformed message: regulation must be gdpr or ccpa; subject_request_id must be a lower-case UUID v4; " +
	"subject_request_type must be one of access, portability, erasure; submitted_time must be an RFC 3339 time; " +
	"subject_identities must hold at least one identity; subject_identities must hold at most 100 identities; " +
	"subject_identities[].identity_type is not one of the specification's; identity_format must be one of raw, sha1, md5, sha256; " +
	"identity_value must hold 1 to 512 characters; identity_value must be the hex digits of its digest; " +
	"status_callback_urls must hold at most 10 URLs; status_callback_urls[] must be an absolute http(s) URL without credentials; " +
	"data after the JSON object; longer than 262144 bytes"
