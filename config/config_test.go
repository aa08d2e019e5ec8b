package config

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestExampleLoads(t *testing.T) {
	c, err := Parse(Example, "")
	if err != nil {
		t.Fatalf("the shipped example does not load: %v", err)
	}
	d := Default()
	if c.Store.Type != StoreMemory {
		t.Errorf("example store = %q, want memory (make run needs nothing else running)", c.Store.Type)
	}
	if c.Web.MaxRequestBytes != 4<<20 || c.Webhook.DedupWindow != d.Webhook.DedupWindow {
		t.Errorf("example changed a documented default: %+v %+v", c.Web, c.Webhook)
	}
	if c.Global.ReplicaID == "" {
		t.Error("replica_id not defaulted to the host name")
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	c, err := Parse([]byte("# nothing\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Global.ReplicaID = c.Global.ReplicaID
	// Each integration package applies its own defaults when it loads.
	want.Integrations = c.Integrations
	if got, _ := yaml.Marshal(c); string(got) != string(must(yaml.Marshal(want))) {
		t.Errorf("empty file:\n%s\nwant defaults:\n%s", got, must(yaml.Marshal(want)))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestFullFile(t *testing.T) {
	c, err := Load("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Global.ReplicaID != "alertmedic-a" || c.Web.MaxAlerts != 200 || c.Pipeline.Workers != 8 {
		t.Errorf("values not read: %+v", c)
	}
	if time.Duration(c.Webhook.DedupWindow) != time.Hour || time.Duration(c.Store.Redis.KeyTTL) != 48*time.Hour || time.Duration(c.Pipeline.HistoryRetention) != 24*time.Hour {
		t.Errorf("durations: %s %s %s", c.Webhook.DedupWindow, c.Store.Redis.KeyTTL, c.Pipeline.HistoryRetention)
	}
	// *_file secrets are read relative to the config file, trimmed.
	if string(c.Web.Auth.BearerToken) != "token-from-file" {
		t.Errorf("bearer_token_file not read")
	}
	if string(c.Web.AdminAuth.BasicAuth.Password) != "admin-pass-from-file" {
		t.Errorf("password_file not read")
	}
	if string(c.Store.Redis.URL) != "redis://:redis-pass@127.0.0.1:6379/3" {
		t.Errorf("url_file not read")
	}
	// Defaults survive where the file is silent.
	if c.Store.Redis.DialTimeout != Default().Store.Redis.DialTimeout {
		t.Errorf("dial_timeout default lost")
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"unknown_keys.yml", []string{
			"web.max_request_byte: unknown field (did you mean max_request_bytes?) (line 2)",
			"web.auth.bearer_tokn: unknown field (did you mean bearer_token?) (line 4)",
			"store.memroy: unknown field (did you mean memory?) (line 7)",
		}},
		{"bad_types.yml", []string{
			"web.max_alerts: cannot use YAML str `lots` as an integer (line 2)",
			`webhook.dedup_window: "soon" is not a duration (write it like 30s, 5m, 1h or 1d) (line 4)`,
			"pipeline.workers: cannot use YAML seq as an integer (line 6)",
			`pipeline.history_retention: "-5m" is not a duration (write it like 30s, 5m, 1h or 1d) (line 7)`,
			`route.flapping.window: "5 minutes" is not a duration (write it like 30s, 5m, 1h or 1d) (line 11)`,
			"route.flapping.threshold: cannot use YAML str `many` as an integer (line 12)",
			`route.receiver: unknown receiver "x"`,
		}},
		{"bad_values.yml", []string{
			"web.max_alerts: must be greater than 0, got 0",
			"web.auth.basic_auth.username: is required",
			"web.auth: set bearer_token or basic_auth, not both",
			`store.type: must be "memory" or "redis", got "postgres"`,
			"pipeline.workers: must be greater than 0, got -1",
		}},
		{"redis_bad.yml", []string{
			"store.redis: set url or addrs, not both",
			"store.redis.url: must start with redis://, rediss:// or unix://",
			"store.redis.key_prefix: must be non-empty and contain no { or }",
			"store.redis.key_ttl: must be at least pipeline.history_retention (1d)",
		}},
		{"secret_both.yml", []string{
			"web.auth.bearer_token: set bearer_token or bearer_token_file, not both",
			"web.admin_auth.bearer_token_file: cannot read testdata/secrets/missing: no such file or directory",
		}},
		{"mixed.yml", []string{
			"web.max_request_byte: unknown field (did you mean max_request_bytes?) (line 3)",
			"web.max_alerts: must be greater than 0, got 0",
		}},
		{"bad_template.yml", []string{
			"receivers[0].integrations[0].settings.title: render template: template: :1: unclosed action",
			"receivers[0].integrations[1].settings: routing_key: the routing key is a secret and settings are not; set it in integrations.pagerduty",
		}},
		{"unknown_far.yml", []string{"store.flavour: unknown field (known: memory, redis, type) (line 3)"}},
		{"not_yaml.yml", []string{"not valid YAML: line 1: did not find expected node content"}},
		{"web_scalar.yml", []string{
			"web: must be a mapping of keys to values (line 1)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load("testdata/" + tc.file)
			if err == nil {
				t.Fatal("loaded")
			}
			want := "load testdata/" + tc.file + ":\n" + strings.Join(tc.want, "\n")
			if err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

// No secret's value appears in an error, a marshalled config or a %v.
func TestSecretsNeverShown(t *testing.T) {
	c, err := Load("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"token-from-file", "admin-pass-from-file", "redis-pass"}
	y, _ := yaml.Marshal(c)
	j, _ := json.Marshal(c)
	for _, out := range []string{string(y), string(j), c.Web.Auth.BearerToken.String()} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q shown in %s", s, out)
			}
		}
	}
	_, err = Load("testdata/redis_bad.yml")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redis password in error: %v", err)
	}
	_, err = Load("testdata/secret_both.yml")
	if err == nil || strings.Contains(err.Error(), "inline-secret-value") {
		t.Errorf("inline secret in error: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yml")
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
