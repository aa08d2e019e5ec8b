package remediation

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
)

// opener gives a fresh, empty shared state for one test: each call of the
// returned function is one replica's handle onto it. Every engine test runs
// through runSuite with one, so any backend can be put under them (the map
// store below, alertmedic's memory store, Redis).
type opener func(t *testing.T) func() Store

// token is the bearer token every test configures; no record, log line,
// notice or error may ever show it.
const token = "tok-Zq8yW3-never-print-me"

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is the injected clock: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seen is one request a fake endpoint received.
type seen struct {
	Srv, Method, Path, Query, Body string
	Header                         http.Header
}

// fake stands in for the orchestrator, the extraction API or a hook
// receiver: an httptest server on 127.0.0.1 that records every request and
// answers as told.
type fake struct {
	*httptest.Server
	name string
	rig  *rig
	mu   sync.Mutex
	// answer decides the response; default 200 {}.
	answer func(r *http.Request, body []byte) (int, string)
}

func (f *fake) setAnswer(fn func(r *http.Request, body []byte) (int, string)) {
	f.mu.Lock()
	f.answer = fn
	f.mu.Unlock()
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.rig.mu.Lock()
	f.rig.reqs = append(f.rig.reqs, seen{Srv: f.name, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()})
	f.rig.mu.Unlock()
	f.mu.Lock()
	answer := f.answer
	f.mu.Unlock()
	code, out := http.StatusOK, "{}"
	if answer != nil {
		code, out = answer(r, body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, out)
}

type notice struct {
	Text  string
	Facts map[string]string
}

// lockedBuffer collects log lines from concurrent engines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rig is one test's world: a clock, three fake endpoints, a shared store,
// and what the engines logged, noticed and slept.
type rig struct {
	t               *testing.T
	clk             *clock
	orch, api, hook *fake
	handle          func() Store
	logs            *lockedBuffer
	reg             *prometheus.Registry

	mu      sync.Mutex
	reqs    []seen
	notices []notice
	sleeps  []time.Duration
}

func newRig(t *testing.T, open opener) *rig {
	t.Helper()
	r := &rig{t: t, clk: &clock{t: t0}, handle: open(t), logs: &lockedBuffer{}, reg: prometheus.NewRegistry()}
	for _, f := range []**fake{&r.orch, &r.api, &r.hook} {
		*f = &fake{rig: r}
		(*f).Server = httptest.NewServer(*f)
		t.Cleanup((*f).Close)
	}
	r.orch.name, r.api.name, r.hook.name = "orch", "api", "hook"
	return r
}

// config is the block under test: the fakes as endpoints, the token, rules.
func (r *rig) config(rules ...Rule) Config {
	c := DefaultConfig()
	c.OrchestratorURL = r.orch.URL
	c.APIBaseURL = r.api.URL + "/"
	c.BearerToken = token
	c.Rules = rules
	if errs := c.Load(""); len(errs) > 0 {
		r.t.Fatalf("config: %v", errs)
	}
	return c
}

// engine builds one replica on a new handle onto the shared store.
func (r *rig) engine(c Config, replica string) *rigEngine {
	r.t.Helper()
	e, err := New(Options{
		Config:     c,
		Store:      r.handle(),
		Logger:     zerolog.New(r.logs).Level(zerolog.DebugLevel),
		Registerer: r.reg,
		Now:        r.clk.Now,
		ReplicaID:  replica,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	// Backoffs are recorded, never waited for.
	e.sleep = func(ctx context.Context, d time.Duration) error {
		r.mu.Lock()
		r.sleeps = append(r.sleeps, d)
		r.mu.Unlock()
		return ctx.Err()
	}
	return &rigEngine{Engine: e, r: r}
}

// rigEngine is an engine whose Handle notes the notices its records carry,
// as the pipeline sends them.
type rigEngine struct {
	*Engine
	r *rig
}

func (e *rigEngine) Pause(ctx context.Context, by string) error {
	n, err := e.Engine.Pause(ctx, by)
	e.note(n)
	return err
}

func (e *rigEngine) Resume(ctx context.Context, by string) error {
	n, err := e.Engine.Resume(ctx, by)
	e.note(n)
	return err
}

func (e *rigEngine) note(n *Notice) {
	if n == nil {
		return
	}
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	e.r.notices = append(e.r.notices, notice{n.Text, n.Facts})
}

func (e *rigEngine) Handle(ctx context.Context, a template.Alert, flapping bool) []Record {
	recs := e.Engine.Handle(ctx, a, flapping)
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	for _, rec := range recs {
		if rec.Notice != nil {
			e.r.notices = append(e.r.notices, notice{rec.Notice.Text, rec.Notice.Facts})
		}
	}
	return recs
}

func (r *rig) takeReqs() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func (r *rig) takeNotices() []notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.notices
	r.notices = nil
	return out
}

// firing is a firing alert that started at start, with labels in pairs.
func firing(start time.Time, kv ...string) template.Alert {
	ls := template.KV{}
	for i := 0; i+1 < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return template.Alert{Status: alert.StatusFiring, Labels: ls, Annotations: template.KV{"summary": "load is high"}, StartsAt: start, Fingerprint: alert.Fingerprint(ls)}
}

// resolvedAt is a resolved at end.
func resolvedAt(a template.Alert, end time.Time) template.Alert {
	a.Status = alert.StatusResolved
	a.EndsAt = end
	return a
}

func overloaded(start time.Time) template.Alert {
	return firing(start, "alertname", "ExtractionServiceOverloaded", "severity", "critical", "instance", "api-1:8000")
}

func scaleRule() Rule {
	return Rule{
		Name:     "scale-extraction",
		Matchers: []string{`alertname="ExtractionServiceOverloaded"`},
		Action:   ActionScale,
		Params:   map[string]string{"service": "company-extraction-api", "replicas": "5"},
		Min:      1,
		Max:      10,
	}
}

// only returns the single record, failing otherwise.
func only(t *testing.T, recs []Record) Record {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

func wantResult(t *testing.T, rec Record, result, reason string) {
	t.Helper()
	if rec.Result != result || rec.Reason != reason {
		t.Errorf("record %s/%s: result %q reason %q (%s), want %q %q", rec.Rule, rec.Action, rec.Result, rec.Reason, rec.Detail, result, reason)
	}
}

func posts(reqs []seen, path string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Path == path {
			n++
		}
	}
	return n
}

func containsToken(s string) bool { return strings.Contains(s, token) }
