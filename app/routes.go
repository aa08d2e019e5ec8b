package app

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/pipeline"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
)

// ParseLabels reads name=value arguments; a value may be quoted.
func ParseLabels(args []string) (template.KV, error) {
	kv := template.KV{}
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !model.UTF8Validation.IsValidLabelName(name) {
			return nil, fmt.Errorf("label %q must be name=value with a valid label name", a)
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		kv[name] = value
	}
	return checkLabels(kv)
}

// checkLabels checks label names as they come from the HTTP API, values
// taken as they are.
func checkLabels(m map[string]string) (template.KV, error) {
	kv := make(template.KV, len(m))
	for name, value := range m {
		if !model.UTF8Validation.IsValidLabelName(name) {
			return nil, fmt.Errorf("label name %q is not valid", name)
		}
		kv[name] = value
	}
	if len(kv) == 0 {
		return nil, fmt.Errorf("give at least one label, such as alertname=HighErrorRate")
	}
	return kv, nil
}

// CompileRoutes compiles cfg's route tree for RouteTest.
func CompileRoutes(cfg *config.Config) (*routing.Tree, error) {
	if cfg.Route == nil {
		return nil, fmt.Errorf("the configuration has no route tree")
	}
	tree, errs := routing.Compile(cfg.Routing())
	if len(errs) > 0 {
		return nil, fmt.Errorf("compile routes: %v", errs)
	}
	return tree, nil
}

// RouteTest routes labels through tree (cfg's, compiled) at the instant at:
// the answer of `alertmedic routes test` and of GET /api/v1/routes/test.
func RouteTest(cfg *config.Config, tree *routing.Tree, labels template.KV, at time.Time) (*api.RouteAnswer, error) {
	if tree == nil {
		return nil, fmt.Errorf("the configuration has no route tree")
	}
	res := tree.Match(labels, at)
	fl, err := json.Marshal(flapping.Merge(cfg.Flapping, &res.Flapping.Override))
	if err != nil {
		return nil, fmt.Errorf("encode the flapping settings: %w", err)
	}
	ans := &api.RouteAnswer{
		Labels:      labels,
		At:          at.UTC(),
		Flapping:    fl,
		Explanation: routing.Explain(res),
		Targets:     []api.RouteTarget{},
		Notified:    []string{},
	}
	notified := map[string]bool{}
	for _, r := range res.Routes {
		ans.Routes = append(ans.Routes, r.Path)
	}
	rule, within := remediation.HoldFor(cfg.Remediation, template.Alert{Labels: labels, Status: alert.StatusFiring})
	var held []string
	asks := false
	for _, t := range res.Targets {
		rt := api.RouteTarget{Receiver: t.Receiver, Integration: t.Integration, Name: t.Name, Route: t.RoutePath, Action: "notify"}
		if t.Hold && !t.Muted {
			asks = true
			if rule != "" {
				rt.Action, rt.HeldFor = "hold", rule
				held = append(held, t.Key())
			}
		}
		if t.Muted {
			rt.Action, rt.MutedBy = string(t.Action), t.MutedBy
			if !t.Until.IsZero() {
				u := t.Until.UTC()
				rt.Until = &u
			}
		} else {
			notified[t.Receiver] = true
		}
		ans.Targets = append(ans.Targets, rt)
	}
	switch {
	case len(held) > 0:
		ans.Explanation += fmt.Sprintf("hold_for_remediation: rule %q acts on this alert when it fires and verifies within %s; the pages to %s wait for its verdict: dropped if the alert resolves in time (notify_receiver is told \"auto-remediated\"), sent at once if the action does not run or does not help, and sent %s after the alert arrives at the latest\n",
			rule, model.Duration(within), strings.Join(held, ", "), model.Duration(within+pipeline.HoldGrace))
	case asks:
		ans.Explanation += "hold_for_remediation: no enabled remediation rule that verifies (and is not a dry run) acts on this alert, so nothing is held\n"
	}
	for r := range notified {
		ans.Notified = append(ans.Notified, r)
	}
	sort.Strings(ans.Notified)
	return ans, nil
}
