package notifiers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Refs keep what the later messages of an alert group need of the earlier
// ones: the channel and ts of the group's Slack message (to update it, and
// to reply in its thread), the Message-ID an email thread hangs under, the
// clicks on its buttons.
// The store holds them, so every replica sees what another sent; each is
// kept for a TTL after its last write, and its value is bounded by the
// integration that writes it.
type Refs interface {
	// Ref reads the value under key; nil when there is none.
	Ref(ctx context.Context, key string) ([]byte, error)
	// UpdateRef replaces the value under key with what fn returns for the
	// current one (nil when none), atomically across replicas, and returns
	// the new value. fn may run more than once and must have no side
	// effects; a nil result deletes the key. ttl is how long the value
	// outlives this write.
	UpdateRef(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error)
}

// RefTTL is how long a group's refs outlive their last write when the
// caller gives none: a day, as long as an alert's record.
const RefTTL = 24 * time.Hour

// RefKey names one ref: its kind ("slack", "email", "pagerduty", ...), the
// target's key ("" for a ref of the whole group), the group and anything
// more that tells refs apart (an email recipient), hashed so that a group
// key of any length or content (it is Alertmanager's, built from label
// values) makes a short, safe key.
func RefKey(kind, targetKey, groupKey string, more ...string) string {
	h := sha256.New()
	h.Write([]byte(targetKey))
	h.Write([]byte{0})
	h.Write([]byte(groupKey))
	for _, m := range more {
		h.Write([]byte{0})
		h.Write([]byte(m))
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Once reports whether this call is the first to claim key within ttl, across
// replicas: the replay guard of a click Slack sends again.
func Once(ctx context.Context, r Refs, key string, ttl time.Duration) (bool, error) {
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return false, err
	}
	v, err := r.UpdateRef(ctx, key, ttl, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil
		}
		return token, nil
	})
	if err != nil {
		return false, err
	}
	return string(v) == string(token), nil
}

// StateStore is what StoreRefs needs of a store backend; store/memory and
// store/redis have it (their UpdateState is atomic per key across replicas).
type StateStore interface {
	UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error)
	State(ctx context.Context, key string) ([]byte, error)
}

// StoreRefs keeps refs in a store backend, each under "ref:<key>".
func StoreRefs(s StateStore) Refs { return storeRefs{s} }

type storeRefs struct{ s StateStore }

func (r storeRefs) Ref(ctx context.Context, key string) ([]byte, error) {
	return r.s.State(ctx, "ref:"+key)
}

func (r storeRefs) UpdateRef(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	if ttl <= 0 {
		ttl = RefTTL
	}
	return r.s.UpdateState(ctx, "ref:"+key, ttl, fn)
}
