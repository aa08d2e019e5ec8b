// Package flapping decides whether an alert is flapping: changing state so
// often that each change is noise. It owns only the decision, as pure
// functions over a State that the caller loads, passes in and stores back
// (one per Key), with the time always given; it does no I/O, starts nothing
// and never reads the clock.
//
// Counting notifications ("more than 5 with this alertname in 30 minutes")
// is the obvious rule and a wrong one, three ways; this package does the
// opposite of each:
//
//   - Alertmanager re-sends every alert of a group on each group flush and
//     each repeat_interval, so counting notifications calls a steady
//     critical alert re-sent every 5 minutes "flapping" within half an
//     hour. Here only a state change counts: a move between firing and
//     resolved, or a re-fire with a new startsAt. A re-sent observation
//     (same fingerprint, status and startsAt) is not one.
//   - Grouping by alertname lets one noisy instance mark every instance of
//     that alert as flapping. Here each alert (fingerprint) flaps on its own
//     unless Config.By names labels to group by.
//   - Such a rule has no end: nothing says an alert stopped flapping. Here
//     every episode has one Started and one Stopped event, with hysteresis
//     so that the verdict itself does not flap.
//
// Two methods decide. count: more than
// Threshold state changes within Window. weighted is Nagios's percent state
// change (see Percent), with separate start (High) and stop (Low)
// thresholds. With either, a flapping alert that has not changed for
// StableFor has stopped flapping; Check finds that when no observation comes.
package flapping

import (
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

// Bounds of a State, whatever it is fed.
const (
	// MaxAlerts is how many alerts' last observations one State keeps; past
	// it the least recently seen is forgotten, and its next observation
	// counts as a first one (never a change).
	MaxAlerts = 1000
	// MaxChanges is how many state change times one State keeps (only those
	// within Window are kept at all).
	MaxChanges = 1000
	// HistorySamples is how many observations the weighted method looks at,
	// as Nagios keeps 21 states (MAX_STATE_HISTORY_ENTRIES): 20 transitions.
	HistorySamples = 21
)

// Event is what a decision asks the caller to announce.
type Event string

// Events. There is exactly one Started and one Stopped per episode.
const (
	None    Event = ""
	Started Event = "started"
	Stopped Event = "stopped"
)

// Seen is the last observation of one alert.
type Seen struct {
	Status   string    `json:"status"`
	StartsAt time.Time `json:"startsAt"`
	// SeenAt is when it was last observed (re-sends included): the
	// recency by which MaxAlerts evicts.
	SeenAt time.Time `json:"seenAt"`
}

// State is the flap state of one key. It is plain data, meant to be stored
// as JSON between calls; its zero value is a key never seen. Observe and
// Check keep it within MaxAlerts alerts, MaxChanges change times and
// HistorySamples samples. It is not safe for concurrent use: the caller
// serialises the calls for one key (a lock, or a compare-and-set in the
// store).
type State struct {
	// Alerts is the last observation of each alert (by fingerprint) in
	// this key.
	Alerts map[string]Seen `json:"alerts,omitempty"`
	// Changes are the times of the state changes within Window, oldest
	// first.
	Changes []time.Time `json:"changes,omitempty"`
	// Samples says, for each of the last HistorySamples observations of
	// the key, oldest first, whether it was a state change.
	Samples []bool `json:"samples,omitempty"`
	// Flapping is the verdict after the last call.
	Flapping bool `json:"flapping"`
	// Since is when the current episode started, or the last one if none
	// is under way.
	Since time.Time `json:"since,omitzero"`
	// Until is when the last episode ended; zero while flapping. An
	// episode that ended by being stable ended StableFor after its last
	// change, however much later that was noticed.
	Until time.Time `json:"until,omitzero"`
	// Reset: changes at or before it do not count toward starting a new
	// episode, because the last one ended by being stable (see stopStable).
	Reset time.Time `json:"reset,omitzero"`
	// LastChange is the time of the latest state change.
	LastChange time.Time `json:"lastChange,omitzero"`
	// LastSeen is the time of the latest observation.
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// Announced is the last event returned, and AnnouncedAt its time.
	Announced   Event     `json:"announced,omitempty"`
	AnnouncedAt time.Time `json:"announcedAt,omitzero"`
}

// Plain reports whether st holds nothing but one alert's last observation
// and steady samples (it never saw a state change): such a state is what
// FromSeen rebuilds, so a caller may store the observation instead of it.
func (st *State) Plain() (fp string, seen Seen, ok bool) {
	if len(st.Alerts) != 1 || len(st.Changes) > 0 || st.Flapping || !st.Since.IsZero() || !st.Until.IsZero() ||
		!st.Reset.IsZero() || !st.LastChange.IsZero() || st.Announced != None || !st.AnnouncedAt.IsZero() {
		return "", Seen{}, false
	}
	for _, changed := range st.Samples {
		if changed {
			return "", Seen{}, false
		}
	}
	for fp, seen = range st.Alerts {
	}
	if !st.LastSeen.Equal(seen.SeenAt) {
		return "", Seen{}, false
	}
	return fp, seen, true
}

// FromSeen is the state of one alert observed n times, the last as seen,
// without a state change: Plain's inverse. How many steady samples it holds
// changes no verdict (a steady sample weighs nothing).
func FromSeen(fp string, seen Seen, n int) State {
	return State{
		Alerts:   map[string]Seen{fp: seen},
		Samples:  make([]bool, min(max(n, 1), HistorySamples)),
		LastSeen: seen.SeenAt,
	}
}

// Decision is the verdict on one observation (Observe) or one periodic
// check (Check), with the figures a notice needs.
type Decision struct {
	// Changed: this observation was a state change (always false from
	// Check).
	Changed bool `json:"changed"`
	// Flapping is the verdict after this call.
	Flapping bool `json:"flapping"`
	// Event is Started or Stopped when the verdict turned, else None.
	Event Event `json:"event,omitempty"`
	// Reason says in words why the verdict turned; empty with None.
	Reason string `json:"reason,omitempty"`
	// Changes is how many state changes the key had within Window, ending
	// at the time of the call.
	Changes int `json:"changes"`
	// Window is Config.Window.
	Window time.Duration `json:"window"`
	// Percent is the weighted percent state change (computed whatever the
	// method, so it can be shown).
	Percent float64 `json:"percent"`
	// Since is the start of the episode under way, or of the one that just
	// stopped; zero otherwise.
	Since time.Time `json:"since,omitzero"`
	// Until is, with Stopped, when the episode ended (State.Until).
	Until time.Time `json:"until,omitzero"`
	// LastChange is the key's latest state change.
	LastChange time.Time `json:"lastChange,omitzero"`
}

// Observe records one observation of alert a, received at at, in st (the
// state of Key(cfg, a.Fingerprint, a.Labels)) and says whether the key is
// flapping. Give it every observation that reaches the pipeline, re-sends
// included: a re-send is not a change, but it is a steady sample for the
// weighted method. at should be when the observation was received (not
// when it is processed), so that a queue's delay or a redelivery does not
// move it.
//
// The observation is a state change when the alert was seen before in this
// State and its status differs, or its startsAt is later (a re-fire, or a
// resolve of an episode that was never seen firing). An observation whose
// startsAt is earlier than the last one seen belongs to an episode already
// over (a late redelivery): it is not a change and leaves the last seen
// observation alone.
func Observe(cfg Config, st *State, a template.Alert, at time.Time) Decision {
	at = at.UTC()
	st.trim(cfg, at)

	var d Decision
	stoppedNow := false
	if st.Flapping && st.stable(cfg, at) {
		d.Event, d.Reason, d.Since = Stopped, stableReason(cfg), st.Since
		st.stopStable(cfg, at)
		d.Until = st.Until
		stoppedNow = true
	}

	fp := a.Fingerprint
	if fp == "" {
		fp = alert.Fingerprint(a.Labels)
	}
	changed := st.see(fp, a.Status, a.StartsAt.UTC(), at)
	st.addSample(changed)
	if changed {
		st.addChange(at)
	}
	if at.After(st.LastSeen) {
		st.LastSeen = at
	}
	d.Changed = changed

	pct := st.Percent()
	// A verdict that has just turned does not turn back on the same
	// observation: a new episode needs a new observation.
	if !stoppedNow {
		switch {
		case !st.Flapping && !st.stable(cfg, at):
			if cfg.Method == MethodWeighted {
				if pct >= cfg.High {
					d.Event = Started
					d.Reason = fmt.Sprintf("percent state change %.1f%% is at least high (%g%%)", pct, cfg.High)
				}
			} else if n := st.count(cfg, at, st.Reset); n > cfg.Threshold {
				d.Event = Started
				d.Reason = fmt.Sprintf("%d state changes within %s, more than %d", n, cfg.Window, cfg.Threshold)
			}
			if d.Event == Started {
				st.start(at)
			}
		case st.Flapping && cfg.Method == MethodWeighted && pct <= cfg.Low:
			d.Event = Stopped
			d.Reason = fmt.Sprintf("percent state change %.1f%% is at most low (%g%%)", pct, cfg.Low)
			d.Since = st.Since
			st.stop(at, at)
			d.Until = st.Until
		}
	}
	st.figures(cfg, at, &d)
	return d
}

// Check is the periodic check for a key that may get no more observations:
// a flapping key whose last change is at least StableFor before now has
// stopped (Stopped, once; later calls return None). It also drops change
// times that have left the window. Call it for every stored State that is
// Flapping, at least as often as the precision wanted for the stop notice.
func Check(cfg Config, st *State, now time.Time) Decision {
	now = now.UTC()
	st.trim(cfg, now)
	var d Decision
	if st.Flapping && st.stable(cfg, now) {
		d.Event, d.Reason, d.Since = Stopped, stableReason(cfg), st.Since
		st.stopStable(cfg, now)
		d.Until = st.Until
	}
	st.figures(cfg, now, &d)
	return d
}

// Idle reports whether st decides nothing any more and may be deleted: not
// flapping, and not observed for the longer of Window and StableFor.
// Deleting it forgets the alerts' last observations (the next of each is a
// first one, not a change) and the weighted samples.
func (st *State) Idle(cfg Config, now time.Time) bool {
	keep := max(time.Duration(cfg.Window), time.Duration(cfg.StableFor))
	return !st.Flapping && (st.LastSeen.IsZero() || now.Sub(st.LastSeen) >= keep)
}

// Percent is the weighted percent state change of st's samples, as Nagios
// Core computes it (base/flapping.c, check_for_service_flapping): of the 21
// states kept, each of the 20 transitions that is a change adds a weight
// rising linearly from 0.75 for the oldest to 1.25 for the newest,
//
//	weight(x) = 0.75 + (x-1) × (1.25-0.75) / 19,   x = 1 (oldest) … 20 (newest)
//
// and the percent is the sum × 100 / 20, so 0 when nothing changed and 100
// when every transition did; recent changes count more than old ones.
// Fewer than 21 samples are read as if the missing oldest ones were steady,
// as Nagios fills a new history with the current state. Here a sample is
// an observation (Alertmanager speaks on change and on re-send, not on a
// schedule), and sample i's flag is the transition from sample i-1; the
// oldest kept sample's flag is the transition from a state no longer kept,
// so it is not counted.
//
// With weight(x) = (55 + 2x) / 76 the sum is done in integers and divided
// once, so the result is exact at the thresholds (30 is 30, not 29.999…).
func (st *State) Percent() float64 {
	n := len(st.Samples)
	sum := 0
	for j := 0; j < n && j < HistorySamples-1; j++ {
		if st.Samples[n-1-j] {
			x := HistorySamples - 1 - j // the newest is x = 20
			sum += 55 + 2*x
		}
	}
	return float64(5*sum) / 76
}

// see records fingerprint fp's observation and reports whether it was a
// state change.
func (st *State) see(fp, status string, startsAt, at time.Time) bool {
	if st.Alerts == nil {
		st.Alerts = map[string]Seen{}
	}
	prev, known := st.Alerts[fp]
	switch {
	case !known:
		st.Alerts[fp] = Seen{Status: status, StartsAt: startsAt, SeenAt: at}
		st.evict(fp)
		return false
	case startsAt.Before(prev.StartsAt): // a late copy of an earlier episode
		if at.After(prev.SeenAt) {
			prev.SeenAt = at
		}
		st.Alerts[fp] = prev
		return false
	}
	changed := status != prev.Status || !startsAt.Equal(prev.StartsAt)
	if prev.SeenAt.After(at) {
		at = prev.SeenAt
	}
	st.Alerts[fp] = Seen{Status: status, StartsAt: startsAt, SeenAt: at}
	return changed
}

// evict forgets the least recently seen alerts (never keep) beyond
// MaxAlerts. Ties go by fingerprint so that replicas agree.
func (st *State) evict(keep string) {
	for len(st.Alerts) > MaxAlerts {
		var oldest string
		var t time.Time
		for fp, s := range st.Alerts {
			if fp == keep {
				continue
			}
			if oldest == "" || s.SeenAt.Before(t) || (s.SeenAt.Equal(t) && fp < oldest) {
				oldest, t = fp, s.SeenAt
			}
		}
		delete(st.Alerts, oldest)
	}
}

func (st *State) addSample(changed bool) {
	if len(st.Samples) >= HistorySamples {
		// Shift in place: the backing array never grows.
		n := copy(st.Samples, st.Samples[len(st.Samples)-HistorySamples+1:])
		st.Samples = st.Samples[:n]
	}
	st.Samples = append(st.Samples, changed)
}

// addChange inserts at in time order (replicas' clocks and redeliveries
// may bring times slightly out of order) and keeps the newest MaxChanges.
func (st *State) addChange(at time.Time) {
	i := sort.Search(len(st.Changes), func(i int) bool { return st.Changes[i].After(at) })
	st.Changes = append(st.Changes, time.Time{})
	copy(st.Changes[i+1:], st.Changes[i:])
	st.Changes[i] = at
	if len(st.Changes) > MaxChanges {
		n := copy(st.Changes, st.Changes[len(st.Changes)-MaxChanges:])
		st.Changes = st.Changes[:n]
	}
	if at.After(st.LastChange) {
		st.LastChange = at
	}
}

// trim drops the change times at or before now - Window.
func (st *State) trim(cfg Config, now time.Time) {
	cut := now.Add(-time.Duration(cfg.Window))
	i := sort.Search(len(st.Changes), func(i int) bool { return st.Changes[i].After(cut) })
	if i > 0 {
		n := copy(st.Changes, st.Changes[i:])
		st.Changes = st.Changes[:n]
	}
	if len(st.Changes) == 0 {
		st.Changes = nil
	}
	if !st.Reset.IsZero() && !st.Reset.After(cut) {
		st.Reset = time.Time{} // every change it hid has left the window
	}
}

// count is the number of changes within Window ending at now and after
// after.
func (st *State) count(cfg Config, now, after time.Time) int {
	cut := now.Add(-time.Duration(cfg.Window))
	if after.After(cut) {
		cut = after
	}
	n := 0
	for _, t := range st.Changes {
		if t.After(cut) {
			n++
		}
	}
	return n
}

// stable reports whether the key has not changed for StableFor at now.
func (st *State) stable(cfg Config, now time.Time) bool {
	return st.LastChange.IsZero() || now.Sub(st.LastChange) >= time.Duration(cfg.StableFor)
}

func (st *State) start(at time.Time) {
	st.Flapping = true
	st.Since, st.Until = at, time.Time{}
	st.Announced, st.AnnouncedAt = Started, at
}

// stop ends the episode: it ended at until, and that is announced at at.
func (st *State) stop(until, at time.Time) {
	st.Flapping = false
	st.Until = until
	st.Announced, st.AnnouncedAt = Stopped, at
}

// stopStable ends an episode because nothing changed for StableFor, and
// clears the evidence that started it: the changes before now no longer
// count toward a new episode, and the samples start again. Nagios would
// have taken steady samples all through the quiet time, diluting the
// percentage; Alertmanager sent none, so the quiet time stands for them.
// Without this, the very next change would start a new episode on old
// evidence, and the flapping notice itself would flap.
func (st *State) stopStable(cfg Config, at time.Time) {
	until := at
	if !st.LastChange.IsZero() {
		until = st.LastChange.Add(time.Duration(cfg.StableFor))
	}
	st.stop(until, at)
	st.Reset = at
	st.Samples = st.Samples[:0]
}

func (st *State) figures(cfg Config, at time.Time, d *Decision) {
	d.Flapping = st.Flapping
	if st.Flapping {
		d.Since = st.Since
	}
	d.Changes = st.count(cfg, at, time.Time{})
	d.Window = time.Duration(cfg.Window)
	d.Percent = st.Percent()
	d.LastChange = st.LastChange
}

func stableReason(cfg Config) string {
	return fmt.Sprintf("no state change for %s (stable_for)", cfg.StableFor)
}
