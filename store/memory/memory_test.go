package memory_test

import (
	"testing"

	"github.com/alertmedic/alertmedic/store/memory"
	"github.com/alertmedic/alertmedic/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Opener {
		// One process, one store: every "replica" handle is the same value.
		s := memory.New(memory.Options{
			Capacity:         o.Capacity,
			ClaimIdle:        o.ClaimIdle,
			HistoryRetention: o.HistoryRetention,
			HistoryMax:       o.HistoryMax,
		})
		return func() storetest.Store { return s }
	})
}
