package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// Segments implements connectors.SegmentLister: the names of the
// segments settings.
func (c *Connector) Segments() []string {
	out := make([]string, len(c.spec.Segments))
	for i, g := range c.spec.Segments {
		out[i] = g.Name
	}
	return out
}

// EachSegmentMember implements connectors.SegmentLister over the segments:
// every member of every set and sorted set a segment's key names, read by
// SSCAN or ZSCAN a page at a time, whose member has the form of its member
// template (customer:{customer_id}: the part in place of the placeholder
// is the identity). Members of another form, and keys of another type, are
// not listed. Key patterns (keys:) hold one person's data each, not
// segments, and are not listed. A key that SCAN returns twice is read
// once; a member SSCAN returns twice (the set changed meanwhile) is listed
// twice.
func (c *Connector) EachSegmentMember(ctx context.Context, fn func(segment string, member connectors.Subject) error) error {
	for _, g := range c.spec.Segments {
		seen := seenKeys{}
		err := c.eachSegment(ctx, g, func(keys []string) error {
			return eachBatch(keys, func(batch []string) error {
				types, err := c.types(ctx, batch)
				if err != nil {
					return err
				}
				for i, key := range batch {
					if (types[i] != "set" && types[i] != "zset") || !seen.first(key) {
						continue
					}
					if err := c.eachMember(ctx, g, key, types[i] == "zset", fn); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("list members of %s: %w", g.Name, err)
		}
	}
	return nil
}

// eachMember lists the members of one set (or sorted set) of segment g.
func (c *Connector) eachMember(ctx context.Context, g SegmentSpec, key string, sorted bool, fn func(string, connectors.Subject) error) error {
	var cursor uint64
	for {
		var page []string
		var err error
		if sorted {
			page, cursor, err = c.rdb.ZScan(ctx, key, cursor, "", c.count).Result()
		} else {
			page, cursor, err = c.rdb.SScan(ctx, key, cursor, "", c.count).Result()
		}
		if err != nil {
			return fmt.Errorf("scan members: %w", classify(err))
		}
		for i := 0; i < len(page); i++ {
			m := page[i]
			if sorted {
				i++ // ZSCAN pages are member, score, member, score...
			}
			v, ok := g.member.parse(m)
			if !ok {
				continue
			}
			if err := fn(g.Name, connectors.Subject{Identities: []connectors.Identity{{Kind: g.member.kind, Value: v}}}); err != nil {
				return err
			}
		}
		if cursor == 0 {
			return nil
		}
	}
}

// parse returns the identity in place of t's placeholder in s, a member
// t made; false when s does not have t's form or the identity is empty.
func (t template) parse(s string) (string, bool) {
	if t.kind == "" || len(s) < len(t.before)+len(t.after) || !strings.HasPrefix(s, t.before) || !strings.HasSuffix(s, t.after) {
		return "", false
	}
	v := s[len(t.before) : len(s)-len(t.after)]
	return v, v != ""
}
