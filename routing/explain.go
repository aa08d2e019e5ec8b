package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Explain describes a Result for people (alertmedic routes test): the
// alert, each matched route and its receiver, and what becomes of each
// target, with the interval that mutes it and whether the notification is
// dropped or deferred, and until when.
func Explain(r Result) string {
	var b strings.Builder
	ls := make(model.LabelSet, len(r.Labels))
	for k, v := range r.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	fmt.Fprintf(&b, "alert %s at %s\n", ls, r.At.UTC().Format(time.RFC3339))
	for _, rt := range r.Routes {
		cont := ""
		if rt.Continue {
			cont = " (continue)"
		}
		fmt.Fprintf(&b, "matched %s %s%s -> receiver %q\n", rt.Path, rt.Matchers, cont, rt.Receiver)
		n := 0
		for _, t := range r.Targets {
			if t.RoutePath != rt.Path {
				continue
			}
			n++
			fmt.Fprintf(&b, "  %s (%s%s): %s\n", t.Key(), t.Integration, settings(t.Settings), fate(t))
		}
		if n == 0 {
			b.WriteString("  no targets of its own (the receiver has no integrations, or an earlier route selected them)\n")
		}
	}
	if len(r.Targets) == 0 {
		b.WriteString("nobody is notified\n")
	}
	return b.String()
}

func fate(t Routed) string {
	switch {
	case t.Muted && t.Action == Defer && t.Until.IsZero():
		return fmt.Sprintf("muted by time interval %q, deferred until it ends (not within %s)", t.MutedBy, model.Duration(UnmuteHorizon))
	case t.Muted && t.Action == Defer:
		return fmt.Sprintf("muted by time interval %q, deferred until %s", t.MutedBy, t.Until.UTC().Format(time.RFC3339))
	case t.Muted && t.Until.IsZero():
		return fmt.Sprintf("muted by time interval %q, dropped", t.MutedBy)
	case t.Muted:
		return fmt.Sprintf("muted by time interval %q, dropped (muted until %s)", t.MutedBy, t.Until.UTC().Format(time.RFC3339))
	case t.Bypassed:
		return fmt.Sprintf("notify (bypass_mute_matchers match: never muted by %s)%s", strings.Join(t.MuteTimeIntervals, ", "), holdNote(t))
	}
	return "notify" + holdNote(t)
}

func holdNote(t Routed) string {
	if !t.Hold {
		return ""
	}
	return ", hold_for_remediation"
}

// secretish are parts of setting names whose values are not printed.
var secretish = []string{"key", "token", "password", "secret", "url", "auth"}

func settings(s map[string]string) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := s[k]
		lk := strings.ToLower(k)
		for _, p := range secretish {
			if strings.Contains(lk, p) {
				v = "<secret>"
				break
			}
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}
