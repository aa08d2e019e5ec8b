package remediation

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	tmpltext "text/template"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/secret"
)

// Action kinds.
const (
	ActionScale        = "scale"
	ActionCacheWarm    = "cache_warm"
	ActionCircuitBreak = "circuit_break"
	ActionCircuitClose = "circuit_close"
	ActionHTTP         = "http"
)

// Actions lists every action kind, in the order error messages name them.
var Actions = []string{ActionScale, ActionCacheWarm, ActionCircuitBreak, ActionCircuitClose, ActionHTTP}

// Defaults. DefaultCooldown stops an action from running again on every
// repeat of a firing alert (Alertmanager re-sends it each repeat_interval);
// DefaultCompanies is the cache warm-up list of the service alertmedic
// ships beside.
const (
	DefaultTimeout         = model.Duration(5 * time.Second)
	DefaultRetries         = 2
	DefaultMaxAge          = model.Duration(time.Hour)
	DefaultAuditRetention  = model.Duration(7 * 24 * time.Hour)
	DefaultCooldown        = model.Duration(15 * time.Minute)
	DefaultCircuitTTL      = "10m"
	DefaultCompanies       = "Apple,Microsoft,Google,Amazon,Tesla"
	DefaultAPIParam        = "{{ .Labels.api }}"
	DefaultHTTPMethod      = "POST"
	DefaultStepMin         = 1
	MaxRetries             = 10
	budgetWindow           = time.Hour
	maxReplicas            = 10000
	maxCircuitTTL          = 7 * 24 * time.Hour
	templateMarker         = "{{"
	secretPlaceholder      = "<secret>"
	defaultAuditListLength = 100
)

// Config is the remediation block of the configuration file. Decode YAML
// into it (UnmarshalYAML starts from DefaultConfig), or start from
// DefaultConfig in code; then Load.
type Config struct {
	// Enabled is the kill switch: false skips every action (each skip is
	// still audited, with reason "disabled"). Default true.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// DryRun does everything but the HTTP call, for every rule.
	DryRun bool `yaml:"dry_run" json:"dry_run"`
	// OrchestratorURL is the base of the scale action's calls.
	OrchestratorURL string `yaml:"orchestrator_url" json:"orchestrator_url,omitempty"`
	// APIBaseURL is the base of cache_warm's and the circuit breaker's calls:
	// the service alertmedic sits beside.
	APIBaseURL string `yaml:"api_base_url" json:"api_base_url,omitempty"`
	// BearerToken is sent to the orchestrator and the API (never to an http
	// action's URL, which may be anyone's).
	BearerToken     secret.Secret `yaml:"bearer_token" json:"bearer_token,omitempty"`
	BearerTokenFile string        `yaml:"bearer_token_file" json:"bearer_token_file,omitempty"`
	// Timeout bounds each HTTP attempt.
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
	// Retries is how many times a call is repeated after a 5xx or 429
	// answer or a network error (so 1+Retries attempts), waiting for a
	// Retry-After up to the backoff's cap. Default 2; 0 is allowed.
	Retries int `yaml:"retries" json:"retries"`
	// MaxAge: an alert that started longer ago than this is a stale replay
	// (a queue drained after an outage, a redelivery) and is not acted on.
	MaxAge model.Duration `yaml:"max_age" json:"max_age"`
	// AuditRetention is how long audit records are kept.
	AuditRetention model.Duration `yaml:"audit_retention" json:"audit_retention"`
	// NotifyReceiver names the receiver that hears about each action run or
	// failed; the configuration loader checks the reference.
	NotifyReceiver string `yaml:"notify_receiver" json:"notify_receiver,omitempty"`
	// MaxActions is the fleet-wide breaker (breaker.go): at most Count
	// actions, every rule and replica together, in any rolling Per; the
	// action past it is not run and remediation pauses itself. nil: no
	// breaker.
	MaxActions *MaxActions `yaml:"max_actions" json:"max_actions,omitempty"`
	Rules      []Rule      `yaml:"rules" json:"rules,omitempty"`
}

// Rule says what to do when an alert matching Matchers fires (Action) and,
// optionally, when it resolves (OnResolve).
type Rule struct {
	// Name identifies the rule in the audit and in the store's keys: letters,
	// digits, '_', '-' and '.'.
	Name string `yaml:"name" json:"name"`
	// Matchers use Alertmanager's syntax; every one must match. None: the
	// rule matches every alert.
	Matchers []string `yaml:"matchers" json:"matchers,omitempty"`
	Action   string   `yaml:"action" json:"action"`
	// Params are the action's settings; every value is a Go template over
	// the alert ({{ .Labels.x }}, {{ .Annotations.x }}).
	Params map[string]string `yaml:"params" json:"params,omitempty"`
	// Headers are extra request headers (templated); http actions only.
	// They are printed with the configuration, so they hold no secret.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// Body is an http action's JSON body, written as YAML (a mapping or a
	// list): each string in it is a template rendered to one JSON string,
	// so a label cannot add a key. params.body is the older form, JSON text
	// in which every value must go through json.
	Body any `yaml:"body" json:"body,omitempty"`
	// Min and Max bound the replicas a scale action asks for (0: unset).
	// Max is required with step; with step, Min defaults to 1.
	Min int `yaml:"min" json:"min,omitempty"`
	Max int `yaml:"max" json:"max,omitempty"`
	// Cooldown: after this rule acted for an alert (by fingerprint), it does
	// not act for that alert again, in the same state, for this long.
	// Default 15m.
	Cooldown model.Duration `yaml:"cooldown" json:"cooldown"`
	// Budget caps the rule's runs (every alert, both states) in any rolling
	// hour; 0 is unlimited.
	Budget        int  `yaml:"budget" json:"budget,omitempty"`
	DryRun        bool `yaml:"dry_run" json:"dry_run,omitempty"`
	WhileFlapping bool `yaml:"while_flapping" json:"while_flapping,omitempty"`
	// OnResolve is run when a matching alert resolves.
	OnResolve *ActionConfig `yaml:"on_resolve" json:"on_resolve,omitempty"`
	// Verify waits, after the firing action ran, for the alert to resolve
	// and judges the action effective or ineffective (see verify.go).
	Verify *VerifyConfig `yaml:"verify" json:"verify,omitempty"`
	// RollbackOn: "ineffective" undoes the action on that verdict (scale
	// back, circuit_close, or the http action's Rollback).
	RollbackOn string `yaml:"rollback_on" json:"rollback_on,omitempty"`
	// Rollback is the request that undoes an http action (its action, if
	// given, is http).
	Rollback *ActionConfig `yaml:"rollback" json:"rollback,omitempty"`
	// Approval proposes the firing action instead of running it: it runs
	// when an approver approves, within Timeout (approval.go).
	Approval *ApprovalConfig `yaml:"approval" json:"approval,omitempty"`
}

// ActionConfig is a second action, for resolve. It shares the rule's
// matchers, bounds, cooldown length, budget and flags.
type ActionConfig struct {
	Action  string            `yaml:"action" json:"action"`
	Params  map[string]string `yaml:"params" json:"params,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Body    any               `yaml:"body" json:"body,omitempty"`
}

// DefaultConfig is the configuration before a file says anything: enabled,
// no rules.
func DefaultConfig() Config {
	return Config{
		Enabled:        true,
		Timeout:        DefaultTimeout,
		Retries:        DefaultRetries,
		MaxAge:         DefaultMaxAge,
		AuditRetention: DefaultAuditRetention,
	}
}

// UnmarshalYAML decodes over DefaultConfig, so that a key left out keeps its
// default and an explicit false or 0 (enabled: false, retries: 0) stays as
// written. It uses the yaml.v2-style interface, which yaml.v3 also honours,
// to keep this package free of a YAML library (and the config loader's
// strict walk still sees the fields).
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// SetDefaults fills the durations left at zero (a zero duration is never
// valid here, so it means unset) and each rule's cooldown.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	for i := range c.Rules {
		if c.Rules[i].Cooldown == 0 {
			c.Rules[i].Cooldown = DefaultCooldown
		}
	}
}

// Load reads bearer_token_file (relative to dir, the configuration file's
// folder), sets the defaults and checks every value. Each error names its key
// relative to the block, e.g. "rules[1].matchers[0]: bad matcher ..."; none
// quotes the token.
func (c *Config) Load(dir string) []error {
	var errs []error
	// secret.Fill reads only a regular file of bounded size: a FIFO or a
	// device given by mistake fails the load instead of hanging it.
	if err := secret.Fill("bearer_token", &c.BearerToken, c.BearerTokenFile, dir); err != nil {
		errs = append(errs, err)
	}
	c.SetDefaults()
	_, cerrs := compile(*c)
	return append(errs, cerrs...)
}

// compiled is a checked configuration, ready to run.
type compiled struct {
	cfg     Config
	rules   []*compiledRule
	orchURL string // base URLs without a trailing slash
	apiURL  string
}

type compiledRule struct {
	Rule
	matchers labels.Matchers
	fire     *compiledAction
	resolve  *compiledAction
	rollback *compiledAction // an http action's rollback request
}

type compiledAction struct {
	kind string
	// params hold every parameter the action takes, defaults filled in.
	params     map[string]*tmpltext.Template
	raw        map[string]string
	headers    map[string]*tmpltext.Template
	headerKeys []string
	// url and body are an http action's, checked (see target.go); body is
	// nil when the body, if any, is params.body.
	url  *urlTemplate
	body *jsonBody
}

// actionParams lists the params each action takes; headers are separate.
var actionParams = map[string][]string{
	ActionScale:        {"replicas", "service", "step"},
	ActionCacheWarm:    {"companies"},
	ActionCircuitBreak: {"api", "ttl"},
	ActionCircuitClose: {"api"},
	ActionHTTP:         {"body", "method", "url"},
}

var (
	ruleNameRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	methodRE     = regexp.MustCompile(`^[A-Z]+$`)
)

// newTemplate parses one templated value with Alertmanager's template
// functions, so users can reuse what they know from notification templates,
// plus json for embedding a value in a JSON body safely, and the URL
// escapers compileURL pipes a URL's values into.
func newTemplate(name, text string) (*tmpltext.Template, error) {
	return tmpltext.New(name).
		Option("missingkey=zero").
		Funcs(tmpltext.FuncMap(template.DefaultFuncs)).
		Funcs(tmpltext.FuncMap{"json": jsonString}).
		Funcs(urlFuncs).
		Parse(text)
}

// compile checks c (defaults already set) and builds what the engine runs.
func compile(c Config) (*compiled, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	out := &compiled{cfg: c}
	var err error
	if out.orchURL, err = baseURL(c.OrchestratorURL); err != nil {
		bad("orchestrator_url", "%v", err)
	}
	if out.apiURL, err = baseURL(c.APIBaseURL); err != nil {
		bad("api_base_url", "%v", err)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be a positive duration, got %s", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > MaxRetries {
		bad("retries", "must be between 0 and %d, got %d", MaxRetries, c.Retries)
	}
	if c.MaxAge <= 0 {
		bad("max_age", "must be a positive duration, got %s", c.MaxAge)
	}
	if c.AuditRetention <= 0 {
		bad("audit_retention", "must be a positive duration, got %s", c.AuditRetention)
	}
	checkMaxActions(c.MaxActions, bad)
	names := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			bad(p+".name", "required")
		case !ruleNameRE.MatchString(r.Name):
			bad(p+".name", "must contain only letters, digits, '_', '-' and '.', got %q", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				bad(p+".name", "%q is also the name of rules[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		cr := &compiledRule{Rule: r}
		for j, m := range r.Matchers {
			ms, err := labels.ParseMatchers(m)
			if err == nil && len(ms) == 0 {
				err = errors.New("no matcher in it")
			}
			if err != nil {
				bad(fmt.Sprintf("%s.matchers[%d]", p, j), "bad matcher %q: %v", m, err)
				continue
			}
			cr.matchers = append(cr.matchers, ms...)
		}
		if r.Cooldown <= 0 {
			bad(p+".cooldown", "must be a positive duration, got %s", r.Cooldown)
		}
		if r.Budget < 0 {
			bad(p+".budget", "must be 0 (unlimited) or more, got %d", r.Budget)
		}
		if r.Min < 0 {
			bad(p+".min", "must not be negative, got %d", r.Min)
		}
		if r.Max < 0 {
			bad(p+".max", "must not be negative, got %d", r.Max)
		}
		if r.Min > 0 && r.Max > 0 && r.Min > r.Max {
			bad(p+".max", "must be at least min (%d), got %d", r.Min, r.Max)
		}
		var kinds []string
		cr.fire = compileAction(p, p, r.Action, r.Params, r.Headers, r.Body, &r, bad)
		kinds = append(kinds, r.Action)
		if r.OnResolve != nil {
			cr.resolve = compileAction(p, p+".on_resolve", r.OnResolve.Action, r.OnResolve.Params, r.OnResolve.Headers, r.OnResolve.Body, &r, bad)
			kinds = append(kinds, r.OnResolve.Action)
		}
		cr.rollback = compileVerify(p, &r, bad)
		checkApproval(p, &r, c.MaxAge, bad)
		if (r.Min != 0 || r.Max != 0) && !slices.Contains(kinds, ActionScale) {
			bad(p, "min and max are only used by scale")
		}
		for _, k := range kinds {
			switch k {
			case ActionScale:
				if c.OrchestratorURL == "" {
					bad("orchestrator_url", "required: %s scales", p)
				}
			case ActionCacheWarm, ActionCircuitBreak, ActionCircuitClose:
				if c.APIBaseURL == "" {
					bad("api_base_url", "required: %s runs %s", p, k)
				}
			}
		}
		out.rules = append(out.rules, cr)
	}
	return out, dedupErrors(errs)
}

// dedupErrors drops repeats (two rules needing the same missing URL say so
// once each, but the same rule does not say it twice).
func dedupErrors(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// compileAction checks one action of the rule at rp; p is the action's own
// key path (the rule's, or its on_resolve).
func compileAction(rp, p, kind string, params, headers map[string]string, body any, r *Rule, bad func(string, string, ...any)) *compiledAction {
	known, ok := actionParams[kind]
	if !ok {
		msg := "must be one of " + strings.Join(Actions, ", ")
		if kind != "" {
			msg += fmt.Sprintf(", got %q", kind)
		}
		bad(p+".action", "%s", msg)
		return nil
	}
	ca := &compiledAction{kind: kind, params: map[string]*tmpltext.Template{}, raw: map[string]string{}, headers: map[string]*tmpltext.Template{}}
	for _, k := range sortedKeys(params) {
		if !slices.Contains(known, k) {
			bad(p+".params."+k, "unknown param for %s (known: %s)", kind, strings.Join(known, ", "))
			continue
		}
		ca.raw[k] = params[k]
	}
	// Defaults, where the action has a sensible one.
	def := func(k, v string) {
		if _, set := ca.raw[k]; !set {
			ca.raw[k] = v
		}
	}
	switch kind {
	case ActionCacheWarm:
		def("companies", DefaultCompanies)
	case ActionCircuitBreak:
		def("api", DefaultAPIParam)
		def("ttl", DefaultCircuitTTL)
	case ActionCircuitClose:
		def("api", DefaultAPIParam)
	case ActionHTTP:
		def("method", DefaultHTTPMethod)
	}
	for _, k := range sortedKeys(ca.raw) {
		t, err := newTemplate(k, ca.raw[k])
		if err != nil {
			bad(p+".params."+k, "bad template: %v", err)
			continue
		}
		ca.params[k] = t
	}
	if len(headers) > 0 && kind != ActionHTTP {
		bad(p+".headers", "only used by http")
	}
	if body != nil && kind != ActionHTTP {
		bad(p+".body", "only used by http")
	}
	if kind == ActionHTTP {
		for _, k := range sortedKeys(headers) {
			if !headerNameRE.MatchString(k) {
				bad(p+".headers."+k, "not a valid header name")
				continue
			}
			t, err := newTemplate(k, headers[k])
			if err != nil {
				bad(p+".headers."+k, "bad template: %v", err)
				continue
			}
			ca.headers[k] = t
			ca.headerKeys = append(ca.headerKeys, k)
		}
	}
	// Static checks of values that hold no template; templated ones are
	// checked when rendered.
	static := func(k string) (string, bool) {
		v, set := ca.raw[k]
		return v, set && !strings.Contains(v, templateMarker)
	}
	switch kind {
	case ActionScale:
		_, hasR := ca.raw["replicas"]
		_, hasS := ca.raw["step"]
		if ca.raw["service"] == "" {
			bad(p+".params.service", "required")
		}
		switch {
		case hasR && hasS:
			bad(p+".params", "set replicas or step, not both")
		case !hasR && !hasS:
			bad(p+".params", "set replicas (a fixed count) or step (added to the current count)")
		case hasS && r.Max == 0:
			bad(rp+".max", "required with step: a step needs an upper bound")
		}
		if v, ok := static("replicas"); ok {
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > maxReplicas {
				bad(p+".params.replicas", "must be an integer from 0 to %d, got %q", maxReplicas, v)
			} else if boundsOK := r.Max == 0 || r.Min <= r.Max; boundsOK && ((r.Min > 0 && n < r.Min) || (r.Max > 0 && n > r.Max)) {
				bad(p+".params.replicas", "%d is outside min and max [%d, %d]", n, r.Min, r.Max)
			}
		}
		if v, ok := static("step"); ok {
			if n, err := strconv.Atoi(v); err != nil || n == 0 || n < -maxReplicas || n > maxReplicas {
				bad(p+".params.step", "must be a non-zero integer, got %q", v)
			}
		}
	case ActionCacheWarm:
		if v, ok := static("companies"); ok && len(splitList(v)) == 0 {
			bad(p+".params.companies", "must list at least one company (comma-separated)")
		}
	case ActionCircuitBreak:
		if v, ok := static("ttl"); ok {
			if _, err := parseTTL(v); err != nil {
				bad(p+".params.ttl", "%v", err)
			}
		}
	case ActionHTTP:
		if v, ok := static("method"); ok && !methodRE.MatchString(strings.ToUpper(v)) {
			bad(p+".params.method", "must be an HTTP method, got %q", v)
		}
		if u, set := ca.raw["url"]; !set || u == "" {
			bad(p+".params.url", "required")
		} else if t, ok := ca.params["url"]; ok {
			if ut, err := compileURL(t); err != nil {
				bad(p+".params.url", "%v", err)
			} else {
				ca.url = ut
			}
		}
		_, hasText := ca.raw["body"]
		switch body.(type) {
		case nil:
		case string:
			bad(p+".body", "must be a mapping or a list (it is sent as JSON); a body written as JSON text goes in params.body")
		default:
			if hasText {
				bad(p+".body", "set body or params.body, not both")
				break
			}
			ca.body = compileBody(p, "body", body, bad)
		}
		if t, ok := ca.params["body"]; ok {
			if v, ok := static("body"); ok && strings.TrimSpace(v) != "" && !json.Valid([]byte(v)) {
				bad(p+".params.body", "not valid JSON")
			} else if err := checkStringBody(t); err != nil {
				bad(p+".params.body", "%v", err)
			}
		}
	}
	return ca
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// baseURL checks an optional base URL and trims its trailing slash.
func baseURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if err := checkHTTPURL(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must not have a query or fragment: paths are appended to it")
	}
	return strings.TrimRight(s, "/"), nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not quoted: a URL may carry a credential.
		return errors.New("must be an http or https URL")
	}
	return nil
}

func parseTTL(v string) (time.Duration, error) {
	d, err := model.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive duration like 10m, got %q", v)
	}
	if time.Duration(d) > maxCircuitTTL || time.Duration(d) < time.Second {
		return 0, fmt.Errorf("must be between 1s and %s, got %q", model.Duration(maxCircuitTTL), v)
	}
	return time.Duration(d), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
