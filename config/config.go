// Package config loads alertmedic's one YAML file: strictly (an unknown key
// is an error), with every default set in Default, every *_file secret read
// and every cross-reference checked at load, so that a bad file is refused
// whole before it replaces a good one. Errors carry the key path and line.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/email"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/notifiers/webhook"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/secret"
	"github.com/alertmedic/alertmedic/store"
)

// Example is the shipped example configuration, used when no file is given.
//
//go:embed example.yml
var Example []byte

// Config is the whole file.
type Config struct {
	Global   GlobalConfig   `yaml:"global"`
	Web      WebConfig      `yaml:"web"`
	Webhook  WebhookConfig  `yaml:"webhook"`
	Store    StoreConfig    `yaml:"store"`
	Pipeline PipelineConfig `yaml:"pipeline"`
	// Flapping is flap detection's default; routes may override it.
	Flapping flapping.Config `yaml:"flapping"`
	Notices  NoticesConfig   `yaml:"notices"`
	// TimeIntervals, Route and Receivers are Alertmanager's own shapes.
	TimeIntervals []routing.TimeInterval `yaml:"time_intervals"`
	Route         *routing.Route         `yaml:"route"`
	Receivers     []routing.Receiver     `yaml:"receivers"`
	// Integrations hold each integration's credentials and templates; a
	// receiver's integration entries name the type and the per-target
	// settings (channel, to). An integration without credentials renders
	// into the log instead.
	Integrations IntegrationsConfig `yaml:"integrations"`
	Delivery     DeliveryConfig     `yaml:"delivery"`
	// Remediation is the guarded actions run when alerts fire or resolve.
	Remediation remediation.Config `yaml:"remediation"`
	// Alertmanager is where a Silence button creates its silence.
	Alertmanager AlertmanagerConfig `yaml:"alertmanager"`
}

// AlertmanagerConfig says which Alertmanager the buttons of a message talk
// to. Without a URL it is the one that sent the alert (the webhook's
// externalURL), reached with no credentials; with one, that Alertmanager,
// with HTTPConfig's.
type AlertmanagerConfig struct {
	URL        string   `yaml:"url"`
	HTTPConfig HTTPAuth `yaml:"http_config"`
}

// IntegrationsConfig is one block per integration type.
type IntegrationsConfig struct {
	Slack     slack.Config     `yaml:"slack"`
	Email     email.Config     `yaml:"email"`
	PagerDuty pagerduty.Config `yaml:"pagerduty"`
	Webhook   webhook.Config   `yaml:"webhook"`
}

// DeliveryConfig is the retry policy every integration shares.
type DeliveryConfig struct {
	MinBackoff     model.Duration `yaml:"min_backoff"`
	MaxBackoff     model.Duration `yaml:"max_backoff"`
	AttemptTimeout model.Duration `yaml:"attempt_timeout"`
	Deadline       model.Duration `yaml:"deadline"`
	// RateLimits bound messages per target, by integration type (slack,
	// email, pagerduty, webhook); alerts waiting for the limit coalesce.
	RateLimits map[string]store.RateLimit `yaml:"rate_limits"`
	// DigestMaxAlerts bounds the alerts one deferred digest carries; past
	// it they are counted ("and N more"). Resolves are always kept.
	DigestMaxAlerts int `yaml:"digest_max_alerts"`
}

// NoticesConfig says where alertmedic's own notices go.
type NoticesConfig struct {
	// FlappingReceiver hears when an alert starts and stops flapping (the
	// shipped example: Slack #ops-alerts). Empty: notices are only logged.
	FlappingReceiver string `yaml:"flapping_receiver"`
}

// GlobalConfig holds settings every part shares.
type GlobalConfig struct {
	// ReplicaID names this process in logs, audit records and as the queue
	// consumer. It must be stable across restarts so a restarted replica
	// takes back its own unfinished entries at once. Default: host name.
	ReplicaID string `yaml:"replica_id"`
}

// WebConfig bounds and protects the HTTP API.
type WebConfig struct {
	MaxRequestBytes int64          `yaml:"max_request_bytes"`
	MaxAlerts       int            `yaml:"max_alerts"`
	RequestTimeout  model.Duration `yaml:"request_timeout"`
	// Auth protects POST /webhook: what Alertmanager's http_config sends.
	Auth HTTPAuth `yaml:"auth"`
	// AdminAuth protects the endpoints that change state (reload); when it is
	// empty, Auth protects them too.
	AdminAuth HTTPAuth `yaml:"admin_auth"`
	// ReadAuth, when set, protects the read-only APIs and /metrics (the
	// probes stay open).
	ReadAuth HTTPAuth `yaml:"read_auth"`
	// MaxInflightBytes bounds the webhook bodies being read and decoded at
	// once, across requests; past it the webhook answers 503 with
	// Retry-After, and Alertmanager sends again.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// TrustedProxies are the addresses (an IP or a CIDR) whose
	// X-Forwarded-For and X-Real-IP are believed. Empty trusts none: the
	// client is the connection's peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TrustedPrefixes are TrustedProxies as parsed when the file was
	// checked; set by Parse, not read from the file.
	TrustedPrefixes []netip.Prefix `yaml:"-"`
	// ExternalURL is where people reach alertmedic (its page at /),
	// behind whatever proxy: Slack messages and PagerDuty events link to
	// each alert's timeline under it. Empty: no links.
	ExternalURL string `yaml:"external_url"`
}

// parseTrustedProxy reads one web.trusted_proxies entry: an IP address
// (one host) or a CIDR prefix.
func parseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// HTTPAuth is a bearer token or basic auth, never both.
type HTTPAuth struct {
	BearerToken     secret.Secret `yaml:"bearer_token"`
	BearerTokenFile string        `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth    `yaml:"basic_auth"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username     string        `yaml:"username"`
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
}

// Enabled reports whether any credential is configured.
func (a HTTPAuth) Enabled() bool { return a.BearerToken != "" || a.BasicAuth != nil }

// WebhookConfig shapes how payloads are accepted.
type WebhookConfig struct {
	// DedupWindow: the same observation of an alert arriving again within it
	// (HA replicas, retries) is acknowledged and not processed again.
	DedupWindow model.Duration `yaml:"dedup_window"`
}

// Store types.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// StoreConfig chooses and tunes the state backend.
type StoreConfig struct {
	Type   string      `yaml:"type"`
	Memory MemoryStore `yaml:"memory"`
	Redis  RedisStore  `yaml:"redis"`
}

// MemoryStore tunes the embedded store. Each kind of state has a cap; the
// defaults fit 100,000 active alerts with room to spare.
type MemoryStore struct {
	QueueCapacity int `yaml:"queue_capacity"`
	// MaxDedupKeys and MaxValues: past them the oldest go (counted).
	MaxDedupKeys int `yaml:"max_dedup_keys"`
	MaxValues    int `yaml:"max_values"`
	// MaxItems bounds the unsent notifications (and waiting
	// remediations); at it the webhook answers 503.
	MaxItems       int `yaml:"max_items"`
	MaxDeadLetters int `yaml:"max_dead_letters"`
}

// RedisStore is a Redis server, Sentinel group or Cluster shared by replicas.
type RedisStore struct {
	// URL may hold a password, so it is a secret.
	URL           secret.Secret `yaml:"url"`
	URLFile       string        `yaml:"url_file"`
	Addrs         []string      `yaml:"addrs"`
	MasterName    string        `yaml:"master_name"`
	Username      string        `yaml:"username"`
	Password      secret.Secret `yaml:"password"`
	PasswordFile  string        `yaml:"password_file"`
	DB            int           `yaml:"db"`
	KeyPrefix     string        `yaml:"key_prefix"`
	QueueCapacity int           `yaml:"queue_capacity"`
	// MaxDeadLetters bounds the dead letters kept; past it the oldest go.
	MaxDeadLetters int            `yaml:"max_dead_letters"`
	ClaimIdle      model.Duration `yaml:"claim_idle"`
	KeyTTL         model.Duration `yaml:"key_ttl"`
	DialTimeout    model.Duration `yaml:"dial_timeout"`
	Timeout        model.Duration `yaml:"timeout"`
	// WaitReplicas, when above 0, makes the webhook's enqueue wait until
	// that many replicas have the entry (Redis WAIT, at most Timeout)
	// before the 200; fewer in time answers 503.
	WaitReplicas int `yaml:"wait_replicas"`
	// Shards spreads the keys over that many hash tags, so that a Cluster
	// spreads the load over its masters; 0 picks 1 for one server or a
	// Sentinel group and DefaultClusterShards for a Cluster.
	Shards int `yaml:"shards"`
}

// DefaultClusterShards is store.redis.shards on a Cluster: enough hash
// tags that every master of a Cluster of up to 16 holds some.
const DefaultClusterShards = 16

// MaxShards bounds store.redis.shards: every replica reads every shard.
const MaxShards = 256

// ShardCount is Shards with 0 resolved.
func (r RedisStore) ShardCount() int {
	switch {
	case r.Shards > 0:
		return r.Shards
	case len(r.Addrs) > 1 && r.MasterName == "":
		return DefaultClusterShards
	}
	return 1
}

// PipelineConfig tunes the workers.
type PipelineConfig struct {
	Workers int `yaml:"workers"`
	// HistoryRetention is how long an alert's record (its last
	// observation, flap state and what each target was given) outlives the
	// alert's last observation.
	HistoryRetention model.Duration `yaml:"history_retention"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout model.Duration `yaml:"shutdown_timeout"`
	// CheckInterval is how often a replica looks for flapping that ended
	// (stable_for) and deferred digests that fell due.
	CheckInterval model.Duration `yaml:"check_interval"`
}

// Default is the configuration before any file is read: every default lives
// here and nowhere else.
func Default() Config {
	return Config{
		Web: WebConfig{
			MaxRequestBytes:  4 << 20,
			MaxAlerts:        1000,
			RequestTimeout:   model.Duration(10 * time.Second),
			MaxInflightBytes: 16 << 20,
		},
		Webhook: WebhookConfig{DedupWindow: model.Duration(10 * time.Minute)},
		Store: StoreConfig{
			Type:   StoreMemory,
			Memory: MemoryStore{QueueCapacity: 10000, MaxDedupKeys: 1_000_000, MaxValues: 1_000_000, MaxItems: 100_000, MaxDeadLetters: 1000},
			Redis: RedisStore{
				KeyPrefix:      "alertmedic",
				QueueCapacity:  100000,
				MaxDeadLetters: 1000,
				ClaimIdle:      model.Duration(time.Minute),
				KeyTTL:         model.Duration(7 * 24 * time.Hour),
				DialTimeout:    model.Duration(5 * time.Second),
				Timeout:        model.Duration(3 * time.Second),
			},
		},
		Pipeline: PipelineConfig{
			Workers:          4,
			HistoryRetention: model.Duration(24 * time.Hour),
			ShutdownTimeout:  model.Duration(25 * time.Second),
			CheckInterval:    model.Duration(30 * time.Second),
		},
		Flapping:    flapping.DefaultConfig(),
		Remediation: remediation.DefaultConfig(),
		Delivery: DeliveryConfig{
			MinBackoff:     model.Duration(500 * time.Millisecond),
			MaxBackoff:     model.Duration(30 * time.Second),
			AttemptTimeout: model.Duration(45 * time.Second), // above every integration's own timeout
			Deadline:       model.Duration(5 * time.Minute),
			// Slack's documented limit for posting: about one message a
			// second per channel, short bursts allowed.
			RateLimits:      map[string]store.RateLimit{"slack": {PerSecond: 1, Burst: 3}},
			DigestMaxAlerts: 1000,
		},
	}
}

// Error is one problem in a file, at a key path.
type Error struct {
	Path string // dotted key path, e.g. store.redis.claim_idle
	Line int    // 0 when unknown
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Errors is every problem found in a file.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and checks filename. Relative *_file paths are taken from the
// file's own directory, as Prometheus does.
func Load(filename string) (*Config, error) {
	c, _, err := LoadFile(filename)
	return c, err
}

// MaxFileBytes bounds a configuration file.
const MaxFileBytes = 16 << 20

// LoadFile is Load, returning the file's bytes too. The file is read once,
// and only if it is a regular file of at most MaxFileBytes: a FIFO or a
// device in its place fails at once instead of blocking the caller (a
// reload, check-config).
func LoadFile(filename string) (*Config, []byte, error) {
	b, err := secret.ReadRegular(filename, MaxFileBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b, filepath.Dir(filename))
	if err != nil {
		return nil, nil, fmt.Errorf("load %s:\n%w", filename, err)
	}
	return c, b, nil
}

// Parse checks a configuration held in memory. dir resolves relative *_file
// paths. Bad input yields Errors listing every problem found.
func Parse(b []byte, dir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, Errors{{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	c := Default()
	if len(root.Content) == 0 { // an empty file is the defaults
		return &c, validate(&c, dir)
	}
	// Aliases are counted before anything expands them: the walk and the
	// decode below both would, and yaml.v3's own check of aliasing runs only
	// inside the decode, after the walk.
	if e := checkAliases(root.Content[0]); e != nil {
		return nil, Errors{*e}
	}
	w := newWalker()
	w.walk(root.Content[0], reflect.TypeOf(c), "")
	errs, lines := w.errs, w.lines
	if err := root.Content[0].Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			if len(errs) > 0 { // the walk already found what stopped the decode
				sortErrors(errs)
				return nil, errs
			}
			return nil, Errors{{Msg: err.Error()}}
		}
		structural := map[string]bool{}
		for _, e := range errs {
			structural[e.Path] = true
		}
		for _, m := range te.Errors {
			if e := typeError(m, lines); !structural[e.Path] {
				errs = append(errs, e)
			}
		}
	}
	// Values are checked even when the structure had errors, so that one run
	// of check-config lists everything; a key that failed to decode kept its
	// default and is not reported twice.
	var verrs Errors
	if err := validate(&c, dir); err != nil {
		verrs = err.(Errors) //nolint:errorlint // validate returns Errors itself, never wrapped
	}
	if len(errs) > 0 {
		sortErrors(errs)
		reported := map[string]bool{}
		for _, e := range errs {
			reported[e.Path] = true
		}
		for _, e := range verrs {
			if !reported[e.Path] {
				errs = append(errs, e)
			}
		}
		return nil, errs
	}
	if len(verrs) > 0 {
		return nil, verrs
	}
	return &c, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

func typeError(m string, lines map[int]string) Error {
	sm := lineRE.FindStringSubmatch(m)
	if sm == nil {
		return Error{Msg: m}
	}
	n, _ := strconv.Atoi(sm[1])
	msg := sm[2]
	// yaml.v3 names Go types; say what the user should write instead.
	msg = strings.Replace(msg, "cannot unmarshal !!", "cannot use YAML ", 1)
	msg = strings.Replace(msg, "into int64", "as an integer", 1)
	msg = strings.Replace(msg, "into int", "as an integer", 1)
	msg = strings.Replace(msg, "into string", "as a string", 1)
	msg = strings.Replace(msg, "into []string", "as a list of strings", 1)
	return Error{Path: lines[n], Line: n, Msg: msg}
}

func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

var (
	unmarshalerType   = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	modelDurationType = reflect.TypeOf(model.Duration(0))
)

// walker reports unknown keys anywhere in the tree (yaml.v3's KnownFields
// stops at the first) and records which key path each line holds, so that
// type errors can name their key too.
type walker struct {
	errs  Errors
	lines map[int]string
	// walked holds each anchor's value already checked as a type: an alias
	// used again as the same type is not walked again, so the walk's work is
	// bounded by the file's size, not by what its aliases expand to, and a
	// problem in the anchor is reported once, at its first use.
	walked map[walked]bool
	visits int // nodes walked, for the tests
}

type walked struct {
	n *yaml.Node
	t reflect.Type
}

func newWalker() *walker {
	return &walker{lines: map[int]string{}, walked: map[walked]bool{}}
}

func (w *walker) bad(path string, line int, msg string) {
	w.errs = append(w.errs, Error{Path: path, Line: line, Msg: msg})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		k := walked{n.Alias, t}
		if w.walked[k] {
			return
		}
		w.walked[k] = true
		n = n.Alias
	}
	w.visits++
	if _, seen := w.lines[n.Line]; !seen || path != "" {
		w.lines[n.Line] = path
	}
	if t == modelDurationType {
		// model.Duration, the one duration type of the configuration, fails
		// the whole decode on a bad value; checking it here reports it with
		// its path and line.
		if _, err := model.ParseDuration(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			w.bad(path, n.Line, fmt.Sprintf("%q is not a duration (write it like 30s, 5m, 1h or 1d)", n.Value))
			// Reported; a valid stand-in lets the decode go on to find
			// every other problem of the file.
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "0s", Line: n.Line, Column: n.Column}
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag != "!!null" {
				w.bad(path, n.Line, "must be a mapping of keys to values")
			}
			return
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if isMerge(k) {
				w.merge(v, t, path, p)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				w.bad(p, k.Line, "unknown field"+suggest(k.Value, fields))
				continue
			}
			w.lines[k.Line] = p
			w.walk(v, ft, p)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, v := range n.Content {
				w.walk(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if isMerge(k) {
					w.merge(v, t, path, join(path, k.Value))
					continue
				}
				w.walk(v, t.Elem(), join(path, k.Value))
			}
		}
	}
}

// yamlFields adds the keys of struct t to fields, by their yaml tags, with
// the keys of the structs it inlines (yaml:",inline").
func yamlFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline" && f.Type.Kind() == reflect.Struct:
			yamlFields(f.Type, fields)
		case name != "" && name != "-":
			fields[name] = f.Type
		}
	}
}

// merge walks what a merge key (<<: *defaults) brings into a mapping as part
// of that mapping: yaml.v3 decodes it so, and without this every << would be
// an unknown field.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path, key string) {
	from := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		from = v.Content
	}
	for _, m := range from {
		target := m
		if m.Kind == yaml.AliasNode && m.Alias != nil {
			target = m.Alias
		}
		if target.Kind != yaml.MappingNode {
			w.bad(key, m.Line, "must be a mapping, an alias of one, or a list of them, to merge")
			return
		}
		w.walk(m, t, path)
	}
}

// isMerge is yaml.v3's own test for a merge key.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestD := "", 3 // suggest only close misspellings
	for _, n := range names {
		if d := distance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// validate checks values and cross-references, reads *_file secrets, and
// reports every problem at once.
func validate(c *Config, dir string) error {
	var errs Errors
	bad := func(path, format string, args ...any) {
		errs = append(errs, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	positive := func(path string, v int64) {
		if v <= 0 {
			bad(path, "must be greater than 0, got %d", v)
		}
	}
	positiveDur := func(path string, d model.Duration) {
		if d <= 0 {
			bad(path, "must be a positive duration, got %s", d)
		}
	}

	if c.Global.ReplicaID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "alertmedic"
		}
		c.Global.ReplicaID = h
	}
	positive("web.max_request_bytes", c.Web.MaxRequestBytes)
	positive("web.max_inflight_bytes", c.Web.MaxInflightBytes)
	if c.Web.MaxInflightBytes > 0 && c.Web.MaxInflightBytes < c.Web.MaxRequestBytes {
		bad("web.max_inflight_bytes", "must be at least web.max_request_bytes (%d), or no body of the largest size could ever be read", c.Web.MaxRequestBytes)
	}
	c.Web.TrustedPrefixes = nil
	for i, p := range c.Web.TrustedProxies {
		pr, err := parseTrustedProxy(p)
		if err != nil {
			bad(fmt.Sprintf("web.trusted_proxies[%d]", i), "%s", err)
			continue
		}
		c.Web.TrustedPrefixes = append(c.Web.TrustedPrefixes, pr)
	}
	positive("web.max_alerts", int64(c.Web.MaxAlerts))
	positiveDur("web.request_timeout", c.Web.RequestTimeout)
	checkAuth("web.auth", &c.Web.Auth, dir, bad)
	checkAuth("web.admin_auth", &c.Web.AdminAuth, dir, bad)
	checkAuth("web.read_auth", &c.Web.ReadAuth, dir, bad)
	if u := c.Web.ExternalURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" {
			bad("web.external_url", "must be an http or https URL with a host, and no credentials, query or fragment")
		} else {
			c.Web.ExternalURL = strings.TrimSuffix(u, "/")
		}
	}
	checkAuth("alertmanager.http_config", &c.Alertmanager.HTTPConfig, dir, bad)
	if u := c.Alertmanager.URL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
			bad("alertmanager.url", "must be an http or https URL with a host and no credentials (put them in alertmanager.http_config)")
		}
	} else if a := c.Alertmanager.HTTPConfig; a.BearerToken != "" || a.BasicAuth != nil {
		bad("alertmanager.http_config", "needs alertmanager.url: credentials are never sent to the externalURL an alert came with")
	}
	positiveDur("webhook.dedup_window", c.Webhook.DedupWindow)

	switch c.Store.Type {
	case StoreMemory:
		m := c.Store.Memory
		positive("store.memory.queue_capacity", int64(m.QueueCapacity))
		positive("store.memory.max_dedup_keys", int64(m.MaxDedupKeys))
		positive("store.memory.max_values", int64(m.MaxValues))
		positive("store.memory.max_items", int64(m.MaxItems))
		positive("store.memory.max_dead_letters", int64(m.MaxDeadLetters))
	case StoreRedis:
		r := &c.Store.Redis
		readSecret("store.redis.url", &r.URL, r.URLFile, dir, bad)
		readSecret("store.redis.password", &r.Password, r.PasswordFile, dir, bad)
		if r.URL == "" && r.URLFile == "" && len(r.Addrs) == 0 {
			bad("store.redis", "set url (or url_file), or addrs for Sentinel or Cluster")
		}
		if r.URL != "" && len(r.Addrs) > 0 {
			bad("store.redis", "set url or addrs, not both")
		}
		if r.URL != "" {
			checkRedisURL(r, dir, bad)
			if r.MasterName != "" {
				bad("store.redis.master_name", "needs addrs (the Sentinels), not url")
			}
		}
		if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, "{}") {
			bad("store.redis.key_prefix", "must be non-empty and contain no { or }")
		}
		positive("store.redis.queue_capacity", int64(r.QueueCapacity))
		positive("store.redis.max_dead_letters", int64(r.MaxDeadLetters))
		if r.WaitReplicas < 0 {
			bad("store.redis.wait_replicas", "must be 0 (do not wait) or more, got %d", r.WaitReplicas)
		}
		if r.Shards < 0 || r.Shards > MaxShards {
			bad("store.redis.shards", "must be 0 (automatic) or 1 to %d, got %d", MaxShards, r.Shards)
		}
		positiveDur("store.redis.claim_idle", r.ClaimIdle)
		positiveDur("store.redis.key_ttl", r.KeyTTL)
		positiveDur("store.redis.dial_timeout", r.DialTimeout)
		positiveDur("store.redis.timeout", r.Timeout)
		if r.KeyTTL > 0 && r.KeyTTL < c.Pipeline.HistoryRetention {
			bad("store.redis.key_ttl", "must be at least pipeline.history_retention (%s)", c.Pipeline.HistoryRetention)
		}
	default:
		bad("store.type", "must be %q or %q, got %q", StoreMemory, StoreRedis, c.Store.Type)
	}

	positive("pipeline.workers", int64(c.Pipeline.Workers))
	positiveDur("pipeline.history_retention", c.Pipeline.HistoryRetention)
	positiveDur("pipeline.shutdown_timeout", c.Pipeline.ShutdownTimeout)
	positiveDur("pipeline.check_interval", c.Pipeline.CheckInterval)

	for _, e := range c.Flapping.Validate() {
		errs = append(errs, Error{Path: "flapping." + fieldKey(e), Msg: fieldMsg(e)})
	}
	c.compileRouting(&errs)
	c.loadIntegrations(dir, &errs)
	for _, e := range c.Remediation.Load(dir) {
		errs = append(errs, Error{Path: "remediation", Msg: e.Error()})
	}
	if r := c.Remediation.NotifyReceiver; r != "" && !slices.ContainsFunc(c.Receivers, func(rv routing.Receiver) bool { return rv.Name == r }) {
		bad("remediation.notify_receiver", "unknown receiver %q", r)
	}
	positiveDur("delivery.min_backoff", c.Delivery.MinBackoff)
	positiveDur("delivery.max_backoff", c.Delivery.MaxBackoff)
	positiveDur("delivery.attempt_timeout", c.Delivery.AttemptTimeout)
	positiveDur("delivery.deadline", c.Delivery.Deadline)
	positive("delivery.digest_max_alerts", int64(c.Delivery.DigestMaxAlerts))
	for typ, rl := range c.Delivery.RateLimits {
		if !slices.Contains(routing.IntegrationTypes, typ) {
			bad("delivery.rate_limits."+typ, "unknown integration type (known: %s)", strings.Join(routing.IntegrationTypes, ", "))
		}
		if rl.PerSecond < 0 || rl.Burst < 0 {
			bad("delivery.rate_limits."+typ, "per_second and burst must not be negative")
		}
	}

	if len(errs) > 0 {
		return errs
	}
	return nil
}

// fieldKey and fieldMsg split a flapping.FieldError; other errors keep their
// whole text as the message.
func fieldKey(err error) string {
	var fe flapping.FieldError
	if errors.As(err, &fe) {
		return fe.Key
	}
	return ""
}

func fieldMsg(err error) string {
	var fe flapping.FieldError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

// compileRouting checks the route tree and its references, and every
// route's flapping override against the global flapping settings.
func (c *Config) compileRouting(errs *Errors) {
	if c.Route == nil {
		if len(c.Receivers) > 0 || len(c.TimeIntervals) > 0 {
			*errs = append(*errs, Error{Path: "route", Msg: "is required when receivers or time_intervals are set"})
		}
		if c.Notices.FlappingReceiver != "" {
			*errs = append(*errs, Error{Path: "notices.flapping_receiver", Msg: fmt.Sprintf("unknown receiver %q", c.Notices.FlappingReceiver)})
		}
		return
	}
	rc := c.Routing()
	_, rerrs := routing.Compile(rc)
	for _, e := range rerrs {
		var re routing.Error
		if errors.As(e, &re) {
			*errs = append(*errs, Error{Path: re.Path, Msg: re.Msg})
		} else {
			*errs = append(*errs, Error{Msg: e.Error()})
		}
	}
	shards := 1
	if c.Store.Type == StoreRedis {
		shards = c.Store.Redis.ShardCount()
	}
	for _, rf := range rc.FlappingOverrides() {
		merged := flapping.Merge(c.Flapping, &rf.Flapping.Override)
		for _, e := range merged.Validate() {
			*errs = append(*errs, Error{Path: rf.Path + ".flapping." + fieldKey(e), Msg: fieldMsg(e)})
		}
		// An alert's shard follows the global flapping.by, so that the
		// alerts a flap key groups share a shard; a route grouping them
		// otherwise would split its flap keys over shards.
		if shards > 1 && !slices.Equal(merged.By, c.Flapping.By) {
			*errs = append(*errs, Error{Path: rf.Path + ".flapping.by", Msg: fmt.Sprintf("must be the global flapping.by (%v) when store.redis.shards is %d: alerts are placed in shards by it", c.Flapping.By, shards)})
		}
	}
	if r := c.Notices.FlappingReceiver; r != "" {
		found := false
		for _, rv := range c.Receivers {
			found = found || rv.Name == r
		}
		if !found {
			*errs = append(*errs, Error{Path: "notices.flapping_receiver", Msg: fmt.Sprintf("unknown receiver %q", r)})
		}
	}
}

// loadIntegrations reads each integration's secrets and checks its block,
// then checks every receiver's per-target settings against its type.
func (c *Config) loadIntegrations(dir string, errs *Errors) {
	add := func(prefix string, es []error) {
		for _, e := range es {
			*errs = append(*errs, Error{Path: prefix, Msg: e.Error()})
		}
	}
	in := &c.Integrations
	if in.Slack.Configured() {
		add("integrations.slack", in.Slack.Load(dir))
	}
	add("integrations.email", in.Email.Load(dir))
	add("integrations.pagerduty", in.PagerDuty.Load(dir))
	add("integrations.webhook", in.Webhook.Load(dir))
	for i, r := range c.Receivers {
		for j, it := range r.Integrations {
			path := fmt.Sprintf("receivers[%d].integrations[%d].settings", i, j)
			switch it.Type {
			case routing.Email:
				add(path, email.ValidateSettings(it.Settings))
			case routing.PagerDuty:
				add(path, pagerduty.ValidateSettings(it.Settings))
			case routing.Webhook:
				add(path, webhook.ValidateSettings(it.Settings))
			case routing.Slack:
				add(path, slack.ValidateSettings(it.Settings))
				for _, k := range []string{notifiers.SettingTitle, notifiers.SettingText} {
					if v, ok := it.Settings[k]; ok {
						if err := notifiers.CheckTemplate(v); err != nil {
							*errs = append(*errs, Error{Path: path + "." + k, Msg: err.Error()})
						}
					}
				}
				if in.Slack.ChannelRequired() && it.Settings["channel"] == "" {
					*errs = append(*errs, Error{Path: path + ".channel", Msg: "is required: integrations.slack posts with a bot token, which needs a channel"})
				}
			}
		}
	}
}

// Routing is the routing part of the configuration.
func (c *Config) Routing() routing.Config {
	return routing.Config{TimeIntervals: c.TimeIntervals, Route: c.Route, Receivers: c.Receivers}
}

func checkAuth(path string, a *HTTPAuth, dir string, bad func(string, string, ...any)) {
	readSecret(path+".bearer_token", &a.BearerToken, a.BearerTokenFile, dir, bad)
	if b := a.BasicAuth; b != nil {
		readSecret(path+".basic_auth.password", &b.Password, b.PasswordFile, dir, bad)
		if b.Username == "" {
			bad(path+".basic_auth.username", "is required")
		}
		if b.Password == "" && b.PasswordFile == "" { // a password_file read or failed
			bad(path+".basic_auth.password", "is required (or password_file)")
		}
	}
	if a.BearerToken != "" && a.BasicAuth != nil {
		bad(path, "set bearer_token or basic_auth, not both")
	}
}

// readSecret fills *s from file when file is set, through the one reader of
// every *_file (which refuses what is not a regular file, or is too large).
// The secret's value never appears in an error; the file's path does.
func readSecret(path string, s *secret.Secret, file, dir string, bad func(string, string, ...any)) {
	if err := secret.Fill(path, s, file, dir); err != nil {
		// Fill's error starts with the setting it is about: path, or
		// path_file when the file is the trouble.
		p, msg, _ := strings.Cut(err.Error(), ": ")
		bad(p, "%s", msg)
	}
}
