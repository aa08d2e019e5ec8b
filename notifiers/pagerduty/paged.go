package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/alertmedic/alertmedic/notifiers"
)

const (
	// maxPagedTargets and maxPagedFingerprints bound a group's record of
	// what it paged: past them a target (a fingerprint of a target) is
	// left out and counted. The first paged are kept: they are the ones
	// an acknowledge is most likely for.
	maxPagedTargets      = 32
	maxPagedFingerprints = 1000
	// refTimeout bounds recording a page, so that a slow store does not
	// hold the delivery.
	refTimeout = 5 * time.Second
)

// pagedRef is what a group's ref holds: notifiers.RefKey("pagerduty", "",
// group key), a ref of the whole group since an acknowledge is for the
// group, whichever of its targets paged.
type pagedRef struct {
	// Targets maps a target's key to the fingerprints of the alerts its
	// triggers opened, in the order first paged.
	Targets map[string][]string `json:"targets"`
	// DroppedTargets and DroppedFingerprints count the targets and
	// fingerprints the caps left out, each time one was.
	DroppedTargets      int `json:"dropped_targets,omitempty"`
	DroppedFingerprints int `json:"dropped_fingerprints,omitempty"`
	// At is when a trigger was last recorded (Unix seconds). It changes
	// with each record, so that every trigger rewrites the ref and renews
	// its TTL (a value written unchanged is no write): a group paging
	// again keeps its record.
	At int64 `json:"at"`
}

func (p *pagedRef) add(target string, fps []string) {
	if p.Targets == nil {
		p.Targets = map[string][]string{}
	}
	have, ok := p.Targets[target]
	if !ok && len(p.Targets) >= maxPagedTargets {
		p.DroppedTargets++
		p.DroppedFingerprints += len(fps)
		return
	}
	for _, fp := range fps {
		switch {
		case slices.Contains(have, fp):
		case len(have) >= maxPagedFingerprints:
			p.DroppedFingerprints++
		default:
			have = append(have, fp)
		}
	}
	p.Targets[target] = have
}

// record adds the fingerprints nt's triggers paged to its group's ref. It
// runs when Notify ends, canceled or not (the pages went out), within
// refTimeout; a failure is logged and loses no page.
func (n *Notifier) record(ctx context.Context, nt *notifiers.Notification, fps []string, at time.Time) {
	if n.refs == nil || nt.GroupKey == "" || len(fps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refTimeout)
	defer cancel()
	target := nt.Target.Key()
	_, err := n.refs.UpdateRef(ctx, notifiers.RefKey("pagerduty", "", nt.GroupKey), notifiers.RefTTL, func(old []byte) ([]byte, error) {
		var p pagedRef
		if old != nil && json.Unmarshal(old, &p) != nil {
			// Not what this package writes: a record of its own replaces it.
			p = pagedRef{}
		}
		p.add(target, fps)
		p.At = at.Unix()
		return json.Marshal(p)
	})
	if err != nil {
		n.log.Warn().Err(n.redact(err)).Str("target", target).Str("key", nt.Key).Int("alerts", len(fps)).
			Msg("pagerduty pages not recorded; an acknowledge from Slack will not find them")
	}
}

// Paged returns the PagerDuty targets the alert group groupKey paged, each
// with the fingerprints of the alerts its triggers opened (target key →
// fingerprints), as Notify recorded them in refs, for Acknowledge; nil when
// it paged none (or refs is nil). A record lasts notifiers.RefTTL past the
// group's latest trigger; resolves do not take fingerprints out, since
// acknowledging a resolved alert changes nothing.
func Paged(ctx context.Context, refs notifiers.Refs, groupKey string) (map[string][]string, error) {
	if refs == nil || groupKey == "" {
		return nil, nil
	}
	b, err := refs.Ref(ctx, notifiers.RefKey("pagerduty", "", groupKey))
	if err != nil {
		return nil, fmt.Errorf("read pagerduty pages: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var p pagedRef
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode pagerduty pages: %w", err)
	}
	if len(p.Targets) == 0 {
		return nil, nil
	}
	return p.Targets, nil
}
