package redis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// SetLogger sends go-redis's own messages (dial failures, pool trouble) to l
// at warn level instead of the standard library's logger on stderr, so that
// the daemon's log stays one structured stream. go-redis's logger is
// process-wide, hence a function rather than an option.
func SetLogger(l zerolog.Logger) {
	redis.SetLogger(zlog{l: l.With().Str("component", "go-redis").Logger()})
}

type zlog struct{ l zerolog.Logger }

func (z zlog) Printf(_ context.Context, format string, v ...any) {
	z.l.Warn().Msg(fmt.Sprintf(format, v...))
}
