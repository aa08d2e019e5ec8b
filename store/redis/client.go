package redisstore

import (
	"errors"
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
		return redis.NewUniversalClient(&redis.UniversalOptions{
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
		}), nil
	default:
		return nil, errors.New("new redis client: neither a URL nor addresses are set")
	}
}

var errBadURL = errors.New("new redis client: parse URL: not a valid redis://, rediss:// or unix:// URL (the reason is not shown: it would quote the URL, which may hold the password)")
