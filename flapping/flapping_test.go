package flapping

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

type obs struct {
	a  template.Alert
	at time.Time
}

func labels(name, instance string) template.KV {
	return template.KV{"alertname": name, "instance": instance, "severity": "critical"}
}

func firing(ls template.KV, startsAt time.Time) template.Alert {
	return template.Alert{Status: alert.StatusFiring, Labels: ls, StartsAt: startsAt, Fingerprint: alert.Fingerprint(ls)}
}

func resolved(ls template.KV, startsAt, endsAt time.Time) template.Alert {
	return template.Alert{Status: alert.StatusResolved, Labels: ls, StartsAt: startsAt, EndsAt: endsAt, Fingerprint: alert.Fingerprint(ls)}
}

// flapper is n+1 observations of one alert, step apart from start: firing,
// resolved, firing with a new startsAt, resolved, ...: n state changes, the
// k-th at start + k·step.
func flapper(ls template.KV, start time.Time, step time.Duration, n int) []obs {
	var out []obs
	var startsAt time.Time
	for k := 0; k <= n; k++ {
		at := start.Add(time.Duration(k) * step)
		if k%2 == 0 {
			startsAt = at
			out = append(out, obs{firing(ls, startsAt), at})
		} else {
			out = append(out, obs{resolved(ls, startsAt, at), at})
		}
	}
	return out
}

func config(method string) Config {
	c := DefaultConfig()
	c.Method = method
	return c
}

// seedIsFlapping is the naive rule this package replaces: the
// notifications in history (the judged one included) with the same name
// and a startsAt within the last 30 minutes, more than 5.
func seedIsFlapping(history []template.Alert, name string, now time.Time) bool {
	cutoff := now.Add(-30 * time.Minute)
	n := 0
	for _, a := range history {
		if a.Labels["alertname"] == name && a.StartsAt.After(cutoff) {
			n++
		}
	}
	return n > 5
}

// Alertmanager re-sends a steady critical alert every repeat_interval (5m).
// Thirteen identical observations over an hour are no state change at all,
// so neither method may call it flapping; the naive rule does, at the sixth
// re-send.
func TestSteadyResentAlertIsNotFlapping(t *testing.T) {
	ls := labels("HighErrorRate", "api-1:8000")
	var stream []obs
	for i := 0; i < 13; i++ {
		stream = append(stream, obs{firing(ls, t0), t0.Add(time.Duration(i) * 5 * time.Minute)})
	}

	t.Run("the naive rule calls it flapping", func(t *testing.T) {
		var history []template.Alert
		flagged := -1
		for i, o := range stream {
			history = append(history, o.a)
			if seedIsFlapping(history, "HighErrorRate", o.at) && flagged < 0 {
				flagged = i
			}
		}
		if flagged != 5 {
			t.Fatalf("seed rule first flagged observation %d, want 5 (25m in)", flagged)
		}
	})

	for _, method := range []string{MethodCount, MethodWeighted} {
		t.Run(method, func(t *testing.T) {
			cfg := config(method)
			var st State
			for i, o := range stream {
				d := Observe(cfg, &st, o.a, o.at)
				if d.Changed || d.Flapping || d.Event != None {
					t.Fatalf("observation %d (%s): %+v, want no change, not flapping", i, o.at.Sub(t0), d)
				}
				if d.Changes != 0 || d.Percent != 0 {
					t.Fatalf("observation %d: changes %d, percent %g, want 0 and 0", i, d.Changes, d.Percent)
				}
			}
			if c := Check(cfg, &st, stream[12].at.Add(time.Hour)); c.Flapping || c.Event != None {
				t.Fatalf("Check: %+v", c)
			}
		})
	}
}

// An alert changing state every 20 seconds: flapping at its sixth change
// (more than 5), one Started, flapping while it goes on, and stopped by
// stability exactly StableFor after its last change, once.
func TestFlapperStartsAtSixthChangeAndStopsWhenStable(t *testing.T) {
	const changes = 12
	ls := labels("HighErrorRate", "api-1:8000")
	stream := flapper(ls, t0, 20*time.Second, changes)
	last := stream[changes].at
	stableFor := 15 * time.Minute

	cases := []struct {
		method      string
		wantPercent float64 // at the sixth change: see TestPercent
		// stopByObserve: the stop is found by a re-send arriving at
		// last + 15m instead of by Check.
		stopByObserve bool
	}{
		{MethodCount, 2700.0 / 76, false},
		{MethodCount, 2700.0 / 76, true},
		{MethodWeighted, 2700.0 / 76, false},
		{MethodWeighted, 2700.0 / 76, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/stop by observe %v", tc.method, tc.stopByObserve), func(t *testing.T) {
			cfg := config(tc.method)
			var st State
			started := 0
			for k, o := range stream {
				d := Observe(cfg, &st, o.a, o.at)
				if d.Changed != (k > 0) {
					t.Fatalf("change %d: Changed = %v", k, d.Changed)
				}
				if want := k >= 6; d.Flapping != want {
					t.Fatalf("change %d: Flapping = %v, want %v (%+v)", k, d.Flapping, want, d)
				}
				if d.Event == Started {
					started++
					if k != 6 {
						t.Fatalf("Started at change %d, want 6", k)
					}
					if d.Changes != 6 || !d.Since.Equal(o.at) || d.Reason == "" {
						t.Fatalf("Started decision: %+v, want 6 changes since %s and a reason", d, o.at)
					}
					if math.Abs(d.Percent-tc.wantPercent) > 1e-9 {
						t.Fatalf("percent at start = %v, want %v", d.Percent, tc.wantPercent)
					}
				} else if d.Event != None {
					t.Fatalf("change %d: event %q", k, d.Event)
				}
			}
			if started != 1 {
				t.Fatalf("%d Started events, want 1", started)
			}
			episodeStart := stream[6].at

			// A re-send of the last observation is no change and does
			// not end the episode.
			if d := Observe(cfg, &st, stream[changes].a, last.Add(time.Minute)); d.Changed || !d.Flapping || d.Event != None {
				t.Fatalf("re-send while flapping: %+v", d)
			}
			if d := Check(cfg, &st, last.Add(stableFor-time.Second)); !d.Flapping || d.Event != None || !d.Since.Equal(episodeStart) {
				t.Fatalf("Check at last change + 15m - 1s: %+v, want still flapping since %s", d, episodeStart)
			}

			var stop Decision
			if tc.stopByObserve {
				stop = Observe(cfg, &st, stream[changes].a, last.Add(stableFor))
			} else {
				stop = Check(cfg, &st, last.Add(stableFor))
			}
			if stop.Flapping || stop.Event != Stopped || !stop.Since.Equal(episodeStart) || !strings.Contains(stop.Reason, "15m") {
				t.Fatalf("at last change + 15m: %+v, want Stopped, episode since %s, reason naming 15m", stop, episodeStart)
			}
			if st.Flapping || st.Announced != Stopped || !st.Until.Equal(last.Add(stableFor)) {
				t.Fatalf("state after stop: flapping %v, announced %q, until %s", st.Flapping, st.Announced, st.Until)
			}
			if d := Check(cfg, &st, last.Add(stableFor+time.Second)); d.Flapping || d.Event != None {
				t.Fatalf("second Check: %+v, want None", d)
			}

			// The old changes are still in the window, but they ended
			// an episode: one more change does not start another.
			next := last.Add(stableFor + time.Minute)
			d := Observe(cfg, &st, firing(ls, next), next)
			if !d.Changed || d.Flapping || d.Event != None {
				t.Fatalf("first change after the episode: %+v, want a change, not flapping", d)
			}
			if tc.method == MethodCount && d.Changes != changes+1 {
				t.Fatalf("Changes = %d, want %d: the figure still counts the whole window", d.Changes, changes+1)
			}
			// Six fresh changes make a second episode: one more Started.
			// (The first of these is a re-fire: a new startsAt.)
			again := flapper(ls, next.Add(20*time.Second), 20*time.Second, 5)
			starts := 0
			for _, o := range again {
				if d := Observe(cfg, &st, o.a, o.at); d.Event == Started {
					starts++
				}
			}
			if starts != 1 || !st.Flapping {
				t.Fatalf("second episode: %d Started, flapping %v; want 1 and true", starts, st.Flapping)
			}
		})
	}
}

// Five changes are not flapping with count defaults; the sixth is. Changes
// that leave the window no longer count.
func TestCountWindow(t *testing.T) {
	ls := labels("HighErrorRate", "api-1:8000")
	cfg := DefaultConfig()

	t.Run("five changes are not enough", func(t *testing.T) {
		var st State
		for _, o := range flapper(ls, t0, time.Minute, 5) {
			if d := Observe(cfg, &st, o.a, o.at); d.Flapping {
				t.Fatalf("flapping at %s with %d changes", o.at.Sub(t0), d.Changes)
			}
		}
	})
	t.Run("six changes spread over more than the window are not flapping", func(t *testing.T) {
		var st State
		// 8 minutes apart: at the sixth change (48m) the window is
		// (18m, 48m], holding the changes at 24, 32, 40 and 48m.
		for i, o := range flapper(ls, t0, 8*time.Minute, 6) {
			d := Observe(cfg, &st, o.a, o.at)
			if d.Flapping {
				t.Fatalf("observation %d flapping with %d changes in window", i, d.Changes)
			}
			if i == 6 && d.Changes != 4 {
				t.Fatalf("changes in window at 48m = %d, want 4", d.Changes)
			}
		}
		if len(st.Changes) != 4 {
			t.Fatalf("kept %d change times, want the 4 within the window", len(st.Changes))
		}
	})
	t.Run("Check trims changes that left the window", func(t *testing.T) {
		var st State
		for _, o := range flapper(ls, t0, time.Minute, 3) {
			Observe(cfg, &st, o.a, o.at)
		}
		if d := Check(cfg, &st, t0.Add(32*time.Minute+30*time.Second)); d.Changes != 1 || len(st.Changes) != 1 {
			t.Fatalf("after Check at 32m30s: %d changes (%d kept), want 1 (the one at 3m)", d.Changes, len(st.Changes))
		}
		if d := Check(cfg, &st, t0.Add(time.Hour)); d.Changes != 0 || st.Changes != nil {
			t.Fatalf("after Check at 1h: %d changes, kept %v, want none", d.Changes, st.Changes)
		}
	})
}

// Each alert flaps on its own by default, so a noisy instance no longer
// marks its quiet siblings; with by: [alertname] their changes add up.
func TestInstancesFlapIndependentlyUnlessGrouped(t *testing.T) {
	a := labels("HighErrorRate", "api-1:8000")
	b := labels("HighErrorRate", "api-2:8000")

	// Each instance changes 3 times, interleaved 10s apart: 6 together.
	interleaved := func() []obs {
		sa := flapper(a, t0, 20*time.Second, 3)
		sb := flapper(b, t0.Add(10*time.Second), 20*time.Second, 3)
		var out []obs
		for i := range sa {
			out = append(out, sa[i], sb[i])
		}
		return out
	}
	// Instance a flaps (6 changes); b is steady, re-sent.
	noisy := func() []obs {
		sa := flapper(a, t0, 20*time.Second, 6)
		var out []obs
		for _, o := range sa {
			out = append(out, o, obs{firing(b, t0), o.at.Add(time.Second)})
		}
		return out
	}
	byName := DefaultConfig()
	byName.By = []string{"alertname"}

	cases := []struct {
		name     string
		cfg      Config
		stream   []obs
		wantKeys int
		// wantFlapping is the final verdict per instance.
		wantA, wantB bool
	}{
		{"per alert: 3 + 3 changes, neither flaps", DefaultConfig(), interleaved(), 2, false, false},
		{"by alertname: 3 + 3 changes add up to 6", byName, interleaved(), 1, true, true},
		{"per alert: the noisy one flaps alone", DefaultConfig(), noisy(), 2, true, false},
		{"by alertname: the noisy one marks both", byName, noisy(), 1, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			states := map[string]*State{} // what the lead's store holds
			started := 0
			for _, o := range tc.stream {
				k := Key(tc.cfg, o.a.Fingerprint, o.a.Labels)
				if states[k] == nil {
					states[k] = &State{}
				}
				if d := Observe(tc.cfg, states[k], o.a, o.at); d.Event == Started {
					started++
				}
			}
			if len(states) != tc.wantKeys {
				t.Fatalf("%d keys, want %d", len(states), tc.wantKeys)
			}
			gotA := states[Key(tc.cfg, alert.Fingerprint(a), a)].Flapping
			gotB := states[Key(tc.cfg, alert.Fingerprint(b), b)].Flapping
			if gotA != tc.wantA || gotB != tc.wantB {
				t.Fatalf("flapping a=%v b=%v, want a=%v b=%v", gotA, gotB, tc.wantA, tc.wantB)
			}
			wantStarted := 0
			if tc.wantA {
				wantStarted = 1 // one key flapping in every case that flaps
			}
			if started != wantStarted {
				t.Fatalf("%d Started events, want %d", started, wantStarted)
			}
		})
	}
}

func TestChangeDetection(t *testing.T) {
	ls := labels("HighErrorRate", "api-1:8000")
	s0 := t0
	s1 := t0.Add(10 * time.Minute)
	at := t0.Add(20 * time.Minute)
	noFP := func(a template.Alert) template.Alert { a.Fingerprint = ""; return a }

	cases := []struct {
		name    string
		before  []template.Alert
		next    template.Alert
		want    bool
		wantAbt Seen // the alert's last seen observation afterwards (SeenAt ignored)
	}{
		{"first observation", nil, firing(ls, s0), false, Seen{Status: "firing", StartsAt: s0}},
		{"identical re-send", []template.Alert{firing(ls, s0)}, firing(ls, s0), false, Seen{Status: "firing", StartsAt: s0}},
		{"firing to resolved", []template.Alert{firing(ls, s0)}, resolved(ls, s0, s1), true, Seen{Status: "resolved", StartsAt: s0}},
		{"resolved re-sent with another endsAt", []template.Alert{resolved(ls, s0, s1)}, resolved(ls, s0, at), false, Seen{Status: "resolved", StartsAt: s0}},
		{"resolved to firing, new startsAt", []template.Alert{firing(ls, s0), resolved(ls, s0, s1)}, firing(ls, s1), true, Seen{Status: "firing", StartsAt: s1}},
		{"resolved to firing, same startsAt", []template.Alert{resolved(ls, s0, s1)}, firing(ls, s0), true, Seen{Status: "firing", StartsAt: s0}},
		{"re-fire with a new startsAt, resolve missed", []template.Alert{firing(ls, s0)}, firing(ls, s1), true, Seen{Status: "firing", StartsAt: s1}},
		{"resolve of an episode never seen firing", []template.Alert{resolved(ls, s0, s1)}, resolved(ls, s1, at), true, Seen{Status: "resolved", StartsAt: s1}},
		{"late copy of an earlier episode", []template.Alert{firing(ls, s0), resolved(ls, s0, s1), firing(ls, s1)}, firing(ls, s0), false, Seen{Status: "firing", StartsAt: s1}},
		{"fingerprint computed from labels", []template.Alert{noFP(firing(ls, s0))}, noFP(resolved(ls, s0, s1)), true, Seen{Status: "resolved", StartsAt: s0}},
		{"another alert is a first observation", []template.Alert{firing(labels("HighErrorRate", "api-2:8000"), s0)}, resolved(ls, s0, s1), false, Seen{Status: "resolved", StartsAt: s0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.By = []string{"alertname"} // one State for every alert here
			var st State
			for i, a := range tc.before {
				Observe(cfg, &st, a, t0.Add(time.Duration(i)*time.Second))
			}
			d := Observe(cfg, &st, tc.next, at)
			if d.Changed != tc.want {
				t.Fatalf("Changed = %v, want %v", d.Changed, tc.want)
			}
			got := st.Alerts[alert.Fingerprint(ls)]
			if got.Status != tc.wantAbt.Status || !got.StartsAt.Equal(tc.wantAbt.StartsAt) || !got.SeenAt.Equal(at) {
				t.Fatalf("last seen = %+v, want %+v seen at %s", got, tc.wantAbt, at)
			}
			if tc.want && !st.LastChange.Equal(at) {
				t.Fatalf("LastChange = %s, want %s", st.LastChange, at)
			}
		})
	}
}

// Percent by hand. weight(x) = 0.75 + (x-1)·0.5/19 for transition x = 1
// (oldest) … 20 (newest), i.e. (55 + 2x)/76; percent = 5 · Σweight.
func TestPercent(t *testing.T) {
	bools := func(s string) []bool { // oldest first; 'x' is a change
		out := make([]bool, len(s))
		for i, c := range s {
			out[i] = c == 'x'
		}
		return out
	}
	cases := []struct {
		name    string
		samples string
		want    float64
	}{
		{"nothing", "", 0},
		{"steady", ".....................", 0},
		// x=20: 1.25 · 5 = 6.25
		{"only the newest changed", "x", 6.25},
		{"only the newest, full history", "....................x", 6.25},
		// every transition: Σ weight = 20 · 1.0 (mean of 0.75 and 1.25)
		{"all 20 transitions", "xxxxxxxxxxxxxxxxxxxxx", 100},
		// the oldest kept sample's flag is a transition from a state no
		// longer kept
		{"only the oldest kept sample's flag", "x....................", 0},
		// x=1: 0.75 · 5 = 3.75
		{"only the oldest transition", ".x...................", 3.75},
		// x = 20, 19, 10: 1.25 + 1.2236842 + 0.9868421 = 3.4605263;
		// · 5 = 17.3026316 (= 1315/76)
		{"newest two and the middle", "..........x........xx", 1315.0 / 76},
		// x = 20, 18, …, 2 (10 changes): 10·0.75 + (19+17+…+1)·0.5/19
		// = 7.5 + 100/38 = 10.1315789; · 5 = 50.6578947 (= 3850/76)
		{"every other transition", "x.x.x.x.x.x.x.x.x.x.x", 3850.0 / 76},
		// a fresh alert: first observation, then 5 changes: x = 16..20,
		// 5·0.75 + (15+…+19)·0.5/19 = 3.75 + 2.2368421 = 5.9868421;
		// · 5 = 29.934 (= 2275/76), just below the default high of 30
		{"fresh alert, 5 changes", ".xxxxx", 2275.0 / 76},
		// ... and 6 changes: x = 15..20: 4.5 + 99/38 = 7.1052632;
		// · 5 = 35.526 (= 2700/76)
		{"fresh alert, 6 changes", ".xxxxxx", 2700.0 / 76},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Samples: bools(tc.samples)}
			if got := st.Percent(); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("Percent() = %.10f, want %.10f", got, tc.want)
			}
		})
	}
	t.Run("thresholds are exact", func(t *testing.T) {
		// x = 8..13 changed: 6·55 + 2·63 = 456; 5·456/76 = 30 exactly.
		st := State{Samples: bools("........xxxxxx.......")}
		if got := st.Percent(); got != 30 {
			t.Fatalf("Percent() = %v, want exactly 30", got)
		}
	})
}

// Weighted: a fresh alert with 6 changes in a row starts (35.5% ≥ 30);
// re-sends (steady samples) push its changes back in the history, the
// percentage falls through the band between low and high without stopping
// it (hysteresis), and it stops once at or below low.
func TestWeightedHysteresis(t *testing.T) {
	cfg := config(MethodWeighted)
	ls := labels("HighErrorRate", "api-1:8000")
	stream := flapper(ls, t0, 10*time.Second, 6)
	var st State
	for k, o := range stream {
		d := Observe(cfg, &st, o.a, o.at)
		if want := k == 6; d.Flapping != want || (d.Event == Started) != want {
			t.Fatalf("change %d: %+v", k, d)
		}
	}
	resend := stream[6].a
	at := stream[6].at

	// After m re-sends the 6 changes sit at x = 15-m … 20-m, Σ(55+2x) =
	// 540 - 12m, percent = (2700 - 60m)/76 while m ≤ 14. At m = 15 the
	// first change leaves the history: x = 1..5, 5·55 + 2·15 = 305, 1525/76
	// = 20.07 (still above low). At m = 16, x = 1..4: 220 + 20 = 240,
	// 1200/76 = 15.79 ≤ 20: stopped.
	want := func(m int) (float64, bool, Event) {
		switch {
		case m <= 14:
			return (2700 - 60*float64(m)) / 76, true, None
		case m == 15:
			return 1525.0 / 76, true, None
		case m == 16:
			return 1200.0 / 76, false, Stopped
		default: // x = 1..3 at m = 17, then fewer
			return 0, false, None
		}
	}
	stopped := 0
	for m := 1; m <= 20; m++ {
		at = at.Add(10 * time.Second)
		d := Observe(cfg, &st, resend, at)
		wantPct, wantFlap, wantEvent := want(m)
		if d.Changed || d.Flapping != wantFlap || d.Event != wantEvent {
			t.Fatalf("re-send %d: %+v, want flapping %v, event %q", m, d, wantFlap, wantEvent)
		}
		if m <= 16 && math.Abs(d.Percent-wantPct) > 1e-9 {
			t.Fatalf("re-send %d: percent %.6f, want %.6f", m, d.Percent, wantPct)
		}
		if m == 8 && !(d.Percent > cfg.Low && d.Percent < cfg.High) {
			t.Fatalf("re-send 8: percent %.2f, want it between low and high", d.Percent)
		}
		if d.Event == Stopped {
			stopped++
			if !strings.Contains(d.Reason, "low") || !d.Since.Equal(stream[6].at) {
				t.Fatalf("Stopped decision: %+v", d)
			}
		}
	}
	if stopped != 1 {
		t.Fatalf("%d Stopped events, want 1", stopped)
	}

	t.Run("the band does not start a fresh alert", func(t *testing.T) {
		// 29.2% (5 changes, x = 15..19 then a steady re-send) is between
		// low and high: a flapping alert stays flapping there, a quiet one
		// does not start.
		var st State
		s := flapper(ls, t0, 10*time.Second, 5)
		s = append(s, obs{s[5].a, s[5].at.Add(10 * time.Second)})
		var d Decision
		for _, o := range s {
			d = Observe(cfg, &st, o.a, o.at)
		}
		if d.Flapping || d.Percent <= cfg.Low || d.Percent >= cfg.High {
			t.Fatalf("%+v, want not flapping at a percent between low and high", d)
		}
	})
}

// However long the stream and however many alerts share a key, a State
// stays within its bounds and its JSON within a fixed size.
func TestStateBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.By = []string{"alertname"}
	var st State
	key := ""
	for j := 0; j < 10000; j++ {
		ls := labels("HighErrorRate", fmt.Sprintf("api-%d:8000", j/2))
		at := t0.Add(time.Duration(j) * 100 * time.Millisecond)
		a := firing(ls, t0)
		if j%2 == 1 {
			a = resolved(ls, t0, at)
		}
		k := Key(cfg, a.Fingerprint, a.Labels)
		if key != "" && k != key {
			t.Fatalf("observation %d went to key %q, not %q", j, k, key)
		}
		key = k
		Observe(cfg, &st, a, at)
		if len(st.Alerts) > MaxAlerts || len(st.Changes) > MaxChanges || len(st.Samples) > HistorySamples {
			t.Fatalf("observation %d: %d alerts, %d changes, %d samples", j, len(st.Alerts), len(st.Changes), len(st.Samples))
		}
	}
	if len(st.Alerts) != MaxAlerts || len(st.Changes) != MaxChanges || len(st.Samples) != HistorySamples {
		t.Fatalf("%d alerts, %d changes, %d samples; want each at its bound (%d, %d, %d)",
			len(st.Alerts), len(st.Changes), len(st.Samples), MaxAlerts, MaxChanges, HistorySamples)
	}
	if !st.Flapping {
		t.Fatal("5000 changes in 17 minutes should be flapping")
	}
	// The most recently seen alerts are the ones kept.
	if _, ok := st.Alerts[alert.Fingerprint(labels("HighErrorRate", "api-4999:8000"))]; !ok {
		t.Error("the newest alert was evicted")
	}
	if _, ok := st.Alerts[alert.Fingerprint(labels("HighErrorRate", "api-0:8000"))]; ok {
		t.Error("the oldest alert was kept")
	}
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 256<<10 {
		t.Fatalf("state is %d bytes of JSON, want at most 256 KiB", len(b))
	}
}

// The lead stores State as JSON between calls: a stream cut anywhere and
// resumed from a round-tripped State decides exactly as an unbroken one.
func TestStateSurvivesJSON(t *testing.T) {
	ls := labels("HighErrorRate", "api-1:8000")
	stream := flapper(ls, t0, 20*time.Second, 10)
	for _, method := range []string{MethodCount, MethodWeighted} {
		cfg := config(method)
		var whole State
		var want []Decision
		for _, o := range stream {
			want = append(want, Observe(cfg, &whole, o.a, o.at))
		}
		want = append(want, Check(cfg, &whole, stream[10].at.Add(15*time.Minute)))

		for cut := 0; cut <= len(stream); cut++ {
			t.Run(fmt.Sprintf("%s/cut at %d", method, cut), func(t *testing.T) {
				var st State
				var got []Decision
				roundTrip := func() {
					b, err := json.Marshal(&st)
					if err != nil {
						t.Fatal(err)
					}
					st = State{}
					if err := json.Unmarshal(b, &st); err != nil {
						t.Fatal(err)
					}
				}
				for i, o := range stream {
					if i == cut {
						roundTrip()
					}
					got = append(got, Observe(cfg, &st, o.a, o.at))
				}
				if cut == len(stream) {
					roundTrip()
				}
				got = append(got, Check(cfg, &st, stream[10].at.Add(15*time.Minute)))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decisions differ after a JSON round trip at %d:\n got %+v\nwant %+v", cut, got, want)
				}
			})
		}
	}

	t.Run("shape", func(t *testing.T) {
		cfg := DefaultConfig()
		var st State
		for _, o := range stream[:7] {
			Observe(cfg, &st, o.a, o.at)
		}
		b, _ := json.Marshal(&st)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"alerts", "changes", "samples", "flapping", "since", "lastChange", "lastSeen", "announced", "announcedAt"} {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON lacks %q: %s", k, b)
			}
		}
		if m["announced"] != "started" {
			t.Errorf("announced = %v, want started", m["announced"])
		}
	})
}

func TestIdle(t *testing.T) {
	cfg := DefaultConfig()
	ls := labels("HighErrorRate", "api-1:8000")
	var st State
	if !st.Idle(cfg, t0) {
		t.Fatal("a zero State should be idle")
	}
	for _, o := range flapper(ls, t0, 20*time.Second, 6) {
		Observe(cfg, &st, o.a, o.at)
	}
	last := t0.Add(120 * time.Second)
	if !st.Flapping || st.Idle(cfg, last.Add(2*time.Hour)) {
		t.Fatal("a flapping State is never idle")
	}
	// The checker runs late: the episode still ended 15m after the last
	// change.
	d := Check(cfg, &st, last.Add(20*time.Minute))
	if d.Event != Stopped || !d.Until.Equal(last.Add(15*time.Minute)) || !st.Until.Equal(d.Until) || !st.AnnouncedAt.Equal(last.Add(20*time.Minute)) {
		t.Fatalf("late Check: %+v; state until %s, announced at %s", d, st.Until, st.AnnouncedAt)
	}
	if st.Idle(cfg, last.Add(30*time.Minute-time.Second)) {
		t.Fatal("idle before Window since the last observation")
	}
	if !st.Idle(cfg, last.Add(30*time.Minute)) {
		t.Fatal("not idle Window after the last observation")
	}
}

// Edge cases of the episode boundaries.
func TestEpisodeBoundaries(t *testing.T) {
	ls := labels("HighErrorRate", "api-1:8000")

	t.Run("the verdict turns at most once per observation", func(t *testing.T) {
		// With high at 5%, a single change (6.25%) starts an episode. The
		// first change after a quiet StableFor ends the old episode; the
		// same observation must not also start a new one (one Event per
		// Decision), the next change does.
		cfg := config(MethodWeighted)
		cfg.High, cfg.Low = 5, 1
		var st State
		stream := flapper(ls, t0, 20*time.Second, 2)
		for _, o := range stream {
			Observe(cfg, &st, o.a, o.at)
		}
		if !st.Flapping {
			t.Fatal("not flapping after two changes at high 5%")
		}
		quiet := stream[2].at.Add(15 * time.Minute)
		d := Observe(cfg, &st, resolved(ls, stream[2].at, quiet), quiet)
		if !d.Changed || d.Event != Stopped || d.Flapping {
			t.Fatalf("change after 15m of quiet: %+v, want Stopped and not flapping", d)
		}
		next := quiet.Add(20 * time.Second)
		if d := Observe(cfg, &st, firing(ls, next), next); d.Event != Started || !d.Flapping {
			t.Fatalf("the next change: %+v, want Started", d)
		}
	})

	t.Run("no start on evidence older than stable_for", func(t *testing.T) {
		// Six changes seen under a weighted config that never starts
		// (high 100 needs 20 changes in a row); a reload switches to
		// count, and a re-send 16 minutes later finds 6 changes in the
		// window, but the alert has been stable for longer than
		// StableFor: starting would only announce a stop next minute.
		weighted := config(MethodWeighted)
		weighted.High, weighted.Low = 100, 20
		var st State
		stream := flapper(ls, t0, 20*time.Second, 6)
		for _, o := range stream {
			if d := Observe(weighted, &st, o.a, o.at); d.Flapping {
				t.Fatalf("flapping at high 100: %+v", d)
			}
		}
		later := stream[6].at.Add(16 * time.Minute)
		d := Observe(DefaultConfig(), &st, stream[6].a, later)
		if d.Changes != 6 {
			t.Fatalf("Changes = %d, want the 6 still in the window", d.Changes)
		}
		if d.Flapping || d.Event != None {
			t.Fatalf("%+v, want no episode on stale evidence", d)
		}
	})
}
