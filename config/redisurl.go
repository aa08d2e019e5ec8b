package config

import (
	"errors"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// checkRedisURL checks store.redis.url whole at load, so that a URL the
// client would refuse fails check-config, startup and /-/reload alike with
// the setting's path, not the store's start with the parser's words. The URL
// may hold the password, and the parsers' errors quote parts of it (net/url:
// `invalid port ":Xk9" after host` for a password holding a /), so no error
// here repeats any of it: each names the part that is wrong in fixed words.
func checkRedisURL(r *RedisStore, dir string, bad func(string, string, ...any)) {
	problem := redisURLProblem(string(r.URL))
	if problem == "" {
		return
	}
	if r.URLFile == "" {
		bad("store.redis.url", "%s", problem)
		return
	}
	file := r.URLFile
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	bad("store.redis.url_file", "the URL in %s %s", file, problem)
}

// encodeHint is the usual cause of a URL that does not parse: a password
// holding a character that ends the URL's authority part.
const encodeHint = " (a password must percent-encode /, ?, # and %)"

// redisURLProblem says what is wrong with raw by the rules of go-redis's
// ParseURL (github.com/redis/go-redis/v9, options.go), which the store's
// client uses; config may not import go-redis (only store/redis does), and
// a test in cmd/alertmedic holds the two to the same answers. It is a little
// stricter where go-redis would accept what cannot work: a port out of range,
// a negative database, a host in a unix:// URL (which go-redis drops).
func redisURLProblem(raw string) string {
	if !strings.HasPrefix(raw, "redis://") && !strings.HasPrefix(raw, "rediss://") && !strings.HasPrefix(raw, "unix://") {
		return "must start with redis://, rediss:// or unix://"
	}
	invalid := func(why string) string { return "is not a valid redis://, rediss:// or unix:// URL: " + why }
	u, err := url.Parse(raw)
	if err != nil {
		// Only the kind of the error is used: its text quotes the URL.
		var ue *url.Error
		var ee url.EscapeError
		var he url.InvalidHostError
		switch {
		case errors.As(err, &ee):
			return invalid("it has a % not followed by two hexadecimal digits (write a % in a password as %25)")
		case errors.As(err, &he):
			return invalid("the host is not valid" + encodeHint)
		case errors.As(err, &ue) && strings.HasPrefix(ue.Err.Error(), "invalid port"):
			return invalid("the port is not a number" + encodeHint)
		}
		return invalid("it does not parse" + encodeHint)
	}
	if u.Scheme == "unix" {
		if u.Host != "" {
			return invalid("a unix:// URL takes no host (write unix:///path/to/socket)")
		}
		if strings.TrimSpace(u.Path) == "" {
			return invalid("a unix:// URL needs the socket's path (like unix:///run/redis.sock)")
		}
	} else {
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return invalid("the port must be 1 to 65535")
			}
		}
		switch f := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' }); len(f) {
		case 0:
		case 1:
			if n, err := strconv.Atoi(f[0]); err != nil || n < 0 {
				return invalid("the path must be a database number, like /0" + encodeHint)
			}
		default:
			return invalid("the path must be a database number, like /0" + encodeHint)
		}
	}
	return redisQueryProblem(u.Scheme, u.Query(), invalid)
}

// The query options go-redis reads, by what their value must be.
type redisOption int

const (
	redisInt redisOption = iota
	redisDuration
	redisBool
	redisString
)

var redisOptions = map[string]redisOption{
	"db": redisInt, "protocol": redisInt, "max_retries": redisInt, "pool_size": redisInt,
	"min_idle_conns": redisInt, "max_idle_conns": redisInt, "max_active_conns": redisInt,
	"max_concurrent_dials": redisInt, "pipeline_pool_size": redisInt,
	"pipeline_read_buffer_size": redisInt, "pipeline_write_buffer_size": redisInt,
	"min_retry_backoff": redisDuration, "max_retry_backoff": redisDuration,
	"dial_timeout": redisDuration, "read_timeout": redisDuration, "write_timeout": redisDuration,
	"pool_timeout": redisDuration, "conn_max_idle_time": redisDuration, "idle_timeout": redisDuration,
	"conn_max_lifetime": redisDuration, "max_conn_age": redisDuration, "conn_max_lifetime_jitter": redisDuration,
	"pool_fifo": redisBool, "skip_verify": redisBool,
	"client_name": redisString,
}

func redisQueryProblem(scheme string, q url.Values, invalid func(string) string) string {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // one answer for one URL
	for _, name := range names {
		kind, known := redisOptions[name]
		if !known {
			// The option's name is not repeated: it is part of the URL.
			return invalid("it has a query option go-redis does not know")
		}
		// go-redis reads the last value; an empty one is the default.
		v := q[name][len(q[name])-1]
		if v == "" {
			continue
		}
		switch kind {
		case redisInt:
			n, err := strconv.Atoi(v)
			if err != nil {
				return invalid("the " + name + " query option must be an integer")
			}
			if name == "db" && n < 0 {
				return invalid("the db query option must be 0 or more")
			}
		case redisDuration:
			if _, err := strconv.Atoi(v); err != nil {
				if _, err := time.ParseDuration(v); err != nil {
					return invalid("the " + name + " query option must be a duration (like 3s) or a number of seconds")
				}
			}
		case redisBool:
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return invalid("the " + name + " query option must be true, false, 1 or 0")
			}
		}
	}
	// go-redis reads skip_verify for rediss:// alone, and each of these
	// pairs' second name only when the first is absent; what it does not
	// read it calls unexpected.
	if scheme != "rediss" && q.Has("skip_verify") {
		return invalid("the skip_verify query option applies to rediss:// only")
	}
	for _, pair := range [][2]string{{"conn_max_idle_time", "idle_timeout"}, {"conn_max_lifetime", "max_conn_age"}} {
		if q.Has(pair[0]) && q.Has(pair[1]) {
			return invalid("set the " + pair[0] + " or the " + pair[1] + " query option, not both")
		}
	}
	return ""
}
