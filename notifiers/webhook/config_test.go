package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"url":   "https://hooks.example.com" + secretPath + "\n",
		"token": bearerToken + "\n",
		"bad":   "ftp://hooks.example.com" + secretPath + "\n",
		"empty": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name           string
		yaml           string
		wantErrs       []string
		wantConfigured bool
		check          func(t *testing.T, c Config)
	}{
		{
			name: "absent block",
			check: func(t *testing.T, c Config) {
				if c.Timeout != DefaultTimeout {
					t.Errorf("timeout = %v, want the default", c.Timeout)
				}
			},
		},
		{
			name:           "inline",
			yaml:           "url: https://hooks.example.com" + secretPath + "\nbearer_token: " + bearerToken + "\ntimeout: 5s\nmax_alerts: 20\n",
			wantConfigured: true,
			check: func(t *testing.T, c Config) {
				if c.Timeout != model.Duration(5*time.Second) || c.MaxAlerts != 20 {
					t.Errorf("timeout %v max_alerts %d", c.Timeout, c.MaxAlerts)
				}
			},
		},
		{
			name:           "from files, relative to the config",
			yaml:           "url_file: url\nbearer_token_file: token\n",
			wantConfigured: true,
			check: func(t *testing.T, c Config) {
				if string(c.URL) != "https://hooks.example.com"+secretPath || string(c.BearerToken) != bearerToken {
					t.Error("secrets not read (or not trimmed)")
				}
				if c.Timeout != DefaultTimeout {
					t.Errorf("timeout = %v, want the default", c.Timeout)
				}
			},
		},
		{
			name:     "token without url",
			yaml:     "bearer_token: " + bearerToken + "\n",
			wantErrs: []string{"url: required (or url_file) when the webhook block is set"},
		},
		{
			name:     "not http",
			yaml:     "url: ftp://hooks.example.com" + secretPath + "\n",
			wantErrs: []string{"url: must be an http or https URL"},
		},
		{
			name:     "not http, from a file",
			yaml:     "url_file: bad\n",
			wantErrs: []string{"url: must be an http or https URL"},
		},
		{
			name:     "no host",
			yaml:     "url: https://" + secretPath + "\n",
			wantErrs: []string{"url: must be an http or https URL"},
		},
		{
			name:     "url twice",
			yaml:     "url: https://hooks.example.com" + secretPath + "\nurl_file: url\n",
			wantErrs: []string{"url: set url or url_file, not both"},
		},
		{
			name: "files missing and empty",
			yaml: "url_file: nope\nbearer_token_file: empty\n",
			wantErrs: []string{
				"url_file: cannot read " + filepath.Join(dir, "nope") + ": no such file or directory",
				"bearer_token_file: " + filepath.Join(dir, "empty") + " is empty",
			},
		},
		{
			name:     "token twice",
			yaml:     "url_file: url\nbearer_token: " + bearerToken + "\nbearer_token_file: token\n",
			wantErrs: []string{"bearer_token: set bearer_token or bearer_token_file, not both"},
		},
		{
			name:     "negative max_alerts",
			yaml:     "url_file: url\nmax_alerts: -1\n",
			wantErrs: []string{"max_alerts: must be 0 (all) or more, got -1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
				t.Fatalf("decode: %v", err)
			}
			var got []string
			for _, err := range c.Load(dir) {
				got = append(got, err.Error())
				if strings.Contains(err.Error(), secretPath) || strings.Contains(err.Error(), bearerToken) {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantErrs, "\n") {
				t.Errorf("Load errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantErrs, "\n"))
			}
			if len(tc.wantErrs) == 0 && c.Configured() != tc.wantConfigured {
				t.Errorf("Configured() = %v, want %v", c.Configured(), tc.wantConfigured)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestValidateSettings(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		want     []string
	}{
		{"none", nil, nil},
		{
			"a secret and a stray key",
			map[string]string{"url": "https://hooks.example.com" + secretPath, "channel": "#ops"},
			[]string{
				"channel: unknown setting (webhook takes none)",
				"url: a secret, and settings are not; set it in integrations.webhook",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range ValidateSettings(tc.settings) {
				got = append(got, err.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
