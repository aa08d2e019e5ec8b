package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
)

// Rules are the parts of the configuration the pipeline decides with; a
// reload swaps them whole (Pipeline.Apply).
type Rules struct {
	Tree *routing.Tree
	// Flapping is the default detection; routes override it.
	Flapping flapping.Config
	// FlappingReceiver gets flapping notices; "" logs them only.
	FlappingReceiver string
	// Override turns a route's flapping block into the package's override.
	Override func(routing.FlappingOverride) *flapping.Override
}

// Index names in the store.
const (
	indexFlapping = "flapping" // flap keys flapping or with work pending
	indexOutbox   = "outbox"   // notifications waiting (score: due time)
)

// outboxLease is how long a replica may take to deliver an outbox item it
// claimed before another replica takes it over.
const outboxLease = 2 * time.Minute

// flapRecord is what the store keeps per flap key.
type flapRecord struct {
	State    flapping.State  `json:"state"`
	Config   flapping.Config `json:"config"`
	Suppress bool            `json:"suppress"`
	// Held are the latest observations of alerts whose notifications were
	// held back while flapping, by fingerprint: delivered when it stops, so
	// a resolve that came during the flap is never lost.
	Held map[string]heldAlert `json:"held,omitempty"`
	// Pending notifications still to be written to the outbox (a notice,
	// the held alerts' release). They leave the record only once written,
	// so a crash in between loses nothing.
	Pending []notifiers.Notification `json:"pending,omitempty"`
}

type heldAlert struct {
	Alert       template.Alert `json:"alert"`
	GroupKey    string         `json:"groupKey,omitempty"`
	ExternalURL string         `json:"externalURL,omitempty"`
}

// maxHeld bounds the alerts held under one flap key; past it alerts are
// delivered as they come rather than held (never dropped).
const maxHeld = 1000

// outboxItem is a notification waiting in the store for its due time.
type outboxItem struct {
	N     notifiers.Notification `json:"n"`
	Due   time.Time              `json:"due"`
	Lease time.Time              `json:"lease,omitzero"`
	// Sent marks a delivered (or dead) item, kept for sentTTL as a
	// tombstone so that a replica writing the same item late does not make
	// it new again.
	Sent bool `json:"sent,omitempty"`
	// Attempts, First and LastErr drive retries and the deadline.
	Attempts int       `json:"attempts,omitempty"`
	First    time.Time `json:"first,omitzero"`
	LastErr  string    `json:"lastErr,omitempty"`
}

// sentTTL is how long a delivered outbox item is remembered.
const sentTTL = 24 * time.Hour

func (p *Pipeline) flapTTL(c flapping.Config) time.Duration {
	return 2*max(time.Duration(c.Window), time.Duration(c.StableFor)) + 24*time.Hour
}

// decide runs one entry's alerts through flap detection and routing and
// hands the resulting notifications over. It reports an error when the
// store failed; the entry is then retried.
func (p *Pipeline) decide(ctx context.Context, e *alert.Entry, log zerolog.Logger) error {
	r := p.rules.Load()
	if r == nil || r.Tree == nil {
		return nil
	}
	now := p.o.Now()
	// Alerts bound for the same target go out together, as Alertmanager
	// grouped them.
	type group struct {
		t      routing.Target
		alerts template.Alerts
	}
	groups := map[string]*group{}
	var order []string
	for _, a := range e.Message.Alerts {
		res := r.Tree.Match(a.Labels, now)
		ov := res.Flapping
		cfg := flapping.Merge(r.Flapping, r.Override(ov))
		key := flapping.Key(cfg, a.Fingerprint, a.Labels)
		held, flappingNow, err := p.observe(ctx, r, key, cfg, ov.SuppressNotifications(), a, e, log)
		if err != nil {
			return err
		}
		// Remediation runs off the notification path, from the store, so a
		// slow action delays no notification and a crash loses none.
		if err := p.putRemedy(ctx, e.ID, a, flappingNow && !ov.RemediateWhileFlapping()); err != nil {
			return err
		}
		if held {
			continue
		}
		for _, t := range res.Targets {
			g := groups[t.Key()]
			if g == nil {
				g = &group{t: t}
				groups[t.Key()] = g
				order = append(order, t.Key())
			}
			g.alerts = append(g.alerts, a)
		}
	}
	for _, k := range order {
		g := groups[k]
		if err := p.send(ctx, r, g.t, g.alerts, e.Message.GroupKey, e.Message.ExternalURL, "entry:"+e.ID, now, log); err != nil {
			return err
		}
	}
	return nil
}

// observe updates the alert's flap state and reports whether its
// notifications are held back.
func (p *Pipeline) observe(ctx context.Context, r *Rules, key string, cfg flapping.Config, suppress bool, a template.Alert, e *alert.Entry, log zerolog.Logger) (held, flappingNow bool, err error) {
	var d flapping.Decision
	var rec flapRecord
	_, err = p.o.Store.UpdateState(ctx, "flap:"+key, p.flapTTL(cfg), func(old []byte) ([]byte, error) {
		rec = flapRecord{}
		if old != nil {
			if err := json.Unmarshal(old, &rec); err != nil {
				// A record we cannot read is started afresh rather than
				// blocking the alert's notifications.
				rec = flapRecord{}
			}
		}
		rec.Config, rec.Suppress = cfg, suppress
		d = flapping.Observe(cfg, &rec.State, a, e.ReceivedAt)
		held = false
		if d.Flapping && suppress {
			if rec.Held == nil {
				rec.Held = map[string]heldAlert{}
			}
			if _, ok := rec.Held[a.Fingerprint]; ok || len(rec.Held) < maxHeld {
				rec.Held[a.Fingerprint] = heldAlert{Alert: a, GroupKey: e.Message.GroupKey, ExternalURL: e.Message.ExternalURL}
				held = true
			}
		}
		p.noticeFor(r, key, a.Labels, d, &rec)
		return json.Marshal(rec)
	})
	if err != nil {
		return false, false, fmt.Errorf("update flap state: %w", err)
	}
	if d.Event != flapping.None {
		log.Warn().Str("flap_key", key).Str("alertname", a.Labels["alertname"]).Str("event", string(d.Event)).
			Int("changes", d.Changes).Str("window", d.Window.String()).Float64("percent", d.Percent).Str("reason", d.Reason).
			Msg("flapping " + string(d.Event))
	}
	if held {
		p.m.held.Inc()
		log.Info().Str("flap_key", key).Str("fingerprint", a.Fingerprint).Str("status", a.Status).Msg("alert is flapping; its notification is held back")
	}
	if rec.State.Flapping || len(rec.Pending) > 0 {
		if err := p.o.Store.Mark(ctx, indexFlapping, key, float64(p.o.Now().Unix())); err != nil {
			return false, false, err
		}
	}
	if len(rec.Pending) > 0 {
		if err := p.flushPending(ctx, key, cfg, log); err != nil {
			return false, false, err
		}
	}
	return held, d.Flapping, nil
}

// noticeFor adds to rec what an event calls for: a notice to the flapping
// receiver, and when flapping stopped, the release of the held alerts. It
// runs inside a state update, so it only changes rec.
func (p *Pipeline) noticeFor(r *Rules, key string, labels template.KV, d flapping.Decision, rec *flapRecord) {
	if d.Event == flapping.None {
		return
	}
	name := labels["alertname"]
	facts := map[string]string{
		"flap_key":  key,
		"alertname": name,
		"changes":   strconv.Itoa(d.Changes),
		"window":    d.Window.String(),
		"percent":   strconv.FormatFloat(d.Percent, 'f', 1, 64),
		"method":    rec.Config.Method,
	}
	kind, text := notifiers.KindFlappingStarted, fmt.Sprintf("%s is flapping: %s. Its notifications are held back until it is stable for %s.", describe(labels, rec.Config), d.Reason, time.Duration(rec.Config.StableFor))
	if !rec.Suppress {
		text = fmt.Sprintf("%s is flapping: %s.", describe(labels, rec.Config), d.Reason)
	}
	if d.Event == flapping.Stopped {
		kind, text = notifiers.KindFlappingStopped, fmt.Sprintf("%s stopped flapping: %s. Its current state follows.", describe(labels, rec.Config), d.Reason)
	}
	id := fmt.Sprintf("flap:%s:%s:%d", key, d.Event, d.Since.UnixNano())
	if r.FlappingReceiver != "" {
		for _, t := range r.Tree.ReceiverTargets(r.FlappingReceiver) {
			n := notifiers.Notification{Key: id + ":" + t.Key(), Kind: kind, Target: toTarget(t), Text: text, Facts: facts}
			for _, h := range rec.Held {
				n.Alerts = append(n.Alerts, h.Alert)
			}
			if len(n.Alerts) == 0 {
				n.Alerts = template.Alerts{{Labels: labels, Status: alert.StatusFiring}}
			}
			sortAlerts(n.Alerts)
			rec.Pending = append(rec.Pending, n)
		}
	}
	if d.Event == flapping.Stopped && len(rec.Held) > 0 {
		// The held alerts are released as "release" markers; flushPending
		// routes them at release time, when muting is decided anew.
		for fp, h := range rec.Held {
			b, _ := json.Marshal(h)
			rec.Pending = append(rec.Pending, notifiers.Notification{
				Key:   fmt.Sprintf("release:%s:%d:%s", key, d.Since.UnixNano(), fp),
				Kind:  kindRelease,
				Facts: map[string]string{"held": string(b)},
			})
		}
		rec.Held = nil
	}
}

// kindRelease marks a held alert to route and deliver once flapping stopped.
const kindRelease = "release"

func describe(labels template.KV, c flapping.Config) string {
	if len(c.By) == 0 {
		return fmt.Sprintf("alert %s %s", labels["alertname"], labelString(labels))
	}
	sub := template.KV{}
	for _, l := range c.By {
		sub[l] = labels[l]
	}
	return "alerts with " + labelString(sub)
}

func labelString(kv template.KV) string {
	ps := kv.SortedPairs()
	s := "{"
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Name + "=" + strconv.Quote(p.Value)
	}
	return s + "}"
}

func sortAlerts(as template.Alerts) {
	sort.Slice(as, func(i, j int) bool { return as[i].Fingerprint < as[j].Fingerprint })
}

func toTarget(t routing.Target) notifiers.Target {
	return notifiers.Target{Receiver: t.Receiver, Integration: t.Integration, Name: t.Name, Settings: t.Settings}
}

// flushPending moves a flap record's pending notifications into the outbox
// (or, for released alerts, routes them), then removes them from the record.
// Writing is idempotent by key, so a crash in between writes them again.
func (p *Pipeline) flushPending(ctx context.Context, key string, cfg flapping.Config, log zerolog.Logger) error {
	var pending []notifiers.Notification
	old, err := p.o.Store.State(ctx, "flap:"+key)
	if old != nil {
		var rec flapRecord
		if json.Unmarshal(old, &rec) == nil {
			pending = rec.Pending
		}
	}
	if err != nil || len(pending) == 0 {
		return err
	}
	r := p.rules.Load()
	now := p.o.Now()
	for _, n := range pending {
		if n.Kind == kindRelease {
			var h heldAlert
			if err := json.Unmarshal([]byte(n.Facts["held"]), &h); err != nil {
				continue
			}
			res := r.Tree.Match(h.Alert.Labels, now)
			for _, t := range res.Targets {
				if t.Muted {
					if err := p.send(ctx, r, t, template.Alerts{h.Alert}, h.GroupKey, h.ExternalURL, n.Key, now, log); err != nil {
						return err
					}
					continue
				}
				// Through the outbox, so that replicas releasing the same
				// held alert at once deliver it once.
				rn := notifiers.Notification{Key: n.Key + ":" + t.Key(), Kind: notifiers.KindAlerts, Target: toTarget(t),
					Alerts: template.Alerts{h.Alert}, GroupKey: h.GroupKey, ExternalURL: h.ExternalURL}
				if err := p.putOutbox(ctx, rn, now); err != nil {
					return err
				}
			}
			continue
		}
		if err := p.putOutbox(ctx, n, now); err != nil {
			return err
		}
	}
	done := map[string]bool{}
	for _, n := range pending {
		done[n.Key] = true
	}
	var rec flapRecord
	_, err = p.o.Store.UpdateState(ctx, "flap:"+key, p.flapTTL(cfg), func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, nil
		}
		rec = flapRecord{}
		if err := json.Unmarshal(old, &rec); err != nil {
			return old, nil
		}
		keep := rec.Pending[:0]
		for _, n := range rec.Pending {
			if !done[n.Key] {
				keep = append(keep, n)
			}
		}
		rec.Pending = keep
		return json.Marshal(rec)
	})
	if err != nil {
		return err
	}
	if !rec.State.Flapping && len(rec.Pending) == 0 {
		return p.o.Store.Unmark(ctx, indexFlapping, key)
	}
	return nil
}

// send delivers alerts to one target now, or defers or drops them while
// the target is muted.
func (p *Pipeline) send(ctx context.Context, r *Rules, t routing.Target, as template.Alerts, groupKey, extURL, cause string, now time.Time, log zerolog.Logger) error {
	n := notifiers.Notification{
		Key:         cause + ":" + t.Key(),
		Kind:        notifiers.KindAlerts,
		Target:      toTarget(t),
		Alerts:      as,
		GroupKey:    groupKey,
		ExternalURL: extURL,
	}
	if t.Muted {
		if t.Action == routing.Defer && !t.Until.IsZero() {
			p.m.muted.WithLabelValues(string(routing.Defer)).Add(float64(len(as)))
			log.Info().Str("target", t.Key()).Str("interval", t.MutedBy).Time("until", t.Until).Int("alerts", len(as)).Msg("target muted; deferred to its digest")
			return p.addToDigest(ctx, t, as, now)
		}
		// drop loses the firing notifications, as the seed's quiet hours
		// do, but never a resolve: a page sent before the quiet hours must
		// still be closed, so resolves wait for the digest.
		var resolved template.Alerts
		for _, a := range as {
			if a.Status == alert.StatusResolved {
				resolved = append(resolved, a)
			}
		}
		p.m.muted.WithLabelValues(string(routing.Drop)).Add(float64(len(as) - len(resolved)))
		log.Info().Str("target", t.Key()).Str("interval", t.MutedBy).Int("alerts", len(as)-len(resolved)).Int("resolves_deferred", len(resolved)).Msg("target muted; notification dropped")
		if len(resolved) > 0 && !t.Until.IsZero() {
			p.m.muted.WithLabelValues(string(routing.Defer)).Add(float64(len(resolved)))
			return p.addToDigest(ctx, t, resolved, now)
		}
		return nil
	}
	return p.putOutbox(ctx, n, now)
}

// DeadLetter is a notification that failed for good.
type DeadLetter struct {
	Key          string                 `json:"key"`
	Kind         string                 `json:"kind"`
	Target       string                 `json:"target"`
	Integration  string                 `json:"integration"`
	Alerts       int                    `json:"alerts"`
	Attempts     int                    `json:"attempts"`
	Error        string                 `json:"error"`
	At           time.Time              `json:"at"`
	Notification notifiers.Notification `json:"notification"`
}

const (
	indexDead = "dead"
	deadTTL   = 7 * 24 * time.Hour
)

// FailedDeliveries lists the dead letters kept, oldest first.
func (p *Pipeline) FailedDeliveries(ctx context.Context) ([]DeadLetter, error) {
	keys, err := p.o.Store.Marked(ctx, indexDead, math.Inf(1))
	if err != nil {
		return nil, err
	}
	out := []DeadLetter{}
	for _, k := range keys {
		var dl DeadLetter
		old, err := p.o.Store.State(ctx, "dead:"+k)
		if err != nil {
			return nil, err
		}
		if old == nil || json.Unmarshal(old, &dl) != nil {
			_ = p.o.Store.Unmark(ctx, indexDead, k)
			continue
		}
		out = append(out, dl)
	}
	return out, nil
}

// addToDigest keeps the latest observation of each alert for a muted
// target until the mute ends; a resolve during the mute replaces the firing.
func (p *Pipeline) addToDigest(ctx context.Context, t routing.Target, as template.Alerts, now time.Time) error {
	id := "digest:" + t.Key()
	var due time.Time
	_, err := p.o.Store.UpdateState(ctx, "outbox:"+id, t.Until.Sub(now)+7*24*time.Hour, func(old []byte) ([]byte, error) {
		var it outboxItem
		if old != nil {
			_ = json.Unmarshal(old, &it)
		}
		if it.N.Key == "" || !it.Lease.IsZero() {
			// New digest, or the previous one is being sent: start another.
			it = outboxItem{N: notifiers.Notification{Kind: notifiers.KindDigest, Target: toTarget(t)}, Due: t.Until}
			it.N.Key = fmt.Sprintf("%s:%d", id, t.Until.UnixNano())
		}
		for _, a := range as {
			replaced := false
			for i, o := range it.N.Alerts {
				if o.Fingerprint == a.Fingerprint {
					it.N.Alerts[i], replaced = a, true
				}
			}
			if !replaced {
				it.N.Alerts = append(it.N.Alerts, a)
			}
		}
		due = it.Due
		return json.Marshal(it)
	})
	if err != nil {
		return fmt.Errorf("defer to digest: %w", err)
	}
	return p.o.Store.Mark(ctx, indexOutbox, id, score(due))
}

// putOutbox stores a notification for delivery at now by the checker.
func (p *Pipeline) putOutbox(ctx context.Context, n notifiers.Notification, now time.Time) error {
	_, err := p.o.Store.UpdateState(ctx, "outbox:"+n.Key, 7*24*time.Hour, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil // already there: writing again changes nothing
		}
		return json.Marshal(outboxItem{N: n, Due: now})
	})
	if err != nil {
		return fmt.Errorf("put outbox: %w", err)
	}
	if err := p.o.Store.Mark(ctx, indexOutbox, n.Key, score(now)); err != nil {
		return err
	}
	p.wake()
	return nil
}

// score is an index score for a time, to the millisecond.
func score(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// check is the periodic work of every replica: flapping that ended by
// stability, and outbox items that fell due. Every step is an atomic state
// update, so replicas running it at once act once.
func (p *Pipeline) check(ctx context.Context) error {
	r := p.rules.Load()
	if r == nil || r.Tree == nil {
		return nil
	}
	log := p.o.Logger
	now := p.o.Now()
	keys, err := p.o.Store.Marked(ctx, indexFlapping, math.Inf(1))
	if err != nil {
		return err
	}
	for _, key := range keys {
		var rec flapRecord
		var d flapping.Decision
		var gone bool
		_, err := p.o.Store.UpdateState(ctx, "flap:"+key, p.flapTTL(r.Flapping), func(old []byte) ([]byte, error) {
			gone, rec, d = old == nil, flapRecord{}, flapping.Decision{}
			if old == nil {
				return nil, nil
			}
			if err := json.Unmarshal(old, &rec); err != nil {
				return nil, nil // unreadable: drop it, as observe would start afresh
			}
			d = flapping.Check(rec.Config, &rec.State, now)
			labels := template.KV{}
			for _, h := range rec.Held {
				labels = h.Alert.Labels
				break
			}
			if labels["alertname"] == "" {
				labels = template.KV{"alertname": key}
			}
			p.noticeFor(r, key, labels, d, &rec)
			return json.Marshal(rec)
		})
		if err != nil {
			return err
		}
		if gone {
			_ = p.o.Store.Unmark(ctx, indexFlapping, key)
			continue
		}
		if d.Event != flapping.None {
			log.Warn().Str("flap_key", key).Str("event", string(d.Event)).Str("reason", d.Reason).Msg("flapping " + string(d.Event))
		}
		if len(rec.Pending) > 0 {
			if err := p.flushPending(ctx, key, rec.Config, log); err != nil {
				return err
			}
		} else if !rec.State.Flapping {
			_ = p.o.Store.Unmark(ctx, indexFlapping, key)
		}
	}

	return nil
}
