package pipeline

import (
	"context"
	"errors"
	"math"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/flapping"
)

// check is the periodic work of every replica: flapping that ended because
// nothing changed for stable_for. The flapping index names the keys to look
// at, so the work is what flaps, not what the store holds; each key is one
// commit, so replicas checking at once act once.
func (p *Pipeline) check(ctx context.Context) error {
	r := p.rules.Load()
	if r == nil || r.Tree == nil {
		return nil
	}
	var errs []error
	for shard := 0; shard < p.o.Store.Shards(); shard++ {
		if err := p.checkShard(ctx, r, shard); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkShard is check for the flapping keys of one shard.
func (p *Pipeline) checkShard(ctx context.Context, r *Rules, shard int) error {
	keys, err := p.o.Store.MarkedIn(ctx, shard, indexFlapping, math.Inf(1))
	if err != nil {
		return err
	}
	for _, key := range keys {
		rk := recordKeyOf(key)
		err := p.commitPlan(ctx, shard, []string{rk}, func(pl *plan) bool {
			var fr *flapRecord
			if grouped(key) {
				if pl.cur[rk] == nil {
					pl.txn.Unmark = append(pl.txn.Unmark, markOf(key))
					return true
				}
				fr = pl.flap(key)
			} else {
				rec := pl.record(key)
				if pl.cur[rk] == nil || rec.Flap == nil {
					// Gone (expired), or never flapping: drop it from the
					// index, write nothing else.
					pl.records, pl.order = map[string]*alertRecord{}, nil
					pl.txn.Unmark = append(pl.txn.Unmark, markOf(key))
					return true
				}
				fr = rec.Flap
			}
			cfg := r.Flapping
			if fr.Config != nil {
				cfg = *fr.Config
			}
			was := fr.State.Flapping
			d := flapping.Check(cfg, &fr.State, pl.now)
			if d.Event == flapping.None && !was {
				// Not flapping (any more): only the index entry goes.
				pl.records, pl.flaps, pl.order = map[string]*alertRecord{}, map[string]*flapRecord{}, nil
				pl.txn.Unmark = append(pl.txn.Unmark, markOf(key))
				return true
			}
			if d.Event == flapping.None {
				return false // still flapping: nothing to write
			}
			labels := template.KV{}
			for _, h := range fr.Held {
				labels = h.Alert.Labels
				break
			}
			if labels["alertname"] == "" {
				labels = template.KV{"alertname": key}
			}
			if d.Event == flapping.Stopped && !grouped(key) {
				pl.record(key).note(pl.now, api.StageFlapping, "", "stopped flapping: "+d.Reason, "")
			}
			pl.flapped(key, cfg, fr, labels, d, was, "")
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}
