package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
)

// Remediator runs the guarded actions for one alert observation.
type Remediator interface {
	Handle(ctx context.Context, a template.Alert, flapping bool) []remediation.Record
	MaxRunTime() time.Duration
}

const (
	indexRemedy = "remedy"
	remedyTTL   = 24 * time.Hour
)

// remedyTask is an alert observation waiting for its remediation.
type remedyTask struct {
	Alert    template.Alert `json:"alert"`
	Flapping bool           `json:"flapping"`
	Lease    time.Time      `json:"lease,omitzero"`
	Done     bool           `json:"done,omitempty"`
}

func (p *Pipeline) putRemedy(ctx context.Context, entryID string, a template.Alert, flapping bool) error {
	if p.o.Remediator == nil {
		return nil
	}
	id := entryID + ":" + a.Fingerprint
	_, err := p.o.Store.UpdateState(ctx, "remedy:"+id, remedyTTL, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil // redelivered entry: the task is there (or done)
		}
		return json.Marshal(remedyTask{Alert: a, Flapping: flapping})
	})
	if err != nil {
		return err
	}
	if err := p.o.Store.Mark(ctx, indexRemedy, id, score(p.o.Now())); err != nil {
		return err
	}
	select {
	case p.remedyWake <- struct{}{}:
	default:
	}
	return nil
}

// remedies runs waiting remediation tasks, at most RemedyWorkers at once,
// each under a lease so that a replica dying mid-action leaves it to another.
func (p *Pipeline) remedies(ctx context.Context) {
	p.loop(ctx, 200*time.Millisecond, p.remedyWake, "remedy", "remediation queue failed; trying again shortly", func(ctx context.Context) error {
		return p.runRemedies(ctx, false)
	})
}

// FlushRemediation runs what waits now and returns when it finished.
func (p *Pipeline) FlushRemediation(ctx context.Context) error { return p.runRemedies(ctx, true) }

func (p *Pipeline) runRemedies(ctx context.Context, wait bool) error {
	if p.o.Remediator == nil {
		return nil
	}
	now := p.o.Now()
	ids, err := p.o.Store.Marked(ctx, indexRemedy, score(now))
	if err != nil {
		return err
	}
	done := make(chan struct{}, len(ids))
	started := 0
	for _, id := range ids {
		var task remedyTask
		var mine, gone bool
		lease := now.Add(p.o.Remediator.MaxRunTime() + 5*time.Second)
		if _, err := p.o.Store.UpdateState(ctx, "remedy:"+id, remedyTTL, func(old []byte) ([]byte, error) {
			mine, gone, task = false, false, remedyTask{}
			if old == nil || json.Unmarshal(old, &task) != nil || task.Done {
				gone = true
				return old, nil
			}
			if task.Lease.After(now) {
				return old, nil
			}
			task.Lease, mine = lease, true
			return json.Marshal(task)
		}); err != nil {
			return err
		}
		if gone {
			_ = p.o.Store.Unmark(ctx, indexRemedy, id)
			continue
		}
		if !mine {
			continue
		}
		select {
		case p.remedySlots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		started++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.remedySlots; done <- struct{}{} }()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.Remediator.MaxRunTime())
			p.o.Remediator.Handle(rctx, task.Alert, task.Flapping)
			cancel()
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer scancel()
			if _, err := p.o.Store.UpdateState(sctx, "remedy:"+id, remedyTTL, func(old []byte) ([]byte, error) {
				task.Done, task.Alert = true, template.Alert{}
				return json.Marshal(task)
			}); err != nil {
				p.o.Logger.Error().Err(err).Str("task", id).Msg("mark remediation done failed; the lease will hand it out again, and its cooldown stops a repeat")
				return
			}
			_ = p.o.Store.Unmark(sctx, indexRemedy, id)
		}()
	}
	if wait {
		for i := 0; i < started; i++ {
			<-done
		}
	}
	return nil
}

// Notice sends one of alertmedic's own notices (a remediation ran or
// failed) to every integration of a receiver, through the outbox.
func (p *Pipeline) Notice(ctx context.Context, receiver, kind, text string, facts map[string]string) error {
	r := p.rules.Load()
	if r == nil || r.Tree == nil || receiver == "" {
		return nil
	}
	now := p.o.Now()
	for _, t := range r.Tree.ReceiverTargets(receiver) {
		n := notifiers.Notification{Key: fmt.Sprintf("notice:%s:%d:%s", kind, now.UnixNano(), t.Key()), Kind: kind, Target: toTarget(t), Text: text, Facts: facts}
		if err := p.putOutbox(ctx, n, now); err != nil {
			return err
		}
	}
	return nil
}
