package email

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// decode reads a block as the configuration loader does: strictly.
func decode(t *testing.T, text string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"smtp-password": "  " + testPass + "\n",
		"empty":         "\n",
		"not-pem":       "hello\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, caPEM := selfSigned(t)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	const seed = "smarthost: smtp.company.com:587\nfrom: alerts@company.com\n"
	cases := []struct {
		name           string
		yaml           string
		wantErrs       []string
		wantConfigured bool
		check          func(t *testing.T, c Config)
	}{
		{
			name: "absent block",
			yaml: "",
			check: func(t *testing.T, c Config) {
				if c.TLS != TLSOpportunistic || c.Timeout != DefaultTimeout || c.Subject != DefaultSubject {
					t.Errorf("defaults not set: %+v", c)
				}
			},
		},
		{
			name:           "the shipped example",
			yaml:           seed,
			wantConfigured: true,
			check: func(t *testing.T, c Config) {
				if c.TLS != TLSOpportunistic || c.Timeout != model.Duration(30*time.Second) {
					t.Errorf("tls %q timeout %v, want opportunistic 30s", c.TLS, c.Timeout)
				}
				if c.Subject != DefaultSubject || c.Text != DefaultText || c.HTML != DefaultHTML {
					t.Error("default templates not set")
				}
			},
		},
		{
			name:           "password from a file, CA relative to the config",
			yaml:           seed + "tls: mandatory\nauth_username: alertmedic\nauth_password_file: smtp-password\nca_file: ca.pem\ntimeout: 1m\n",
			wantConfigured: true,
			check: func(t *testing.T, c Config) {
				if string(c.AuthPassword) != testPass {
					t.Error("auth_password_file not read (or not trimmed)")
				}
				if c.CAFile != filepath.Join(dir, "ca.pem") {
					t.Errorf("ca_file = %q, want it resolved against the config's folder", c.CAFile)
				}
				if c.Timeout != model.Duration(time.Minute) {
					t.Errorf("timeout = %v, want 1m", c.Timeout)
				}
			},
		},
		{
			name:     "half a block: no smarthost",
			yaml:     "from: alerts@company.com\n",
			wantErrs: []string{"smarthost: required when the email block is set (host:port of the mail relay, e.g. smtp.company.com:587)"},
		},
		{
			name:     "half a block: no from",
			yaml:     "smarthost: smtp.company.com:587\nauth_username: alertmedic\nauth_password: x\n",
			wantErrs: []string{"from: required when the email block is set (the sender, e.g. alerts@company.com)"},
		},
		{
			name:     "smarthost without port",
			yaml:     "smarthost: smtp.company.com\nfrom: alerts@company.com\n",
			wantErrs: []string{`smarthost: "smtp.company.com" is not host:port (e.g. smtp.company.com:587)`},
		},
		{
			name:     "smarthost with a bad port",
			yaml:     "smarthost: smtp.company.com:smtp\nfrom: alerts@company.com\n",
			wantErrs: []string{`smarthost: "smtp.company.com:smtp" has no valid port (1-65535)`},
		},
		{
			name:     "from is not an address",
			yaml:     "smarthost: smtp.company.com:587\nfrom: alerts\n",
			wantErrs: []string{`from: "alerts" is not an email address`},
		},
		{
			name:     "unknown tls policy",
			yaml:     seed + "tls: starttls\n",
			wantErrs: []string{`tls: "starttls" is not one of mandatory, opportunistic, none`},
		},
		{
			name:     "password without user",
			yaml:     seed + "auth_password: " + testPass + "\n",
			wantErrs: []string{"auth_password: set without auth_username"},
		},
		{
			name:     "user without password",
			yaml:     seed + "auth_username: alertmedic\n",
			wantErrs: []string{"auth_username: set without auth_password (or auth_password_file)"},
		},
		{
			name:     "password twice",
			yaml:     seed + "auth_username: alertmedic\nauth_password: " + testPass + "\nauth_password_file: smtp-password\n",
			wantErrs: []string{"auth_password: set auth_password or auth_password_file, not both"},
		},
		{
			name:     "password file missing",
			yaml:     seed + "auth_username: alertmedic\nauth_password_file: nope\n",
			wantErrs: []string{"auth_password_file: cannot read " + filepath.Join(dir, "nope") + ": no such file or directory"},
		},
		{
			name:     "password file empty",
			yaml:     seed + "auth_username: alertmedic\nauth_password_file: empty\n",
			wantErrs: []string{"auth_password_file: " + filepath.Join(dir, "empty") + " is empty"},
		},
		{
			name:     "ca_file missing",
			yaml:     seed + "ca_file: nope.pem\n",
			wantErrs: []string{"ca_file: cannot read " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		},
		{
			name:     "ca_file not PEM",
			yaml:     seed + "ca_file: not-pem\n",
			wantErrs: []string{"ca_file: " + filepath.Join(dir, "not-pem") + " holds no PEM certificate"},
		},
		{
			name: "templates that do not parse",
			yaml: seed + "subject: '{{ .Status'\ntext: '{{ range .Alerts }}'\nhtml: '{{ nope }}'\n",
			wantErrs: []string{
				`subject: render template: template: :1: unclosed action`,
				`text: render template: template: :1: unexpected EOF`,
				`html: render template: template: :1: function "nope" not defined`,
			},
		},
		{
			name: "everything wrong at once",
			yaml: "smarthost: relay\nfrom: nobody\ntls: maybe\nauth_password: " + testPass + "\n",
			wantErrs: []string{
				`smarthost: "relay" is not host:port (e.g. smtp.company.com:587)`,
				`from: "nobody" is not an email address`,
				`tls: "maybe" is not one of mandatory, opportunistic, none`,
				"auth_password: set without auth_username",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := decode(t, tc.yaml)
			errs := c.Load(dir)
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
				if strings.Contains(err.Error(), testPass) {
					t.Errorf("error quotes the password: %v", err)
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

func TestLoadRejectsUnknownKeys(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("smarthost: smtp.company.com:587\nrequire_tls: true\n"))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	if err == nil || !strings.Contains(err.Error(), "field require_tls not found") {
		t.Errorf("decode error = %v, want unknown field require_tls", err)
	}
}

func TestValidateSettings(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		want     []string
	}{
		{"the shipped example", map[string]string{"to": "oncall@company.com"}, nil},
		{"several, with names", map[string]string{"to": "oncall@company.com, Platform Team <platform@company.com>"}, nil},
		{"none", nil, []string{"to: required (the recipients, e.g. oncall@company.com)"}},
		{"blank", map[string]string{"to": "  "}, []string{"to: required (the recipients, e.g. oncall@company.com)"}},
		{"not an address", map[string]string{"to": "oncall"}, []string{`to: "oncall" is not a comma-separated list of email addresses`}},
		{
			"a secret and a typo",
			map[string]string{"to": "oncall@company.com", "auth_password": testPass, "subjet": "x"},
			[]string{
				"auth_password: the password is a secret and settings are not; set auth_password in integrations.email",
				"subjet: unknown setting (email knows to, subject, text, html)",
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
