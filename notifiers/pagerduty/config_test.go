package pagerduty

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// decode reads the block strictly, as alertmedic's configuration loader
// does.
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

func errStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	c := decode(t, "routing_key: "+testKey+"\n")
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatalf("Load: %v", errs)
	}
	want := Config{
		RoutingKey: testKey,
		URL:        "https://events.pagerduty.com/v2/enqueue",
		Client:     "alertmedic",
		Severity:   map[string]string{"critical": "critical", "warning": "warning", "info": "info"},
		Summary:    DefaultSummary,
		Timeout:    model.Duration(10 * time.Second),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v\nwant %+v", c, want)
	}
	if !c.Configured() {
		t.Error("Configured() = false with a routing key")
	}
}

func TestLoadEverything(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pd-key"), []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := decode(t, `
routing_key_file: pd-key
url: http://127.0.0.1:9999/pd/v2/enqueue
client: Acme alertmedic
client_url: https://alertmedic.example.com
alert_page_url: https://alertmedic.example.com/alerts/
severity: {page: critical, ticket: warning}
summary: '{{ range .Alerts }}{{ .Labels.alertname | toUpper }}{{ end }}'
timeout: 3s
`)
	if errs := c.Load(dir); len(errs) > 0 {
		t.Fatalf("Load: %v", errs)
	}
	if c.RoutingKey != testKey {
		t.Error("routing key not read from routing_key_file (relative to dir), trimmed")
	}
	if !reflect.DeepEqual(c.Severity, map[string]string{"page": "critical", "ticket": "warning"}) {
		t.Errorf("severity = %v; a given map replaces the default whole", c.Severity)
	}
	if c.Timeout != model.Duration(3*time.Second) || c.Client != "Acme alertmedic" || c.URL != "http://127.0.0.1:9999/pd/v2/enqueue" || c.AlertPageURL != "https://alertmedic.example.com/alerts/" {
		t.Errorf("Load = %+v", c)
	}
}

func TestLoadEmptyBlockIsNotConfigured(t *testing.T) {
	var c Config
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatalf("Load: %v", errs)
	}
	if c.Configured() {
		t.Error("Configured() = true without a routing key")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "key and key file",
			yaml: "routing_key: " + testKey + "\nrouting_key_file: pd-key\n",
			want: []string{"routing_key: set routing_key or routing_key_file, not both"},
		},
		{
			name: "missing key file",
			yaml: "routing_key_file: nope\n",
			want: []string{"routing_key_file: cannot read " + filepath.Join(dir, "nope") + ": no such file or directory"},
		},
		{
			name: "empty key file",
			yaml: "routing_key_file: empty\n",
			want: []string{"routing_key_file: " + filepath.Join(dir, "empty") + " is empty"},
		},
		{
			name: "settings without a key",
			yaml: "client: me\n",
			want: []string{"routing_key: required (or routing_key_file) when the pagerduty block is set"},
		},
		{
			name: "not an http URL",
			yaml: "routing_key: k\nurl: ftp://events.example.com/v2/enqueue\n",
			want: []string{"url: must be an http or https URL"},
		},
		{
			name: "URL without the enqueue path",
			yaml: "routing_key: k\nurl: https://events.example.com/enqueue\n",
			want: []string{"url: must end in /v2/enqueue with no query or fragment (the Events API v2 endpoint)"},
		},
		{
			name: "URL with a query",
			yaml: "routing_key: k\nurl: https://events.example.com/v2/enqueue?token=x\n",
			want: []string{"url: must end in /v2/enqueue with no query or fragment (the Events API v2 endpoint)"},
		},
		{
			name: "relative client URL",
			yaml: "routing_key: k\nclient_url: /alertmedic\n",
			want: []string{"client_url: must be an absolute URL"},
		},
		{
			name: "alert page URL that is not http",
			yaml: "routing_key: k\nalert_page_url: /alerts/\n",
			want: []string{"alert_page_url: must be an http or https URL (the alert's fingerprint is appended)"},
		},
		{
			name: "alert page URL alone sets the block",
			yaml: "alert_page_url: https://alertmedic.example.com/alerts/\n",
			want: []string{"routing_key: required (or routing_key_file) when the pagerduty block is set"},
		},
		{
			name: "unknown severities, in key order",
			yaml: "routing_key: k\nseverity: {warning: warn, critical: page}\n",
			want: []string{
				`severity.critical: "page" is not one of critical, error, warning, info`,
				`severity.warning: "warn" is not one of critical, error, warning, info`,
			},
		},
		{
			name: "bad template",
			yaml: "routing_key: k\nsummary: '{{ .Alerts'\n",
			want: []string{`summary: template: :1: unclosed action`},
		},
		{
			name: "unknown template function",
			yaml: "routing_key: k\nsummary: '{{ nope }}'\n",
			want: []string{`summary: template: :1: function "nope" not defined`},
		},
		{
			name: "every problem at once",
			yaml: "client: me\nurl: nope\nclient_url: x\nseverity: {critical: page}\nsummary: '{{'\n",
			want: []string{
				"routing_key: required (or routing_key_file) when the pagerduty block is set",
				"url: must be an http or https URL",
				"client_url: must be an absolute URL",
				`severity.critical: "page" is not one of critical, error, warning, info`,
				"summary: template: :1: unclosed action",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := decode(t, tc.yaml)
			got := errStrings(c.Load(dir))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Load errors:\n%q\nwant\n%q", got, tc.want)
			}
			for _, e := range got {
				if strings.Contains(e, testKey) {
					t.Errorf("error quotes the routing key: %s", e)
				}
			}
		})
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("service_key: x\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "field service_key not found") {
		t.Errorf("decode = %v, want service_key refused", err)
	}
}

func TestBadTimeoutRefused(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("timeout: soon\n"), &c); err == nil {
		t.Error("timeout: soon was accepted")
	}
}

func TestSecretRedactedWhenMarshalled(t *testing.T) {
	b, err := yaml.Marshal(Config{RoutingKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testKey) || !strings.Contains(string(b), "routing_key: <secret>") {
		t.Errorf("marshalled config:\n%s", b)
	}
}

func TestValidateSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]string
		want     []string
	}{
		{"none", nil, nil},
		{"severity", map[string]string{"severity": "warning"}, nil},
		{"bad severity", map[string]string{"severity": "high"}, []string{`severity: "high" is not one of critical, error, warning, info`}},
		{
			"routing key and an unknown setting",
			map[string]string{"routing_key": testKey, "channel": "#x"},
			[]string{
				"channel: unknown setting (pagerduty knows severity, summary)",
				"routing_key: the routing key is a secret and settings are not; set it in integrations.pagerduty",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errStrings(ValidateSettings(tc.settings)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ValidateSettings = %q, want %q", got, tc.want)
			}
		})
	}
}

// A negative timeout cannot be written in YAML (Prometheus durations have
// no sign) but can be set in Go.
func TestLoadNegativeTimeout(t *testing.T) {
	c := Config{RoutingKey: testKey, Timeout: -1}
	if got := errStrings(c.Load("")); !reflect.DeepEqual(got, []string{"timeout: must be positive"}) {
		t.Errorf("Load errors %q", got)
	}
}
