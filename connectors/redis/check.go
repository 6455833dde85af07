package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
)

// checkMember stands for a subject's identity in the keys and members
// whose permissions Check asks about.
const checkMember = "dsar-check"

// Check implements connectors.Checker. It reports whether the server
// answers a PING, whether it accepts the credentials, and, for each key
// pattern and segment, whether the connection's user may run the commands
// each configured action sends (export, and resolution: SCAN, TYPE, GET,
// HGETALL, HMGET, LRANGE, SMEMBERS, ZRANGE, XRANGE; erase and opt_out:
// UNLINK, or EVAL with HDEL, HGET and HSET; segments: EVAL with SISMEMBER,
// ZSCORE, SREM and ZREM) on a key of the pattern. It asks the server with
// ACL DRYRUN (Redis 7), for a key made from the pattern with "dsar-check"
// as the identity: a permission check is unknown when the server has no
// ACL DRYRUN or the user may not run it (or ACL WHOAMI). Checks send no
// command that reads or writes data.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	var out []connectors.Check
	add := func(what string, err error) { out = append(out, connectors.Check{What: what, Err: err}) }

	if err := c.rdb.Ping(ctx).Err(); err != nil {
		if rejected(err) {
			add("reachable", nil)
			add("credentials accepted", fmt.Errorf("redis at %s refused them: %w", c.addr, err))
			return out
		}
		add("reachable", fmt.Errorf("ping redis at %s: %w", c.addr, err))
		return out
	}
	add("reachable", nil)
	add("credentials accepted", nil)

	user, userErr := c.rdb.Do(ctx, "ACL", "WHOAMI").Text()
	for _, p := range c.permissions() {
		what := fmt.Sprintf("permission to %s in %s", p.action, p.name)
		if userErr != nil {
			add(what, fmt.Errorf("%w: the server does not say (ACL WHOAMI: %v)", connectors.ErrNotChecked, userErr))
			continue
		}
		add(what, c.dryRun(ctx, user, p.commands))
	}
	return out
}

// rejected reports an error of the server refusing the credentials.
func rejected(err error) bool {
	return goredis.IsAuthError(err) || goredis.HasErrorPrefix(err, "WRONGPASS") ||
		goredis.HasErrorPrefix(err, "NOAUTH") || goredis.HasErrorPrefix(err, "invalid password") ||
		goredis.HasErrorPrefix(err, "Client sent AUTH") || goredis.HasErrorPrefix(err, "AUTH")
}

// permission is what one action needs in one key pattern or segment.
type permission struct {
	name     string
	action   connectors.Action
	commands [][]any // each a command and its arguments
}

// permissions lists, in file order, the commands each configured action
// sends to each key pattern and segment.
func (c *Connector) permissions() []permission {
	var out []permission
	for _, k := range c.spec.Keys {
		key := k.pattern.fill(checkMember)
		read := [][]any{{"SCAN", "0", "MATCH", key}, {"TYPE", key}, {"GET", key}, {"HGETALL", key},
			{"LRANGE", key, "0", "-1"}, {"SMEMBERS", key}, {"ZRANGE", key, "0", "-1", "WITHSCORES"}, {"XRANGE", key, "-", "+"}}
		if len(k.Provide) > 0 {
			read = append(read, []any{"HMGET", key, "f"})
		}
		out = append(out, permission{k.Name, connectors.ActionExport, read})
		out = append(out, permission{k.Name, connectors.ActionErase, strategyCommands(key, *k.Erase)})
		if k.OptOut != nil {
			out = append(out, permission{k.Name, connectors.ActionOptOut, strategyCommands(key, *k.OptOut)})
		}
	}
	for _, g := range c.spec.Segments {
		key, member := g.key.before, g.member.fill(checkMember)
		export := [][]any{{"EVAL", "return 0", "1", key}, {"TYPE", key}, {"SISMEMBER", key, member}, {"ZSCORE", key, member}}
		leave := [][]any{{"EVAL", "return 0", "1", key}, {"TYPE", key}, {"SREM", key, member}, {"ZREM", key, member}}
		if !g.key.exact() {
			scan := []any{"SCAN", "0", "MATCH", key}
			export = append([][]any{scan}, export...)
			leave = append([][]any{scan}, leave...)
		}
		out = append(out, permission{g.Name, connectors.ActionExport, export},
			permission{g.Name, connectors.ActionErase, leave},
			permission{g.Name, connectors.ActionOptOut, leave})
	}
	return out
}

// strategyCommands returns the commands strategy st sends to key.
func strategyCommands(key string, st Strategy) [][]any {
	eval := []any{"EVAL", "return 0", "1", key}
	switch st.Kind {
	case StrategyDelete:
		return [][]any{{"UNLINK", key}}
	case StrategySet:
		return [][]any{eval, {"TYPE", key}, {"HGET", key, "f"}, {"HSET", key, "f", "v"}}
	default: // hdel
		return [][]any{eval, {"TYPE", key}, {"HDEL", key, "f"}}
	}
}

// dryRun asks ACL DRYRUN whether user may run each of cmds: nil when it
// may run them all, the server's reason for the first it may not, or an
// error wrapping connectors.ErrNotChecked when the server does not say.
func (c *Connector) dryRun(ctx context.Context, user string, cmds [][]any) error {
	for _, cmd := range cmds {
		reply, err := c.rdb.Do(ctx, append([]any{"ACL", "DRYRUN", user}, cmd...)...).Text()
		if err != nil {
			return fmt.Errorf("%w: the server does not say (ACL DRYRUN: %v)", connectors.ErrNotChecked, err)
		}
		if reply != "OK" {
			return fmt.Errorf("the user %s may not run %s: %s", user, cmd[0], strings.TrimSpace(reply))
		}
	}
	return nil
}
