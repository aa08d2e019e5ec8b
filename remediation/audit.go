package remediation

// The pause switch and the audit log: both in the store, so that every
// replica sees one switch and one history.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/api"
)

// Pause stops every action on every replica until Resume; by names who
// asked (it is audited and announced).
//
// The notice, when it changed anything, is for notify_receiver: the caller
// sends it.
func (e *Engine) Pause(ctx context.Context, by string) (*Notice, error) {
	return e.setPause(ctx, by, "", true)
}

// Resume ends a pause, the breaker's too, and starts the breaker's count
// afresh (breaker.go).
func (e *Engine) Resume(ctx context.Context, by string) (*Notice, error) {
	n, err := e.setPause(ctx, by, "", false)
	if n != nil {
		e.resetBreaker(ctx)
	}
	return n, err
}

// setPause pauses (with reason, when not a person's: the breaker's) or
// resumes; the notice is nil when it changed nothing.
func (e *Engine) setPause(ctx context.Context, by, reason string, pause bool) (*Notice, error) {
	if by == "" {
		by = "unknown"
	}
	now := e.now()
	changed := false
	_, err := e.store.UpdateState(ctx, keyPause, pauseTTL, func(old []byte) ([]byte, error) {
		changed = (old == nil) == pause
		if !pause {
			return nil, nil
		}
		if old != nil {
			return old, nil // keep who paused first, and when
		}
		return json.Marshal(pauseState{By: by, At: now, Reason: reason})
	})
	verb := "resume"
	if pause {
		verb = "pause"
	}
	if err != nil {
		return nil, fmt.Errorf("%s remediation: %w", verb, err)
	}
	if !changed {
		return nil, nil
	}
	c := e.cur.Load()
	text := fmt.Sprintf("remediation %sd by %s", verb, by)
	if reason != "" {
		text += ": " + reason
	}
	rec := Record{RemediationRecord: api.RemediationRecord{Time: now, Action: verb, Result: ResultRan, Detail: text, Replica: e.replica}}
	e.audit(ctx, c, &rec)
	e.logRecord(&rec)
	return &Notice{Text: text, Facts: map[string]string{"action": verb, "by": by, "replica": e.replica}}, nil
}

// Paused reports whether remediation is paused (on any replica).
func (e *Engine) Paused(ctx context.Context) (bool, error) {
	p, err := e.pauseState(ctx)
	return p != nil, err
}

// PauseState reports whether remediation is paused, by whom and since when.
func (e *Engine) PauseState(ctx context.Context) (PauseState, error) {
	p, err := e.pauseState(ctx)
	if err != nil || p == nil {
		return PauseState{}, err
	}
	return PauseState{Paused: true, By: p.By, Since: p.At, Reason: p.Reason}, nil
}

func (e *Engine) pauseState(ctx context.Context) (*pauseState, error) {
	b, err := e.store.State(ctx, keyPause)
	if err != nil {
		return nil, fmt.Errorf("read remediation pause: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var p pauseState
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode remediation pause: %w", err)
	}
	return &p, nil
}

// nextID names a record: its time in nanoseconds, zero-padded so that ids
// sort as times do (the index breaks score ties by member), made strictly
// increasing within this engine, and a random tail against other replicas.
func (e *Engine) nextID(t time.Time) (string, int64) {
	e.mu.Lock()
	n := max(t.UnixNano(), e.lastID+1)
	e.lastID = n
	e.mu.Unlock()
	r, _ := rand.Int(rand.Reader, big.NewInt(1<<32))
	return fmt.Sprintf("%019d-%08x", n, r.Int64()), n
}

// idTime reads the time back from an id.
func idTime(id string) (time.Time, bool) {
	i := strings.IndexByte(id, '-')
	if i <= 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(id[:i], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// audit stores rec (setting its ID) under its own key with the retention as
// TTL, and indexes it by time. It runs even when ctx has ended: what was
// done must be on record. A store failure is logged and counted, not
// returned: the action already happened.
func (e *Engine) audit(ctx context.Context, c *compiled, rec *Record) {
	id, n := e.nextID(rec.Time)
	rec.ID = id
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	b, err := json.Marshal(rec)
	if err == nil {
		_, err = e.store.UpdateState(ctx, keyAudit+id, time.Duration(c.cfg.AuditRetention), func([]byte) ([]byte, error) { return b, nil })
	}
	if err == nil {
		err = e.store.Mark(ctx, indexAudit, id, float64(n)/1e9)
	}
	if err != nil {
		e.auditErrors.Inc()
		e.log.Error().Err(err).Str("id", id).Msg("write remediation audit record failed")
		return
	}
	e.prune(ctx, c, rec.Time)
}

// prune drops index entries past the retention (their records have expired
// by TTL), at most once a minute per engine.
func (e *Engine) prune(ctx context.Context, c *compiled, now time.Time) {
	e.mu.Lock()
	due := !now.Before(e.pruneAt)
	if due {
		e.pruneAt = now.Add(pruneInterval)
	}
	e.mu.Unlock()
	if !due {
		return
	}
	cut := now.Add(-time.Duration(c.cfg.AuditRetention))
	old, err := e.store.Marked(ctx, indexAudit, float64(cut.UnixNano())/1e9)
	if err != nil {
		e.log.Warn().Err(err).Msg("prune remediation audit index failed")
		return
	}
	for _, id := range old {
		if err := e.store.Unmark(ctx, indexAudit, id); err != nil {
			e.log.Warn().Err(err).Msg("prune remediation audit index failed")
			return
		}
	}
}

// Audit returns up to limit records, newest first (limit ≤ 0: 100), from
// every replica.
func (e *Engine) Audit(ctx context.Context, limit int) ([]api.RemediationRecord, error) {
	if limit <= 0 {
		limit = defaultAuditListLength
	}
	c := e.cur.Load()
	now := e.now()
	// The index offers lowest-first only; ids within the retention are
	// bounded by it, so listing them all is fine.
	ids, err := e.store.Marked(ctx, indexAudit, 1e18)
	if err != nil {
		return nil, fmt.Errorf("list remediation audit: %w", err)
	}
	out := []api.RemediationRecord{}
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		id := ids[i]
		t, ok := idTime(id)
		left := t.Add(time.Duration(c.cfg.AuditRetention)).Sub(now)
		if !ok || left <= 0 {
			continue
		}
		b, err := e.store.State(ctx, keyAudit+id)
		if err != nil {
			return nil, fmt.Errorf("read remediation audit record %s: %w", id, err)
		}
		if b == nil {
			continue
		}
		var r api.RemediationRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decode remediation audit record %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}
