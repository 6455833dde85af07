package redis_test

import (
	"strings"
	"testing"
)

// TestValidate: every problem in a redis connector's settings is an error at
// load, with the line it is on, and all of them are listed.
func TestValidate(t *testing.T) {
	t.Parallel()
	// head is lines 1-4; a case's keys start at line 5.
	const head = "connectors:\n  - name: cache\n    type: redis\n    addr: 127.0.0.1:1\n"
	keys := func(entries string) string { return head + "    keys:\n" + entries }
	for _, tc := range []struct {
		name string
		file string
		want []string // each must be in the error
	}{
		{"star alone matches everyone", keys("      - pattern: \"*\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "*": no {KIND} placeholder: the pattern would match every person's keys`}},
		{"no placeholder", keys("      - pattern: \"user:*\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:*": no {KIND} placeholder`}},
		{"exact key without placeholder", keys("      - pattern: settings\n        erase: delete\n"),
			[]string{`line 6: key pattern "settings": no {KIND} placeholder`}},
		{"wildcard after the placeholder", keys("      - pattern: \"user:{customer_id}*\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{customer_id}*": a wildcard right next to {customer_id} would also match other people's keys`}},
		{"wildcard before the placeholder", keys("      - pattern: \"*{email}\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "*{email}": a wildcard right next to {email}`}},
		{"one-character wildcard after", keys("      - pattern: \"user:{customer_id}?\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{customer_id}?": a wildcard right next`}},
		{"class touching", keys("      - pattern: \"user:[ab]{customer_id}:x\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:[ab]{customer_id}:x": a wildcard right next`}},
		{"placeholder in a class", keys("      - pattern: \"user:[x{customer_id}y]:x\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:[x{customer_id}y]:x": a '[' is not closed before the placeholder`}},
		{"backslash", keys("      - pattern: 'user\\:{customer_id}:x'\n        erase: delete\n"),
			[]string{`line 6: key pattern "user\\:{customer_id}:x": a backslash is not allowed`}},
		{"unknown kind", keys("      - pattern: \"user:{nickname}:*\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{nickname}:*": unknown identity kind {nickname} (known: advertising_id, customer_id, device_id, email, phone)`}},
		{"two placeholders", keys("      - pattern: \"user:{customer_id}:{email}\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{customer_id}:{email}": more than one placeholder`}},
		{"brace not closed", keys("      - pattern: \"user:{customer_id\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{customer_id": a '{' is not closed`}},
		{"lone closing brace", keys("      - pattern: \"user:}{customer_id}\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:}{customer_id}": a '}' without its '{'`}},
		{"empty placeholder", keys("      - pattern: \"user:{}:x\"\n        erase: delete\n"),
			[]string{`line 6: key pattern "user:{}:x": unknown identity kind {}`}},
		{"no pattern", keys("      - name: x\n        erase: delete\n"),
			[]string{`line 6: keys[0]: pattern: required`}},
		{"no erase", keys("      - pattern: \"user:{customer_id}:*\"\n"),
			[]string{`line 6: key pattern "user:{customer_id}:*": erase: required: delete or {hdel: [FIELD, ...]}`}},
		{"erase set", keys("      - pattern: \"user:{customer_id}\"\n        erase: {set: {a: b}}\n"),
			[]string{`line 7: key pattern "user:{customer_id}": erase: set is for opt_out`}},
		{"unknown strategy", keys("      - pattern: \"user:{customer_id}\"\n        erase: mask\n"),
			[]string{`line 7: unknown strategy "mask": want delete, {hdel: [FIELD, ...]} or {set: {FIELD: VALUE}}`}},
		{"hdel without fields", keys("      - pattern: \"user:{customer_id}\"\n        erase: {hdel: []}\n"),
			[]string{`line 7: hdel takes a list of hash fields`}},
		{"set of a mapping", keys("      - pattern: \"user:{customer_id}\"\n        erase: delete\n        opt_out: {set: {flag: {a: 1}}}\n"),
			[]string{`line 8: set: a hash field's value is a string, number or boolean`}},
		{"provide unknown kind", keys("      - pattern: \"user:{email}\"\n        erase: delete\n        provide:\n          customer_id: id\n          nickname: nick\n"),
			[]string{`line 10: key pattern "user:{email}": provide: unknown identity kind "nickname"`}},
		{"provide empty source", keys("      - pattern: \"user:{email}\"\n        erase: delete\n        provide: {customer_id: \"\"}\n"),
			[]string{`line 8: key pattern "user:{email}": provide: customer_id needs a hash field, or $value`}},
		{"unknown setting", keys("      - patern: \"user:{email}\"\n"),
			[]string{`line 6: unknown setting "patern" (known: name, pattern, provide, erase, opt_out)`}},
		{"segment key with placeholder", head + "    segments:\n      - key: \"seg:{email}\"\n        member: \"{email}\"\n",
			[]string{`line 6: segment "seg:{email}": a segment key names segments, not people`}},
		{"segment member without placeholder", head + "    segments:\n      - key: \"seg:*\"\n        member: everyone\n",
			[]string{`line 7: segment "seg:*": member: no {KIND} placeholder: the member would be the same for everyone`}},
		{"segment member unknown kind", head + "    segments:\n      - key: \"seg:*\"\n        member: \"{nick}\"\n",
			[]string{`line 7: segment "seg:*": member: unknown identity kind {nick}`}},
		{"segment member missing", head + "    segments:\n      - key: \"seg:*\"\n",
			[]string{`line 6: segment "seg:*": member: required`}},
		{"segment key missing", head + "    segments:\n      - member: \"{email}\"\n",
			[]string{`line 6: segments[0]: key: required`}},
		{"duplicate names", keys("      - name: x\n        pattern: \"a:{email}\"\n        erase: delete\n      - name: x\n        pattern: \"b:{email}\"\n        erase: delete\n"),
			[]string{`line 9: "x" is listed twice`}},
		{"nothing to do", head, []string{`line 2: keys or segments: list at least one`}},
		{"no address", "connectors:\n  - name: cache\n    type: redis\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 2: addr or url: required`}},
		{"addr and url", head + "    url: redis://127.0.0.1:1/0\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 5: give addr or url, not both`}},
		{"url with username and db", "connectors:\n  - name: cache\n    type: redis\n    url: redis://127.0.0.1:1/0\n    username: u\n    db: 2\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 5: username: with url, put it in the url`, `line 6: db: with url, put it in the url`}},
		{"negative db", head + "    db: -1\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 5: db: want 0 or more, not -1`}},
		{"scan_count", head + "    scan_count: 1000000\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 5: scan_count: want 1 to 100000, not 1000000`}},
		{"literal password", head + "    password: hunter2\n    segments:\n      - key: s\n        member: \"{email}\"\n",
			[]string{`line 5: password must come from the environment`}},
		{"literal password in url", "connectors:\n  - name: cache\n    type: redis\n    url: redis://u:hunter2@127.0.0.1:1/0\n",
			[]string{`line 4: the password in url must come from the environment`}},
		{"every problem listed", keys("      - pattern: \"*\"\n        erase: delete\n      - pattern: \"b:{nick}\"\n        erase: delete\n") +
			"    segments:\n      - key: \"s\"\n        member: all\n",
			[]string{`line 6: key pattern "*"`, `line 8: key pattern "b:{nick}"`, `line 12: segment "s": member`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tc.file, nil)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// TestURLNotQuoted: a url that does not parse is reported without its text,
// which may hold the password.
func TestURLNotQuoted(t *testing.T) {
	t.Parallel()
	_, err := parse(t, "connectors:\n  - name: cache\n    type: redis\n    url: ftp://u:${PW}@127.0.0.1:1/0\n    segments:\n      - key: s\n        member: \"{email}\"\n",
		map[string]string{"PW": "s3cret-value"})
	if err == nil || !strings.Contains(err.Error(), "line 4: url: not a valid") {
		t.Fatalf("error: %v; want line 4: url: not a valid ...", err)
	}
	if strings.Contains(err.Error(), "s3cret-value") {
		t.Errorf("the error quotes the password: %v", err)
	}
}
