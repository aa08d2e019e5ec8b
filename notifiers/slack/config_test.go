package slack

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// parse decodes a block as alertmedic's strict config does.
func parse(t *testing.T, src string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		wantErrs []string
		check    func(t *testing.T, c Config)
	}{
		{
			name: "webhook with defaults",
			yaml: `api_url: https://hooks.slack.com/services/T000/B000/XXXX`,
			check: func(t *testing.T, c Config) {
				want := Config{
					APIURL: "https://hooks.slack.com/services/T000/B000/XXXX",
					Title:  DefaultTitle, Text: DefaultText, Footer: DefaultFooter,
					MaxAttachments: 20, Timeout: model.Duration(10 * time.Second),
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got %#v\nwant %#v", c, want)
				}
			},
		},
		{
			name: "every key",
			yaml: `
token: xoxb-inline
api_base_url: http://127.0.0.1:1234/api
username: alertmedic
icon_emoji: ":rotating_light:"
title: '{{ .CommonLabels.alertname }}'
text: '{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}'
footer: Ops
max_attachments: 5
timeout: 3s
`,
			check: func(t *testing.T, c Config) {
				want := Config{
					Token: "xoxb-inline", APIBaseURL: "http://127.0.0.1:1234/api/",
					Username: "alertmedic", IconEmoji: ":rotating_light:",
					Title: "{{ .CommonLabels.alertname }}", Text: "{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}",
					Footer: "Ops", MaxAttachments: 5, Timeout: model.Duration(3 * time.Second),
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got %#v\nwant %#v", c, want)
				}
			},
		},
		{
			name: "webhook URL from a file relative to dir",
			yaml: `api_url_file: webhook_url`,
			check: func(t *testing.T, c Config) {
				if c.APIURL != "https://hooks.slack.com/services/T000/B000/XXXX" {
					t.Errorf("api_url = %q", string(c.APIURL))
				}
			},
		},
		{
			name: "token from a file, Slack's API by default",
			yaml: `token_file: token`,
			check: func(t *testing.T, c Config) {
				if c.Token != "xoxb-from-file" || c.APIBaseURL != "https://slack.com/api/" {
					t.Errorf("token = %q, api_base_url = %q", string(c.Token), c.APIBaseURL)
				}
			},
		},
		{name: "api_url_file missing", yaml: `api_url_file: nonexistent`,
			wantErrs: []string{"api_url_file: cannot read testdata/nonexistent: no such file or directory"}},
		{name: "token_file empty", yaml: `token_file: empty`,
			wantErrs: []string{"token_file: testdata/empty is empty"}},
		{name: "api_url and api_url_file", yaml: "api_url: https://hooks.slack.com/x\napi_url_file: webhook_url",
			wantErrs: []string{"api_url: set api_url or api_url_file, not both"}},
		{name: "both set", yaml: "api_url: https://hooks.slack.com/x\ntoken: xoxb-1",
			wantErrs: []string{"api_url: set api_url or token, not both"}},
		{name: "both set through files", yaml: "api_url_file: webhook_url\ntoken_file: token",
			wantErrs: []string{"api_url: set api_url or token, not both"}},
		{name: "none set", yaml: `username: alertmedic`,
			wantErrs: []string{"api_url: set api_url or token"}},
		{name: "api_url not http", yaml: `api_url: ftp://hooks.slack.com/services/SECRET`,
			wantErrs: []string{"api_url: must be an http or https URL"}},
		{name: "api_url without host", yaml: `api_url: hooks.slack.com/services/SECRET`,
			wantErrs: []string{"api_url: must be an http or https URL"}},
		{name: "api_base_url with a webhook", yaml: "api_url: https://hooks.slack.com/x\napi_base_url: https://slack.com/api/",
			wantErrs: []string{"api_base_url: applies to token only; api_url is the whole webhook URL"}},
		{name: "api_base_url not a URL", yaml: "token: xoxb-1\napi_base_url: slack.com/api",
			wantErrs: []string{`api_base_url: must be an http or https URL, got "slack.com/api"`}},
		{name: "max_attachments too many", yaml: "token: xoxb-1\nmax_attachments: 100",
			wantErrs: []string{"max_attachments: must be between 1 and 99, got 100"}},
		{name: "max_attachments negative", yaml: "token: xoxb-1\nmax_attachments: -1",
			wantErrs: []string{"max_attachments: must be between 1 and 99, got -1"}},
		{name: "title does not parse", yaml: "token: xoxb-1\ntitle: '{{ .Status'",
			wantErrs: []string{`title: render template: template: :1: unclosed action`}},
		{name: "text names a missing field", yaml: "token: xoxb-1\ntext: '{{ .Nope }}'",
			wantErrs: []string{`text: render template: template: :1:3: executing "" at <.Nope>: can't evaluate field Nope in type *template.Data`}},
		{name: "every error at once", yaml: "max_attachments: 200\ntitle: '{{'",
			wantErrs: []string{
				"api_url: set api_url or token",
				"max_attachments: must be between 1 and 99, got 200",
				"title: render template: template: :1: unclosed action",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.yaml)
			errs := c.Load("testdata")
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if strings.Contains(e.Error(), "SECRET") {
					t.Errorf("error %q quotes the secret", e)
				}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.wantErrs) {
				t.Errorf("Load errors:\n got %q\nwant %q", got, tc.wantErrs)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestUnknownKey(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("webhook_url: https://hooks.slack.com/x"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("decoded an unknown key; the config must be strict")
	}
}

func TestConfigured(t *testing.T) {
	cases := []struct {
		name            string
		c               Config
		configured, tok bool
	}{
		{"nothing", Config{Username: "alertmedic"}, false, false},
		{"webhook", Config{APIURL: "https://hooks.slack.com/x"}, true, false},
		{"webhook file not read yet", Config{APIURLFile: "webhook_url"}, true, false},
		{"token", Config{Token: "xoxb-1"}, true, true},
		{"token file not read yet", Config{TokenFile: "token"}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Configured(); got != tc.configured {
				t.Errorf("Configured() = %v, want %v", got, tc.configured)
			}
			if got := tc.c.ChannelRequired(); got != tc.tok {
				t.Errorf("ChannelRequired() = %v, want %v", got, tc.tok)
			}
		})
	}
}

// TestSecretsRedacted: a loaded Config may be logged or served by the API.
func TestSecretsRedacted(t *testing.T) {
	c := Config{APIURL: "https://hooks.slack.com/services/SECRET"}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v", c, c), string(out)} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("%s leaks the webhook URL", s)
		}
	}
	if !strings.Contains(string(out), "api_url: <secret>") {
		t.Errorf("marshalled config does not show that api_url is set:\n%s", out)
	}
}

func TestLoadButtons(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		wantErrs []string
		want     []model.Duration
		secret   string
	}{
		{name: "signing secret, one hour by default", yaml: "token: xoxb-1\nsigning_secret: s3cret",
			want: []model.Duration{model.Duration(time.Hour)}, secret: "s3cret"},
		{name: "signing secret from a file", yaml: "token: xoxb-1\nsigning_secret_file: signing_secret\nsilence_durations: [1h, 4h, 1d]",
			want:   []model.Duration{model.Duration(time.Hour), model.Duration(4 * time.Hour), model.Duration(24 * time.Hour)},
			secret: "8f742231b10e8888abcd99yyyzzz85a5"},
		{name: "no signing secret, no durations", yaml: "token: xoxb-1"},
		{name: "signing secret and its file", yaml: "token: xoxb-1\nsigning_secret: SECRET\nsigning_secret_file: signing_secret",
			wantErrs: []string{"signing_secret: set signing_secret or signing_secret_file, not both"}},
		{name: "signing secret file missing", yaml: "token: xoxb-1\nsigning_secret_file: nonexistent",
			wantErrs: []string{"signing_secret_file: cannot read testdata/nonexistent: no such file or directory"}},
		{name: "signing secret with a webhook", yaml: "api_url: https://hooks.slack.com/x\nsigning_secret: SECRET",
			wantErrs: []string{"signing_secret: applies to token only; buttons need the Web API to update their message"}},
		{name: "bad durations", yaml: "token: xoxb-1\nsigning_secret: SECRET\nsilence_durations: [0s, 1h, 60m]",
			wantErrs: []string{"silence_durations[0]: must be positive, got 0s", "silence_durations[2]: 1h is listed twice"}},
		{name: "too many durations", yaml: "token: xoxb-1\nsigning_secret: SECRET\nsilence_durations: [1m, 2m, 3m, 4m, 5m, 6m, 7m, 8m, 9m, 10m, 11m]",
			wantErrs: []string{"silence_durations: at most 10, got 11"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.yaml)
			var got []string
			for _, e := range c.Load("testdata") {
				got = append(got, e.Error())
				if strings.Contains(e.Error(), "SECRET") || strings.Contains(e.Error(), "8f742231") {
					t.Errorf("error %q quotes the secret", e)
				}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.wantErrs) {
				t.Errorf("Load errors:\n got %q\nwant %q", got, tc.wantErrs)
			}
			if tc.wantErrs != nil {
				return
			}
			if !reflect.DeepEqual(c.SilenceDurations, tc.want) || string(c.SigningSecret) != tc.secret {
				t.Errorf("silence_durations = %v, signing secret %q; want %v, %q", c.SilenceDurations, string(c.SigningSecret), tc.want, tc.secret)
			}
			if out, _ := yaml.Marshal(c); strings.Contains(string(out), "8f742231") || strings.Contains(string(out), "s3cret") {
				t.Errorf("marshalled config shows the signing secret:\n%s", out)
			}
		})
	}
}

func TestValidateSettings(t *testing.T) {
	cases := []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{"channel": "#a"}, nil},
		{map[string]string{"channel": "#a", SettingUpdateMessage: "false", SettingThreadReplies: "true"}, nil},
		{map[string]string{SettingUpdateMessage: "true", SettingThreadReplies: "false"}, nil},
		{map[string]string{SettingUpdateMessage: "no", SettingThreadReplies: "True"}, []string{
			`update_message: must be "true" or "false", got "no"`,
			`thread_replies: must be "true" or "false", got "True"`,
		}},
		{map[string]string{SettingThreadReplies: ""}, []string{`thread_replies: must be "true" or "false", got ""`}},
	}
	for _, tc := range cases {
		var got []string
		for _, e := range ValidateSettings(tc.settings) {
			got = append(got, e.Error())
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("ValidateSettings(%v):\n got %q\nwant %q", tc.settings, got, tc.want)
		}
	}
}
