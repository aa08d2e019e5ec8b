package remediation

import (
	"testing"

	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// TestEngineRedis runs the whole engine suite on Redis, each replica on its
// own client, as two daemons would. It is skipped when no Redis answers
// (REDIS_URL, default redis://127.0.0.1:6379/15), unless CI=true.
func TestEngineRedis(t *testing.T) {
	runSuite(t, openRedis)
}

func openRedis(t *testing.T) func() Store {
	t.Helper()
	prefix := redistest.Prefix(t, "remediation")
	return func() Store { return redistest.Open(t, prefix) }
}
