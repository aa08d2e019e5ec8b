package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
)

// maxStateRetries bounds the optimistic retries of one UpdateState. A key
// contended by more replicas than that at once points at a design fault, not
// at load: state keys are per alert.
const maxStateRetries = 50

// UpdateState is an optimistic transaction: WATCH the key, read it, run fn,
// and write in MULTI/EXEC, which Redis refuses if another client wrote the
// key meanwhile; then fn runs again on the newer value.
func (s *shard) UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	k := s.key("state", key)
	var result []byte
	txf := func(tx *redis.Tx) error {
		old, err := tx.Get(ctx, k).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if errors.Is(err, redis.Nil) {
			old = nil
		}
		v, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		if v != nil && old != nil && bytes.Equal(v, old) {
			// Unchanged: no write, so readers do not make writers retry.
			// The TTL is left as it was.
			result = v
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if v == nil {
				p.Del(ctx, k)
			} else {
				p.Set(ctx, k, v, ttl)
			}
			return nil
		})
		if err == nil {
			result = v
		}
		return err
	}
	for i := 0; i < maxStateRetries; i++ {
		err := s.client.Watch(ctx, txf, k)
		var fe *fnError
		switch {
		case err == nil:
			return result, nil
		case errors.As(err, &fe):
			return nil, fe.err
		case errors.Is(err, redis.TxFailedErr):
			// Lost the race: back off a little, at random, so that the
			// contenders do not collide again in lockstep.
			time.Sleep(time.Duration(rand.Int64N(int64(i+1) * int64(time.Millisecond))))
			continue
		default:
			return nil, alert.Unavailable("update state "+key, err)
		}
	}
	return nil, fmt.Errorf("update state %s: still contended after %d tries", key, maxStateRetries)
}

// State is a plain GET: readers need no WATCH, and do not make writers
// retry.
func (s *shard) State(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.Get(ctx, s.key("state", key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, alert.Unavailable("read state "+key, err)
	}
	return v, nil
}

// fnError carries the caller's own error through go-redis untouched.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// Mark adds member to the index's sorted set and keeps the set alive for
// KeyTTL after its last change.
func (s *shard) Mark(ctx context.Context, index, member string, score float64) error {
	k := s.key("index", index)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, k, redis.Z{Score: score, Member: member})
		p.PExpire(ctx, k, s.keyTTL)
		return nil
	})
	if err != nil {
		return alert.Unavailable("mark "+index, err)
	}
	return nil
}

// Marked lists members scored at most max, lowest first.
func (s *shard) Marked(ctx context.Context, index string, max float64) ([]string, error) {
	v, err := s.client.ZRangeByScore(ctx, s.key("index", index), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatFloat(max, 'f', -1, 64),
	}).Result()
	if err != nil {
		return nil, alert.Unavailable("list "+index, err)
	}
	return v, nil
}

// Unmark removes member from the index.
func (s *shard) Unmark(ctx context.Context, index, member string) error {
	if err := s.client.ZRem(ctx, s.key("index", index), member).Err(); err != nil {
		return alert.Unavailable("unmark "+index, err)
	}
	return nil
}
