package pipeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store"
)

// Rules are the parts of the configuration the pipeline decides with; a
// reload swaps them whole (Pipeline.Apply).
type Rules struct {
	Tree *routing.Tree
	// Flapping is the default detection; routes override it.
	Flapping flapping.Config
	// FlappingReceiver gets flapping notices; "" logs them only.
	FlappingReceiver string
	// RemediationReceiver gets the notices remediation records carry
	// (remediation.notify_receiver); "" logs them only.
	RemediationReceiver string
	// DigestMax bounds the alerts one digest carries; past it they are
	// counted ("and N more"), resolves excepted. Default 1000.
	DigestMax int
}

// indexFlapping lists the flap keys that are flapping, for the periodic
// check that ends them.
const indexFlapping = "flapping"

// plan is what processing one entry, or one periodic check, decided: the
// records to write and the work to queue, committed as one store.Txn so
// that either all of it happens or none.
type plan struct {
	p   *Pipeline
	r   *Rules
	now time.Time
	// entry and url are the ID and the Alertmanager of the entry decided
	// ("" for a periodic check): shared events are named after it.
	entry, url string
	// shard is the one the plan commits in; forwarded: the commit carries
	// outbox work for another shard.
	shard     int
	forwarded bool
	// cur are the values the plan was decided from (Expect), by key.
	cur map[string][]byte
	// records and flaps being written, by key.
	records map[string]*alertRecord
	flaps   map[string]*flapRecord
	order   []string // record keys in the order first touched
	txn     store.Txn
	outbox  []string // targets something was put in the outbox for
	remedy  bool     // something was put in the remediation queue
	// For the log and the metrics once committed.
	held     int
	holds    int // pages (and their resolves) held for remediation
	muted    map[routing.MuteAction]int
	events   []flapEvent
	deferred []deferral
	already  int
}

type flapEvent struct {
	key, alertname string
	d              flapping.Decision
}

type deferral struct {
	target, interval string
	until            time.Time
	alerts           int
	drop             bool
}

func (p *Pipeline) newPlan(r *Rules, cur map[string][]byte, now time.Time) *plan {
	return &plan{p: p, r: r, now: now, cur: cur, records: map[string]*alertRecord{}, flaps: map[string]*flapRecord{},
		muted: map[routing.MuteAction]int{}}
}

func (pl *plan) record(fp string) *alertRecord {
	k := alertKey(fp)
	if r := pl.records[k]; r != nil {
		return r
	}
	r := decodeRecord(fp, pl.cur[k])
	pl.records[k] = r
	pl.order = append(pl.order, k)
	return r
}

// flap returns flap key's state: within the alert's record, or its own.
func (pl *plan) flap(key string) *flapRecord {
	if !grouped(key) {
		r := pl.record(key)
		if r.Flap == nil {
			r.Flap = &flapRecord{}
		}
		return r.Flap
	}
	k := flapKey(key)
	if f := pl.flaps[k]; f != nil {
		return f
	}
	f := decodeFlap(pl.cur[k])
	pl.flaps[k] = f
	pl.order = append(pl.order, k)
	return f
}

// match is where one alert of an entry goes, decided once per entry.
type match struct {
	res routing.Result
	cfg flapping.Config
	key string // its flap key
}

// matchEntry routes an entry's alerts at now, and names the store keys
// its plan reads, so that they are read in one round trip before it is
// decided.
func matchEntry(r *Rules, e *alert.Entry, now time.Time) ([]match, []string) {
	seen := map[string]bool{}
	var ks []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	var ms []match
	for _, a := range e.Message.Alerts {
		add(alertKey(a.Fingerprint))
		if r == nil || r.Tree == nil {
			continue
		}
		m := match{res: r.Tree.Match(a.Labels, now)}
		m.cfg = flapping.Merge(r.Flapping, &m.res.Flapping.Override)
		m.key = flapping.Key(m.cfg, a.Fingerprint, a.Labels)
		if grouped(m.key) {
			add(flapKey(m.key))
		}
		ms = append(ms, m)
	}
	return ms, ks
}

// decideEntry runs an entry's alerts through flap detection, routing and
// the per-target decisions, into pl; ms are matchEntry's.
func (pl *plan) decideEntry(e *alert.Entry, ms []match) {
	r := pl.r
	type group struct {
		t      routing.Routed
		alerts template.Alerts
	}
	groups := map[string]*group{}
	var order []string
	pl.entry, pl.url = e.ID, e.Message.ExternalURL
	for i, a := range e.Message.Alerts {
		rec := pl.record(a.Fingerprint)
		rec.observe(a, e.ReceivedAt)
		rec.Labels, rec.GroupKey, rec.SharedLabels = a.Labels, e.Message.GroupKey, false // shared again, or not, by finish
		rec.received(pl.now, a.Status, e.ID, e.Message.ExternalURL)
		if r == nil || r.Tree == nil {
			continue
		}
		res, cfg, key := ms[i].res, ms[i].cfg, ms[i].key
		ov := res.Flapping
		fr := pl.flap(key)
		wasFlapping := fr.State.Flapping
		d := flapping.Observe(cfg, &fr.State, a, e.ReceivedAt)
		fr.Suppress = ov.SuppressNotifications()
		held := false
		if d.Flapping && fr.Suppress {
			if _, ok := fr.Held[a.Fingerprint]; ok || len(fr.Held) < maxHeld {
				if fr.Held == nil {
					fr.Held = map[string]heldAlert{}
				}
				fr.Held[a.Fingerprint] = heldAlert{Alert: a, GroupKey: e.Message.GroupKey, ExternalURL: e.Message.ExternalURL}
				held = true
				pl.held++
			}
		}
		pl.flapped(key, cfg, fr, a.Labels, d, wasFlapping, a.Fingerprint)
		switch {
		case d.Event == flapping.Started:
			rec.note(pl.now, api.StageFlapping, "", "started flapping: "+d.Reason, "")
		case d.Event == flapping.Stopped:
			rec.note(pl.now, api.StageFlapping, "", "stopped flapping: "+d.Reason, "")
		case d.Flapping:
			rec.note(pl.now, api.StageFlapping, "", "still flapping: "+d.Reason, "")
		}
		rec.routed(pl.now, res.Routes)
		if held {
			rec.note(pl.now, api.StageSuppressed, "", "held back while it flaps; its latest state goes out when it is stable", "")
		}

		// Remediation runs off the notification path, from the store, so a
		// slow action delays no notification and a crash loses none; only
		// alerts a rule matches get a task. A rule that verifies may hold
		// the alert's pages (hold.go) until its verdict.
		var task *remedyTask
		var within time.Duration
		if rm := pl.p.o.Remediator; rm != nil && rm.Matches(a) {
			task = &remedyTask{Alert: a, Flapping: d.Flapping && !ov.RemediateWhileFlapping()}
			if !held && !task.Flapping {
				if rule, w := rm.HoldFor(a); rule != "" {
					task.Hold, within = &holdTask{Rule: rule}, w
				}
			}
		}
		for _, t := range res.Targets {
			if held {
				break
			}
			if !pl.admit(rec, t, a) {
				continue
			}
			if t.Hold && task != nil && task.Hold != nil {
				pl.holdPage(rec, task.Hold, within, t, a, e.Message.GroupKey, e.Message.ExternalURL)
				continue
			}
			if until, ok := rec.holding(t.Key(), pl.now); ok && a.Status == alert.StatusResolved {
				pl.holdResolve(t, a, until, e.Message.GroupKey, e.Message.ExternalURL)
				rec.note(pl.now, api.StageHeld, t.Key(), "the resolve waits with the page held for remediation", holdResolveID(a.Fingerprint, a.StartsAt, t.Key()))
				continue
			}
			// Short forms (timeline.go's expand): the item is the entry's.
			detail := ""
			if t.Bypassed {
				detail = codeBypass + strings.Join(t.MuteTimeIntervals, ", ")
			} else if t.Muted {
				detail = codeMutedResolve + t.MutedBy
			}
			rec.note(pl.now, api.StageNotify, t.Key(), detail, "")
			g := groups[t.Key()]
			if g == nil {
				g = &group{t: t}
				groups[t.Key()] = g
				order = append(order, t.Key())
			}
			g.alerts = append(g.alerts, a)
		}
		if task != nil {
			if task.Hold != nil && len(task.Hold.Pages) == 0 {
				task.Hold = nil // no target of this alert holds
			}
			b, _ := json.Marshal(task)
			pl.txn.Put = append(pl.txn.Put, store.Put{Queue: store.QueueRemedy, Item: store.Item{
				ID: e.ID + ":" + a.Fingerprint, Due: pl.now, Alerts: 1, Payload: b}})
			pl.remedy = true
		}
	}
	// Alerts bound for the same target go out together, as Alertmanager
	// grouped them.
	for _, k := range order {
		g := groups[k]
		pl.putAlerts("e:"+e.ID+":"+k, g.t, g.alerts, e.Message.GroupKey, e.Message.ExternalURL) // named as its events say
	}
}

// admit decides one alert for one target: it reports whether the alert goes
// into the target's notification now; a muted target defers it to the
// digest or drops it. rec is the alert's record (for its watermark), or nil
// when the alert's record is not part of this plan.
func (pl *plan) admit(rec *alertRecord, t routing.Routed, a template.Alert) bool {
	if rec != nil && !rec.newer(t.Key(), a) {
		// This observation, or a newer one, was given to the target
		// already: a resend after the dedup window, or a late replay.
		pl.already++
		rec.note(pl.now, api.StageAlready, t.Key(), "", "")
		return false
	}
	resolved := a.Status == alert.StatusResolved
	deferred := func() {
		if rec != nil {
			rec.deferred(pl.now, t.Key(), t.MutedBy, t.Until, digestID(t))
		}
	}
	switch {
	case !t.Muted:
	case t.Action == routing.Defer && !t.Until.IsZero():
		deferred()
		pl.collect(t, a)
		pl.muted[routing.Defer]++
		pl.deferred = append(pl.deferred, deferral{target: t.Key(), interval: t.MutedBy, until: t.Until, alerts: 1})
		if rec != nil {
			rec.sent(t.Key(), a)
		}
		return false
	case !resolved:
		// drop loses the firing notifications while quiet, but never a
		// resolve: a page sent before the quiet hours must still be closed.
		pl.muted[routing.Drop]++
		pl.deferred = append(pl.deferred, deferral{target: t.Key(), interval: t.MutedBy, alerts: 1, drop: true})
		if rec != nil {
			rec.note(pl.now, api.StageMuted, t.Key(), "muted by "+t.MutedBy+": dropped (mute_action: drop)", "")
		}
		return false
	case !t.Until.IsZero():
		deferred()
		pl.collect(t, a)
		pl.muted[routing.Defer]++
		if rec != nil {
			rec.sent(t.Key(), a)
		}
		return false
	}
	// Not muted, or a resolve on a mute that does not end within the
	// search horizon: it goes now rather than never.
	if rec != nil {
		rec.sent(t.Key(), a)
	}
	return true
}

// putAlerts puts one notification of alerts for t in the outbox.
func (pl *plan) putAlerts(id string, t routing.Routed, as template.Alerts, groupKey, extURL string) {
	n := notifiers.Notification{Key: id, Kind: notifiers.KindAlerts, Target: t.Target, Alerts: as, GroupKey: groupKey, ExternalURL: extURL}
	pl.putNotification(n, len(as))
}

func (pl *plan) putNotification(n notifiers.Notification, alerts int) { pl.putDue(n, alerts, pl.now) }

// putDue puts n in the outbox, due at due.
func (pl *plan) putDue(n notifiers.Notification, alerts int, due time.Time) {
	b, _ := json.Marshal(n)
	pl.txn.Put = append(pl.txn.Put, store.Put{Queue: store.QueueOutbox, Item: store.Item{
		ID: n.Key, Group: n.Target.Key(), Class: n.Target.Integration, Alerts: alerts, Due: due, Payload: b}})
	pl.outbox = append(pl.outbox, n.Target.Key())
}

// collect adds an alert to the target's digest, due when its mute ends;
// the latest observation of each alert wins, and a resolve is always kept.
func (pl *plan) collect(t routing.Routed, a template.Alert) {
	id := digestID(t)
	n := notifiers.Notification{Key: id, Kind: notifiers.KindDigest, Target: t.Target}
	hb, _ := json.Marshal(n)
	ab, _ := json.Marshal(a)
	capN := pl.r.DigestMax
	if capN <= 0 {
		capN = defaultDigestMax
	}
	f := store.Field{Name: a.Fingerprint, Value: ab, Keep: a.Status == alert.StatusResolved}
	// One collect per digest per plan, however many alerts go into it.
	for i := range pl.txn.Collect {
		if pl.txn.Collect[i].Item.ID == id {
			pl.txn.Collect[i].Fields = append(pl.txn.Collect[i].Fields, f)
			return
		}
	}
	pl.txn.Collect = append(pl.txn.Collect, store.Collect{
		Queue:  store.QueueOutbox,
		Item:   store.Item{ID: id, Group: t.Key(), Class: t.Integration, Due: t.Until, Payload: hb},
		Fields: []store.Field{f}, Cap: capN,
		// The digest goes at the mute's end; a week covers a delivery that
		// struggles long after it.
		TTL: 7 * 24 * time.Hour,
	})
}

const defaultDigestMax = 1000

// digestID names the digest a muted target's alerts wait in.
func digestID(t routing.Routed) string {
	return fmt.Sprintf("digest:%s:%d", t.Key(), t.Until.UnixNano())
}

// flapped turns a flapping decision into what it calls for: the index
// entry, a notice to the flapping receiver, and, when flapping stopped,
// the release of the held alerts. skip is the fingerprint whose current
// observation is being routed anyway (its held one is older).
func (pl *plan) flapped(key string, cfg flapping.Config, fr *flapRecord, labels template.KV, d flapping.Decision, wasFlapping bool, skip string) {
	if fr.State.Flapping {
		c := cfg
		fr.Config = &c
		if !wasFlapping {
			pl.txn.Mark = append(pl.txn.Mark, store.Mark{Index: indexFlapping, Member: key, Score: float64(pl.now.Unix())})
		}
	} else {
		fr.Config = nil
		if wasFlapping {
			pl.txn.Unmark = append(pl.txn.Unmark, store.Mark{Index: indexFlapping, Member: key})
		}
	}
	if d.Event == flapping.None {
		return
	}
	pl.events = append(pl.events, flapEvent{key: key, alertname: labels["alertname"], d: d})
	pl.notice(key, cfg, fr, labels, d)
	if d.Event == flapping.Stopped && len(fr.Held) > 0 {
		pl.release(key, d, fr, skip)
	}
}

// notice queues the flapping notice for every target of the flapping
// receiver.
func (pl *plan) notice(key string, cfg flapping.Config, fr *flapRecord, labels template.KV, d flapping.Decision) {
	r := pl.r
	if r.FlappingReceiver == "" {
		return
	}
	facts := map[string]string{
		"flap_key":  key,
		"alertname": labels["alertname"],
		"changes":   strconv.Itoa(d.Changes),
		"window":    d.Window.String(),
		"percent":   strconv.FormatFloat(d.Percent, 'f', 1, 64),
		"method":    cfg.Method,
	}
	kind, text := notifiers.KindFlappingStarted, fmt.Sprintf("%s is flapping: %s. Its notifications are held back until it is stable for %s.", describe(labels, cfg), d.Reason, time.Duration(cfg.StableFor))
	if !fr.Suppress {
		text = fmt.Sprintf("%s is flapping: %s.", describe(labels, cfg), d.Reason)
	}
	if d.Event == flapping.Stopped {
		kind, text = notifiers.KindFlappingStopped, fmt.Sprintf("%s stopped flapping: %s. Its current state follows.", describe(labels, cfg), d.Reason)
	}
	id := fmt.Sprintf("flap:%s:%s:%d", key, d.Event, d.Since.UnixNano())
	for _, t := range r.Tree.ReceiverTargets(r.FlappingReceiver) {
		n := notifiers.Notification{Key: id + ":" + t.Key(), Kind: kind, Target: t, Text: text, Facts: facts}
		for _, h := range fr.Held {
			n.Alerts = append(n.Alerts, h.Alert)
		}
		if len(n.Alerts) == 0 {
			n.Alerts = template.Alerts{{Labels: labels, Status: alert.StatusFiring}}
		}
		sortAlerts(n.Alerts)
		pl.putNotification(n, 0)
	}
}

// release routes the held alerts now that flapping stopped: muting is
// decided anew, at this instant.
func (pl *plan) release(key string, d flapping.Decision, fr *flapRecord, skip string) {
	fps := make([]string, 0, len(fr.Held))
	for fp := range fr.Held {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		h := fr.Held[fp]
		if fp == skip {
			continue // its newer observation is routed as it came
		}
		// An alert flapping on its own has its record in this plan: its
		// watermark counts. Grouped alerts' records are not read here; the
		// release's idempotent id keeps replicas from sending it twice.
		var rec *alertRecord
		if !grouped(key) {
			rec = pl.record(fp)
		}
		res := pl.r.Tree.Match(h.Alert.Labels, pl.now)
		for _, t := range res.Targets {
			if pl.admit(rec, t, h.Alert) {
				id := fmt.Sprintf("release:%s:%d:%s:%s", key, d.Since.UnixNano(), fp, t.Key())
				if rec != nil {
					rec.note(pl.now, api.StageNotify, t.Key(), "released: it stopped flapping", id)
				}
				pl.putAlerts(id, t, template.Alerts{h.Alert}, h.GroupKey, h.ExternalURL)
			}
		}
	}
	fr.Held = nil
}

// finish turns the plan's records into the Txn's expectations and writes.
func (pl *plan) finish() store.Txn {
	// A record lives pipeline.history_retention past its last write; one
	// whose flap state saw changes lives at least as long as flap
	// detection needs it.
	flapLife := max(pl.p.o.RecordTTL, flapTTL(pl.r.flappingOrDefault()))
	pl.share(flapLife)
	for _, k := range pl.order {
		pl.txn.Expect = append(pl.txn.Expect, store.Value{Key: k, Value: pl.cur[k]})
		var b []byte
		pin, ttl := false, flapLife
		if r := pl.records[k]; r != nil {
			pin = r.Flap != nil && r.Flap.pinned()
			var plain bool
			b, plain = r.encode(strings.TrimPrefix(k, "alert:"))
			if plain {
				ttl = pl.p.o.RecordTTL
			}
		} else if f := pl.flaps[k]; f != nil {
			pin = f.pinned()
			b, _ = json.Marshal(f)
		}
		pl.txn.Set = append(pl.txn.Set, store.Value{Key: k, Value: b, TTL: ttl, Pin: pin})
	}
	return pl.txn
}

func (r *Rules) flappingOrDefault() flapping.Config {
	if r == nil {
		return flapping.DefaultConfig()
	}
	return r.Flapping
}

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
