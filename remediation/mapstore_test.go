package remediation

import (
	"context"
	"sort"
	"sync"
	"time"
)

// mapStore is the smallest Store that keeps the contract: one mutex makes
// UpdateState atomic (fn runs once), and values expire by the wall clock as
// the real backends' do. The engine's own clock decides every window, so
// tests that move that clock need no store clock.
type mapStore struct {
	mu    sync.Mutex
	vals  map[string]mapVal
	index map[string]map[string]float64
}

type mapVal struct {
	v   []byte
	exp time.Time
}

func newMapStore() *mapStore {
	return &mapStore{vals: map[string]mapVal{}, index: map[string]map[string]float64{}}
}

func (s *mapStore) UpdateState(_ context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if v, ok := s.vals[key]; ok && time.Now().Before(v.exp) {
		old = append([]byte(nil), v.v...)
	}
	v, err := fn(old)
	if err != nil {
		return nil, err
	}
	if v == nil {
		delete(s.vals, key)
		return nil, nil
	}
	s.vals[key] = mapVal{v: append([]byte(nil), v...), exp: time.Now().Add(ttl)}
	return v, nil
}

func (s *mapStore) State(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vals[key]; ok && time.Now().Before(v.exp) {
		return append([]byte(nil), v.v...), nil
	}
	return nil, nil
}

func (s *mapStore) Mark(_ context.Context, index, member string, score float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index[index] == nil {
		s.index[index] = map[string]float64{}
	}
	s.index[index][member] = score
	return nil
}

func (s *mapStore) Marked(_ context.Context, index string, max float64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for m, sc := range s.index[index] {
		if sc <= max {
			out = append(out, m)
		}
	}
	ix := s.index[index]
	sort.Slice(out, func(i, j int) bool {
		if ix[out[i]] != ix[out[j]] {
			return ix[out[i]] < ix[out[j]]
		}
		return out[i] < out[j]
	})
	return out, nil
}

func (s *mapStore) Unmark(_ context.Context, index, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.index[index], member)
	return nil
}
