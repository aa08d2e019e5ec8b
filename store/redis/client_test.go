package redis_test

import (
	"strings"
	"testing"

	"github.com/alertmedic/alertmedic/store/redis"
)

// A URL go-redis cannot parse is refused with a fixed reason: the parser's own
// errors quote parts of the URL (`invalid port ":Xk9" after host`, the path,
// an option's value), and the URL may hold the password.
func TestNewClientNeverQuotesTheURL(t *testing.T) {
	for _, u := range []string{
		"redis://:Xk9/SECRET@127.0.0.1:6379/14",
		"redis://:/Xk9SECRET@127.0.0.1:6379/14",
		"redis://:12/Xk9SECRET@127.0.0.1:6379",
		"redis://:Xk9%zzSECRET@127.0.0.1:6379",
		"redis://:Xk9SECRET@127.0.0.1:6379/0?pool_fifo=Xk9SECRET",
		"redis://:Xk9SECRET@127.0.0.1:6379/0?Xk9SECRET=1",
		"Xk9SECRET://127.0.0.1:6379",
		"redis://:Xk9SECRET@127.0.0.1:6379/0\x7f",
	} {
		c, err := redis.NewClient(redis.ClientOptions{URL: u})
		if err == nil {
			_ = c.Close()
			t.Errorf("NewClient accepted a bad URL")
			continue
		}
		if want := "new redis client: parse URL: not a valid redis://, rediss:// or unix:// URL (the reason is not shown: it would quote the URL, which may hold the password)"; err.Error() != want {
			t.Errorf("error\n got: %v\nwant: %s", err, want)
		}
		for e := error(err); e != nil; e = unwrap(e) {
			if msg := strings.ToLower(e.Error()); strings.Contains(msg, "xk9") || strings.Contains(msg, "secret") {
				t.Errorf("error (or one it wraps) quotes the URL: %v", e)
			}
		}
	}
}

func unwrap(err error) error {
	u, ok := err.(interface{ Unwrap() error })
	if !ok {
		return nil
	}
	return u.Unwrap()
}
