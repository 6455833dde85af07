package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// RedisTopology is how dsar reaches Redis.
type RedisTopology string

const (
	// RedisInProcess: no Redis set; only dev runs, on an in-process one.
	RedisInProcess RedisTopology = "in-process"
	// RedisSingle: one server, DSAR_REDIS_ADDR.
	RedisSingle RedisTopology = "single"
	// RedisSentinel: the master the sentinels of DSAR_REDIS_SENTINELS
	// name, followed across failovers.
	RedisSentinel RedisTopology = "sentinel"
	// RedisCluster: a Redis Cluster, DSAR_REDIS_CLUSTER_ADDRS its seeds.
	RedisCluster RedisTopology = "cluster"
)

// RedisTopology reports which of DSAR_REDIS_ADDR, DSAR_REDIS_SENTINELS and
// DSAR_REDIS_CLUSTER_ADDRS is set (Validate refuses more than one; this
// takes them in that order).
func (c Config) RedisTopology() RedisTopology {
	switch {
	case c.RedisAddr != "":
		return RedisSingle
	case len(c.RedisSentinels) > 0:
		return RedisSentinel
	case len(c.RedisClusterAddrs) > 0:
		return RedisCluster
	}
	return RedisInProcess
}

// validateRedis checks that at most one topology is set, with what it needs
// and nothing of another.
func (c Config) validateRedis() []error {
	var errs []error
	var set []string
	if c.RedisAddr != "" {
		set = append(set, "DSAR_REDIS_ADDR")
	}
	if len(c.RedisSentinels) > 0 {
		set = append(set, "DSAR_REDIS_SENTINELS")
	}
	if len(c.RedisClusterAddrs) > 0 {
		set = append(set, "DSAR_REDIS_CLUSTER_ADDRS")
	}
	if len(set) > 1 {
		errs = append(errs, fmt.Errorf("%s: set one of DSAR_REDIS_ADDR (one server), DSAR_REDIS_SENTINELS (Sentinel) and DSAR_REDIS_CLUSTER_ADDRS (Cluster), not %d",
			strings.Join(set, " and "), len(set)))
	}
	sentinels := len(c.RedisSentinels) > 0
	switch {
	case sentinels && c.RedisMasterName == "":
		errs = append(errs, errors.New("DSAR_REDIS_MASTER_NAME: required with DSAR_REDIS_SENTINELS (the name the sentinels monitor the master by)"))
	case !sentinels && c.RedisMasterName != "":
		errs = append(errs, errors.New("DSAR_REDIS_MASTER_NAME: takes effect only with DSAR_REDIS_SENTINELS"))
	}
	if !sentinels && c.RedisSentinelPassword != "" {
		errs = append(errs, errors.New("DSAR_REDIS_SENTINEL_PASSWORD: takes effect only with DSAR_REDIS_SENTINELS"))
	}
	if len(c.RedisClusterAddrs) > 0 && c.RedisDB != 0 {
		errs = append(errs, fmt.Errorf("DSAR_REDIS_DB: %d with DSAR_REDIS_CLUSTER_ADDRS; a Redis Cluster has only database 0", c.RedisDB))
	}
	return errs
}

// clusterReload is how often a cluster client asks the cluster which node
// holds which slots. go-redis asks again on a MOVED answer, not when a
// node stops answering, and by default only every minute: after a
// failover, commands to the slots of the dead master would fail for up to
// that minute. One CLUSTER SLOTS a second per client costs little.
const clusterReload = time.Second

// RedisConn is how every part of dsar connects to Redis: the job queue
// (asynq) and dsar's own keys (rate limits, console sessions, leases,
// connector limits) share one topology, password, database and TLS, and
// one way of making a client (NewClient).
type RedisConn struct {
	// Topology is the one of Options.
	Topology RedisTopology
	// Options are go-redis's; NewClient makes the client of Topology from
	// them.
	Options *redis.UniversalOptions
	// Queue is asynq's: its MakeRedisClient is NewClient.
	Queue asynq.RedisConnOpt
}

// NewClient returns a new go-redis client of the topology: a *redis.Client
// of one server, or of the master the sentinels name (followed across
// failovers), or a *redis.ClusterClient. The caller closes it.
func (r RedisConn) NewClient() redis.UniversalClient {
	switch r.Topology {
	case RedisSentinel:
		return redis.NewFailoverClient(r.Options.Failover())
	case RedisCluster:
		o := r.Options.Cluster()
		o.ClusterStateReloadInterval = clusterReload
		return redis.NewClusterClient(o)
	}
	return redis.NewClient(r.Options.Simple())
}

// queueConn is the asynq.RedisConnOpt of a RedisConn.
type queueConn struct{ r RedisConn }

// MakeRedisClient implements asynq.RedisConnOpt: a redis.UniversalClient.
func (q queueConn) MakeRedisClient() any { return q.r.NewClient() }

// Redis returns the connection settings of Redis. inProcess is the address
// of the in-process Redis dev started, used only when no topology is set
// (RedisInProcess). It fails when DSAR_REDIS_TLS_CA_FILE cannot be read,
// or with neither a topology nor inProcess.
func (c Config) Redis(inProcess string) (RedisConn, error) {
	tlsConfig, err := c.RedisTLSConfig() // nil: plain TCP
	if err != nil {
		return RedisConn{}, err
	}
	r := RedisConn{Topology: c.RedisTopology()}
	switch r.Topology {
	case RedisInProcess, RedisSingle:
		addr := c.RedisAddr
		if addr == "" {
			if inProcess == "" {
				return RedisConn{}, errors.New("DSAR_REDIS_ADDR: not set, and no in-process Redis")
			}
			addr = inProcess
		}
		r.Options = &redis.UniversalOptions{Addrs: []string{addr}, Password: c.RedisPassword, DB: c.RedisDB, TLSConfig: tlsConfig}
	case RedisSentinel:
		r.Options = &redis.UniversalOptions{MasterName: c.RedisMasterName, Addrs: c.RedisSentinels, SentinelPassword: c.RedisSentinelPassword,
			Password: c.RedisPassword, DB: c.RedisDB, TLSConfig: tlsConfig}
	case RedisCluster:
		r.Options = &redis.UniversalOptions{Addrs: c.RedisClusterAddrs, IsClusterMode: true, Password: c.RedisPassword, TLSConfig: tlsConfig}
	}
	r.Queue = queueConn{r}
	return r, nil
}
