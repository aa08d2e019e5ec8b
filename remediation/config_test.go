package remediation

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// example is the block as the documentation shows it.
const example = `
enabled: true
dry_run: false
orchestrator_url: http://127.0.0.1:8081
api_base_url: http://127.0.0.1:8080
bearer_token_file: token
timeout: 5s
retries: 2
max_age: 1h
audit_retention: 168h
notify_receiver: ops
rules:
  - name: scale-extraction
    matchers: ['alertname="ExtractionServiceOverloaded"']
    action: scale
    params: {service: company-extraction-api, replicas: 5}
    min: 1
    max: 10
    cooldown: 15m
    budget: 4
    on_resolve: {action: scale, params: {service: company-extraction-api, replicas: "2"}}
  - name: warm-cache
    matchers: ['alertname="LowCacheHitRate"']
    action: cache_warm
  - name: break-circuit
    matchers: ['alertname="ExternalAPIFailure"']
    action: circuit_break
    params: {ttl: 10m}
    on_resolve: {action: circuit_close}
  - name: custom
    matchers: ['alertname="ExtractionServiceOverloaded"', 'severity=~"critical|warning"']
    action: http
    params: {method: POST, url: "http://127.0.0.1:9000/hooks/{{ .Labels.alertname }}"}
    body: {instance: "{{ .Labels.instance }}", replicas: 2}
    headers: {X-Source: alertmedic}
`

// decode reads a block strictly, as the configuration loader does.
func decode(t *testing.T, text string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func writeToken(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadExample(t *testing.T) {
	dir := writeToken(t)
	c := decode(t, example)
	if errs := c.Load(dir); len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if string(c.BearerToken) != token {
		t.Errorf("token not read from the file")
	}
	if c.Rules[0].Params["replicas"] != "5" || c.Rules[1].Cooldown != DefaultCooldown || c.Retries != 2 {
		t.Errorf("decoded %+v", c)
	}
	cc, errs := compile(c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := cc.rules[1].fire.raw["companies"]; got != DefaultCompanies {
		t.Errorf("cache_warm companies default %q", got)
	}
	if got := cc.rules[2].fire.raw["api"]; got != DefaultAPIParam {
		t.Errorf("circuit_break api default %q", got)
	}
	if len(cc.rules[3].matchers) != 2 {
		t.Errorf("matchers %v", cc.rules[3].matchers)
	}
}

// Keys left out keep their defaults; explicit false and 0 stay.
func TestDefaults(t *testing.T) {
	c := decode(t, "rules: []\n")
	c.Load("")
	if !c.Enabled || c.Retries != DefaultRetries || c.Timeout != DefaultTimeout || c.MaxAge != DefaultMaxAge || c.AuditRetention != DefaultAuditRetention {
		t.Errorf("defaults: %+v", c)
	}
	c = decode(t, "enabled: false\nretries: 0\n")
	if errs := c.Load(""); len(errs) > 0 || c.Enabled || c.Retries != 0 {
		t.Errorf("explicit zeros: %+v %v", c, errs)
	}
}

// Every problem is reported, each at its key, in words a user can act on.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "bad matcher",
			yaml: `
rules:
  - {name: a, action: cache_warm}
  - {name: b, action: cache_warm, matchers: ['alertname=~"(("']}
api_base_url: http://x`,
			want: []string{`rules[1].matchers[0]: bad matcher "alertname=~\"((\"": `},
		},
		{
			name: "unknown action",
			yaml: `
rules: [{name: a, action: reboot}]`,
			want: []string{`rules[0].action: must be one of scale, cache_warm, circuit_break, circuit_close, http, got "reboot"`},
		},
		{
			name: "missing action",
			yaml: `
rules: [{name: a}]`,
			want: []string{`rules[0].action: must be one of scale, cache_warm, circuit_break, circuit_close, http`},
		},
		{
			name: "unknown param, min above max, missing URL",
			yaml: `
rules:
  - name: a
    action: scale
    params: {service: s, replicas: "3", replica: "4"}
    min: 5
    max: 2`,
			want: []string{
				"rules[0].max: must be at least min (5), got 2",
				"rules[0].params.replica: unknown param for scale (known: replicas, service, step)",
				"orchestrator_url: required: rules[0] scales",
			},
		},
		{
			name: "fixed replicas outside the bounds",
			yaml: `
orchestrator_url: http://o
rules: [{name: a, action: scale, params: {service: s, replicas: "12"}, max: 10}]`,
			want: []string{"rules[0].params.replicas: 12 is outside min and max [0, 10]"},
		},
		{
			name: "scale params",
			yaml: `
orchestrator_url: http://o
rules:
  - {name: a, action: scale, params: {replicas: "x"}}
  - {name: b, action: scale, params: {service: s, replicas: "1", step: "1"}}
  - {name: c, action: scale, params: {service: s, step: "1"}}
  - {name: d, action: scale, params: {service: s}}
  - {name: e, action: scale, params: {service: s, step: "0"}, max: 3}`,
			want: []string{
				"rules[0].params.service: required",
				`rules[0].params.replicas: must be an integer from 0 to 10000, got "x"`,
				"rules[1].params: set replicas or step, not both",
				"rules[2].max: required with step: a step needs an upper bound",
				"rules[3].params: set replicas (a fixed count) or step (added to the current count)",
				`rules[4].params.step: must be a non-zero integer, got "0"`,
			},
		},
		{
			name: "templates and http",
			yaml: `
rules:
  - name: a
    action: http
    params: {url: "http://h/{{ .Labels.x", body: "{{ end }}", method: "GET POST"}
    headers: {"Bad Header": x}
  - {name: b, action: http, params: {url: "ftp://h/x"}}
  - {name: c, action: http}
  - {name: d, action: cache_warm, headers: {X: y}}
api_base_url: http://api`,
			want: []string{
				`rules[0].params.body: bad template: template: body:1: unexpected {{end}}`,
				`rules[0].params.url: bad template: template: url:1: unclosed action`,
				`rules[0].headers.Bad Header: not a valid header name`,
				`rules[0].params.method: must be an HTTP method, got "GET POST"`,
				`rules[1].params.url: must be an http or https URL`,
				`rules[2].params.url: required`,
				`rules[3].headers: only used by http`,
			},
		},
		{
			name: "names, durations, budget, bounds",
			yaml: `
api_base_url: http://api/?x=1
retries: 11
rules:
  - {name: "a:b", action: cache_warm, budget: -1}
  - {name: w, action: cache_warm, min: 1}
  - {name: w, action: circuit_break, params: {ttl: 0s}, on_resolve: {action: circuit_close, params: {ttl: 1m}}}
  - {action: cache_warm}`,
			want: []string{
				"api_base_url: must not have a query or fragment: paths are appended to it",
				"retries: must be between 0 and 10, got 11",
				`rules[0].name: must contain only letters, digits, '_', '-' and '.', got "a:b"`,
				"rules[0].budget: must be 0 (unlimited) or more, got -1",
				"rules[1]: min and max are only used by scale",
				`rules[2].name: "w" is also the name of rules[1]`,
				`rules[2].params.ttl: must be a positive duration like 10m, got "0s"`,
				"rules[2].on_resolve.params.ttl: unknown param for circuit_close (known: api)",
				"rules[3].name: required",
			},
		},
		{
			name: "token twice",
			yaml: `
bearer_token: inline
bearer_token_file: token`,
			want: []string{"bearer_token: set bearer_token or bearer_token_file, not both"},
		},
		{
			name: "token file missing",
			yaml: `
bearer_token_file: nope`,
			want: []string{"bearer_token_file: cannot read "},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeToken(t)
			c := decode(t, tc.yaml)
			errs := c.Load(dir)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s", i, got[i], w)
				}
			}
		})
	}
}

// An unknown key is refused by the strict decoder, which sees every field
// through UnmarshalYAML.
func TestUnknownKey(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("rules: [{name: a, action: http, paramz: {}}]\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "paramz") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestSecretRedacts(t *testing.T) {
	c := DefaultConfig()
	c.BearerToken = token
	b, _ := yaml.Marshal(c)
	if containsToken(string(b)) || !strings.Contains(string(b), "<secret>") {
		t.Errorf("yaml: %s", b)
	}
}

func TestRunBound(t *testing.T) {
	c := DefaultConfig()
	c.Timeout = model.Duration(5 * time.Second)
	c.Retries = 2
	// 3 attempts of 5s, 2 backoffs of at most 2s, plus a second.
	if got := runBound(c, 1); got != 20*time.Second {
		t.Errorf("runBound = %v", got)
	}
}

// A FIFO as the token file fails the load at once (reading it would wait
// for a writer, forever), and says what the file is.
func TestTokenFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Free a reader still waiting in open, if the test failed.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	c := decode(t, "bearer_token_file: token\n")
	done := make(chan []error, 1)
	go func() { done <- c.Load(dir) }()
	select {
	case errs := <-done:
		want := "bearer_token_file: cannot read " + fifo + ": not a regular file (a named pipe)"
		if len(errs) != 1 || errs[0].Error() != want {
			t.Fatalf("errors %v, want %q", errs, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Load still reading the FIFO after 2s")
	}
}
