package remediation

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A label value is data: it cannot move a request to another host, port or
// scheme, climb out of the path it was put in, or add a key to a JSON body.
// These are the attacks that worked before, each against the rig.

// mapOpen is one map store shared by a test's replicas.
func mapOpen(*testing.T) func() Store {
	s := newMapStore()
	return func() Store { return s }
}

// yamlConfig decodes rules written as a user writes them, strictly, and
// points the block at the rig's fakes.
func (r *rig) yamlConfig(rules string) Config {
	r.t.Helper()
	c := decode(r.t, "rules:\n"+rules)
	c.OrchestratorURL = r.orch.URL
	c.APIBaseURL = r.api.URL
	c.BearerToken = token
	if errs := c.Load(""); len(errs) > 0 {
		r.t.Fatalf("config: %v", errs)
	}
	return c
}

func hookRule(u string) string {
	return fmt.Sprintf("  - {name: hook, action: http, params: {url: %q}}\n", u)
}

func TestHTTPLabelCannotChangeTheTarget(t *testing.T) {
	r := newRig(t, mapOpen)
	hook, _ := url.Parse(r.hook.URL)
	// The configured host does not resolve; the attack named a reachable one.
	c := r.yamlConfig(hookRule("http://svc-{{ .Labels.service }}.internal:8080/restart"))
	e := r.engine(c, "a")
	for _, v := range []string{
		"x@" + hook.Host + "/ssrf-target?",
		"x@" + hook.Host + "/ssrf-target#",
		hook.Host + "/ssrf-target?",
		"x:1@" + hook.Host,
		"x.evil.example",
		"x/",
		"",
	} {
		t.Run(v, func(t *testing.T) {
			r.clk.Add(time.Hour) // past the cooldown of the last case
			a := firing(r.clk.Now(), "alertname", "Down", "service", v)
			rec := only(t, e.Handle(t.Context(), a, false))
			wantResult(t, rec, ResultFailed, ReasonRefused)
			if !strings.HasPrefix(rec.Detail, "params.url: ") {
				t.Errorf("detail %q", rec.Detail)
			}
			checkReqs(t, r.takeReqs(), nil)
			if audit, err := e.Audit(t.Context(), 1); err != nil || len(audit) != 1 || audit[0].Reason != ReasonRefused {
				t.Errorf("audit %+v %v", audit, err)
			}
		})
	}
}

func TestHTTPLabelIsOnePathSegment(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		refused     bool
	}{
		{name: "climbs with slashes", value: "a/../../admin?x=1#"},
		{name: "encoded already", value: "a%2F..%2Fadmin"},
		{name: "plain", value: "company-extraction-api"},
		{name: "dot dot", value: "..", refused: true},
		{name: "dot", value: ".", refused: true},
		{name: "empty", value: "", refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, mapOpen)
			e := r.engine(r.yamlConfig(hookRule(r.hook.URL+"/hooks/{{ .Labels.name }}/restart?from={{ .Labels.from }}")), "a")
			a := firing(t0, "alertname", "Down", "name", tc.value, "from", "a&admin=1#x")
			rec := only(t, e.Handle(t.Context(), a, false))
			if tc.refused {
				wantResult(t, rec, ResultFailed, ReasonRefused)
				checkReqs(t, r.takeReqs(), nil)
				return
			}
			wantResult(t, rec, ResultRan, "")
			reqs := r.takeReqs()
			checkReqs(t, reqs, []want{{srv: "hook", method: "POST", path: "/hooks/" + url.PathEscape(tc.value) + "/restart"}})
			if q, _ := url.ParseQuery(reqs[0].Query); len(q) != 1 || q.Get("from") != "a&admin=1#x" {
				t.Errorf("query %q", reqs[0].Query)
			}
		})
	}
}

// The circuit breaker and the step read put one label into a path: "." and
// ".." would name the parent (the token went to /internal/).
func TestPathLabelDotSegments(t *testing.T) {
	for _, v := range []string{"..", "."} {
		t.Run("circuit "+v, func(t *testing.T) {
			r := newRig(t, mapOpen)
			e := r.engine(r.config(Rule{Name: "break", Action: ActionCircuitBreak, OnResolve: &ActionConfig{Action: ActionCircuitClose}}), "a")
			a := firing(t0, "alertname", "ExternalAPIFailure", "api", v)
			rec := only(t, e.Handle(t.Context(), a, false))
			wantResult(t, rec, ResultFailed, ReasonRefused)
			if want := fmt.Sprintf("params.api rendered to %q, which a server reads as a step in the path, not a name", v); rec.Detail != want {
				t.Errorf("detail %q, want %q", rec.Detail, want)
			}
			wantResult(t, only(t, e.Handle(t.Context(), resolvedAt(a, t0), false)), ResultFailed, ReasonRefused)
			checkReqs(t, r.takeReqs(), nil)
		})
		t.Run("step "+v, func(t *testing.T) {
			r := newRig(t, mapOpen)
			rule := scaleRule()
			rule.Params = map[string]string{"service": "{{ .Labels.service }}", "step": "1"}
			e := r.engine(r.config(rule), "a")
			rec := only(t, e.Handle(t.Context(), firing(t0, "alertname", "ExtractionServiceOverloaded", "service", v), false))
			wantResult(t, rec, ResultFailed, ReasonRefused)
			checkReqs(t, r.takeReqs(), nil)
		})
	}
}

// A body given as YAML is built as JSON: each templated string is one JSON
// string, whatever the label holds.
func TestHTTPBodyLabelIsOneJSONString(t *testing.T) {
	r := newRig(t, mapOpen)
	e := r.engine(r.yamlConfig(fmt.Sprintf(`  - name: hook
    action: http
    params: {url: %q}
    body:
      service: '{{ .Labels.service }}'
      replicas: 2
      tags: ['{{ .Labels.alertname }}', fixed]
      nested: {summary: '{{ .Annotations.summary }}', on: true, none: null}
`, r.hook.URL+"/scale")), "a")
	evil := `x", "replicas": 1000, "y": "`
	rec := only(t, e.Handle(t.Context(), firing(t0, "alertname", "Down", "service", evil), false))
	wantResult(t, rec, ResultRan, "")
	reqs := r.takeReqs()
	if len(reqs) != 1 {
		t.Fatalf("requests %+v", reqs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(reqs[0].Body), &got); err != nil {
		t.Fatalf("body %q: %v", reqs[0].Body, err)
	}
	want := map[string]any{
		"service":  evil,
		"replicas": float64(2),
		"tags":     []any{"Down", "fixed"},
		"nested":   map[string]any{"summary": "load is high", "on": true, "none": nil},
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("body\n got %s\nwant %s", g, w)
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// A string body keeps working when every value it inserts goes through
// json; one that pastes a value into JSON text is refused at load.
func TestHTTPStringBody(t *testing.T) {
	r := newRig(t, mapOpen)
	e := r.engine(r.yamlConfig(fmt.Sprintf("  - {name: hook, action: http, params: {url: %q, body: %q}}\n",
		r.hook.URL+"/x", `{"service": {{ json .Labels.service }}, "replicas": 2{{ if eq .Labels.severity "critical" }}, "urgent": true{{ end }}}`)), "a")
	evil := `x", "replicas": 1000, "y": "`
	wantResult(t, only(t, e.Handle(t.Context(), firing(t0, "alertname", "Down", "service", evil, "severity", "critical"), false)), ResultRan, "")
	reqs := r.takeReqs()
	var got struct {
		Service  string `json:"service"`
		Replicas int    `json:"replicas"`
		Urgent   bool   `json:"urgent"`
	}
	if len(reqs) != 1 || json.Unmarshal([]byte(reqs[0].Body), &got) != nil || got.Service != evil || got.Replicas != 2 || !got.Urgent {
		t.Fatalf("requests %+v", reqs)
	}
}

// What cannot be made safe is refused when the configuration loads, at its
// key, with the fix.
func TestHTTPLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, rule, want string }{
		{
			name: "templated scheme",
			rule: `{name: a, action: http, params: {url: "{{ .Labels.scheme }}://h/x"}}`,
			want: "rules[0].params.url: the scheme must be written out, not templated",
		},
		{
			name: "whole URL templated",
			rule: `{name: a, action: http, params: {url: "{{ .Annotations.runbook_url }}"}}`,
			want: "rules[0].params.url: the scheme must be written out, not templated",
		},
		{
			name: "templated port",
			rule: `{name: a, action: http, params: {url: "http://h:{{ .Labels.port }}/x"}}`,
			want: "rules[0].params.url: the port must be written out, not templated",
		},
		{
			name: "templated userinfo",
			rule: `{name: a, action: http, params: {url: "http://{{ .Labels.user }}@h/x"}}`,
			want: "rules[0].params.url: the userinfo must be written out, not templated",
		},
		{
			name: "templated fragment",
			rule: `{name: a, action: http, params: {url: "http://h/x#{{ .Labels.f }}"}}`,
			want: "rules[0].params.url: the fragment must be written out, not templated",
		},
		{
			name: "odd host around a template",
			rule: `{name: a, action: http, params: {url: "http://svc_{{ .Labels.x }}/x"}}`,
			want: `rules[0].params.url: a templated host may hold only letters, digits, '-' and '.' around its templates, got "svc_"`,
		},
		{
			name: "structure inside if",
			rule: `{name: a, action: http, params: {url: "http://h/{{ if .Labels.x }}a/b{{ end }}"}}`,
			want: `rules[0].params.url: text inside {{ if }}, {{ range }} or {{ with }} must not hold any of "/?#": write the URL's structure outside them`,
		},
		{
			name: "template call",
			rule: `{name: a, action: http, params: {url: "http://h/{{ template \"x\" }}"}}`,
			want: "rules[0].params.url: {{ template }} cannot be used: its output would not be escaped",
		},
		{
			name: "dot segment written out",
			rule: `{name: a, action: http, params: {url: "http://h/a/../admin"}}`,
			want: `rules[0].params.url: a path segment is "..", which a server reads as a step in the path, not a name`,
		},
		{
			name: "label pasted into a string body",
			rule: `{name: a, action: http, params: {url: "http://h/", body: '{"service": "{{ .Labels.service }}", "replicas": 2}'}}`,
			want: "rules[0].params.body: {{.Labels.service}} inserts its value into the JSON as it is, so a label could add keys: " +
				"write {{ json .Labels.service }} (it adds the quotes), or give the body as YAML in the rule's body",
		},
		{
			name: "string body not JSON",
			rule: `{name: a, action: http, params: {url: "http://h/", body: 'restart please'}}`,
			want: "rules[0].params.body: not valid JSON",
		},
		{
			name: "both bodies",
			rule: `{name: a, action: http, params: {url: "http://h/", body: '{}'}, body: {a: b}}`,
			want: "rules[0].body: set body or params.body, not both",
		},
		{
			name: "body of a string",
			rule: `{name: a, action: http, params: {url: "http://h/"}, body: '{"a": 1}'}`,
			want: "rules[0].body: must be a mapping or a list (it is sent as JSON); a body written as JSON text goes in params.body",
		},
		{
			name: "templated body key",
			rule: `{name: a, action: http, params: {url: "http://h/"}, body: {"{{ .Labels.k }}": v}}`,
			want: "rules[0].body.{{ .Labels.k }}: a key is not templated",
		},
		{
			name: "bad body template",
			rule: `{name: a, action: http, params: {url: "http://h/"}, body: {list: [x, "{{ .Labels.x"]}}`,
			want: "rules[0].body.list[1]: bad template: template: body.list[1]:1: unclosed action",
		},
		{
			name: "unquoted date and a number as a key",
			rule: `{name: a, action: http, params: {url: "http://h/"}, body: {at: 2026-03-02, m: {1: x}}}`,
			want: "rules[0].body.at: a date must be quoted to be sent as it is written\nrules[0].body.m: a key must be a string, got 1",
		},
		{
			name: "body on another action",
			rule: `{name: a, action: cache_warm, body: {a: b}}`,
			want: "rules[0].body: only used by http",
		},
		{
			name: "body on resolve",
			rule: `{name: a, action: http, params: {url: "http://h/"}, on_resolve: {action: circuit_close, body: [1]}}`,
			want: "rules[0].on_resolve.body: only used by http",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := decode(t, "api_base_url: http://api\nrules:\n  - "+tc.rule+"\n")
			errs := c.Load("")
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// What each part of a URL does with a value, built without a request.
func TestHTTPURLParts(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		labels    []string
		want      string // "" when refused
	}{
		{"path and query", "http://h:8080/a/{{ .Labels.x }}?q={{ .Labels.x }}&r=1", []string{"x", "a b/c?d#e&f=g"},
			"http://h:8080/a/a%20b%2Fc%3Fd%23e&f=g?q=a+b%2Fc%3Fd%23e%26f%3Dg&r=1"},
		{"two values in one segment", "http://h/{{ .Labels.x }}{{ .Labels.y }}", []string{"x", ".", "y", "."}, ""},
		{"a value beside text", "http://h/x-{{ .Labels.x }}", []string{"x", ""}, "http://h/x-"},
		{"urlquery is replaced", "http://h/{{ .Labels.x | urlquery }}/{{ urlquery .Labels.x }}", []string{"x", "a b:c"}, "http://h/a%20b:c/a%20b:c"},
		{"trailing newline, upper-case scheme", "HTTP://h/{{ .Labels.x }}\n", []string{"x", "y"}, "HTTP://h/y"},
		{"IPv6 and userinfo written out", "https://u:p@[::1]:8443/{{ .Labels.x }}", []string{"x", "y"}, "https://u:p@[::1]:8443/y"},
		{"templated host", "http://{{ .Labels.svc }}.ns.svc:80/", []string{"svc", "api-1"}, "http://api-1.ns.svc:80/"},
		{"templated host, empty", "http://{{ .Labels.svc }}.ns.svc:80/", []string{"svc", ""}, ""},
		{"templated host, a domain more", "http://{{ .Labels.svc }}.ns.svc:80/", []string{"svc", "evil.com"}, ""},
		{"templated host, a leading hyphen", "http://{{ .Labels.svc }}.ns.svc:80/", []string{"svc", "-x"}, ""},
		{"if in a path", "http://h/{{ if .Labels.x }}on-{{ .Labels.x }}{{ else }}off{{ end }}", []string{"x", "a/b"}, "http://h/on-a%2Fb"},
		{"trailing slash as written", "http://h/a/", nil, "http://h/a/"},
		{"fragment as written", "http://h/{{ .Labels.x }}#top", []string{"x", "a#b"}, "http://h/a%23b#top"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Rules = []Rule{{Name: "hook", Action: ActionHTTP, Params: map[string]string{"url": tc.url}}}
			if errs := c.Load(""); len(errs) > 0 {
				t.Fatal(errs)
			}
			cc, _ := compile(c)
			cl, reason, err := (&Engine{}).prepare(cc, cc.rules[0], cc.rules[0].fire, firing(t0, tc.labels...))
			switch {
			case tc.want == "" && (err == nil || reason != ReasonRefused):
				t.Errorf("built %v (%s %v), want a refusal", cl, reason, err)
			case tc.want != "" && err != nil:
				t.Errorf("refused (%s): %v", reason, err)
			case tc.want != "" && cl.url != tc.want:
				t.Errorf("built %s\n         want %s", cl.url, tc.want)
			}
		})
	}
}
