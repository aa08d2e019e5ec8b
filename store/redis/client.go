package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions says how to reach Redis: either a URL (redis://, rediss://,
// unix://) for one server, or Addrs, which with MasterName names Sentinels and
// with two or more addresses a Cluster.
type ClientOptions struct {
	URL        string
	Addrs      []string
	MasterName string

	// Username, Password and a non-zero DB override what URL says, so that the
	// password can come from a file while the rest stays in the URL.
	Username string
	Password string
	DB       int

	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves, which may differ from the data nodes.
	SentinelUsername string
	SentinelPassword string

	// Zero keeps go-redis's defaults.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
}

// NewClient builds a client without connecting; the first command dials.
// The client honours the deadline of each call's context: without that,
// go-redis bounds socket reads by ReadTimeout alone, and a caller's timeout
// would not stop a call to a Redis that hangs.
func NewClient(o ClientOptions) (redis.UniversalClient, error) {
	switch {
	case o.URL != "" && len(o.Addrs) > 0:
		return nil, errors.New("new redis client: set either a URL or addresses, not both")
	case o.URL != "":
		if o.MasterName != "" {
			return nil, errors.New("new redis client: a master name needs the Sentinels' addresses, not a URL")
		}
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			// Not wrapped: every error ParseURL returns may quote a part of
			// the URL (net/url's `invalid port ":Xk9" after host` for a
			// password holding a /, go-redis's path, option names and
			// values), and the URL may hold the password. config checks the
			// URL at load and names what is wrong; this is the last guard.
			return nil, errBadURL
		}
		if o.Username != "" {
			opt.Username = o.Username
		}
		if o.Password != "" {
			opt.Password = o.Password
		}
		if o.DB != 0 {
			opt.DB = o.DB
		}
		if o.DialTimeout != 0 {
			opt.DialTimeout = o.DialTimeout
		}
		if o.ReadTimeout != 0 {
			opt.ReadTimeout = o.ReadTimeout
		}
		if o.WriteTimeout != 0 {
			opt.WriteTimeout = o.WriteTimeout
		}
		if o.PoolSize != 0 {
			opt.PoolSize = o.PoolSize
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClient(opt), nil
	case len(o.Addrs) > 0:
		// UniversalOptions picks a Sentinel, Cluster or single-node client from
		// the addresses, so scaling out is a configuration change only.
		u := &redis.UniversalOptions{
			Addrs:            o.Addrs,
			MasterName:       o.MasterName,
			Username:         o.Username,
			Password:         o.Password,
			DB:               o.DB,
			SentinelUsername: o.SentinelUsername,
			SentinelPassword: o.SentinelPassword,
			DialTimeout:      o.DialTimeout,
			ReadTimeout:      o.ReadTimeout,
			WriteTimeout:     o.WriteTimeout,
			PoolSize:         o.PoolSize,

			ContextTimeoutEnabled: true,
		}
		if o.MasterName == "" && len(o.Addrs) > 1 {
			return newClusterClient(u.Cluster()), nil
		}
		return redis.NewUniversalClient(u), nil
	default:
		return nil, errors.New("new redis client: neither a URL nor addresses are set")
	}
}

var errBadURL = errors.New("new redis client: parse URL: not a valid redis://, rediss:// or unix:// URL (the reason is not shown: it would quote the URL, which may hold the password)")

// ClusterStateReloadInterval is how often the Cluster client re-reads the
// slot map without being asked (go-redis's default is 60 s).
const ClusterStateReloadInterval = 5 * time.Second

// newClusterClient is go-redis's Cluster client that also re-reads the
// slot map as soon as a node refuses a connection or drops one. go-redis
// re-reads it only on MOVED or every ClusterStateReloadInterval
// (redis/go-redis#3979): after a master died and its replica took over,
// commands kept dialling the dead address for up to a minute. The reload
// is asynchronous and coalesced, so a burst of failures costs one CLUSTER
// SLOTS.
func newClusterClient(o *redis.ClusterOptions) *redis.ClusterClient {
	o.ClusterStateReloadInterval = ClusterStateReloadInterval
	c := redis.NewClusterClient(o)
	c.AddHook(reloadOnConnError{c})
	return c
}

type reloadOnConnError struct{ c *redis.ClusterClient }

func (h reloadOnConnError) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.c.ReloadState(ctx)
		}
		return conn, err
	}
}

func (h reloadOnConnError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnConnError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

// check reloads on a broken connection (a reset, EOF, a refused dial) or a
// node that says it is no longer in charge (a failed-over master answers
// READONLY or CLUSTERDOWN for a moment).
func (h reloadOnConnError) check(ctx context.Context, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		redis.HasErrorPrefix(err, "READONLY") || redis.HasErrorPrefix(err, "CLUSTERDOWN") || redis.HasErrorPrefix(err, "TRYAGAIN") {
		h.c.ReloadState(ctx)
	}
}
