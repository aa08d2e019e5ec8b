package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A *_file that is not a regular file fails the load at once with the reason,
// both in the daemon's own settings and in an integration's block: a FIFO
// would block the read for ever (no writer comes), and /dev/zero would be
// read until memory runs out.
func TestSecretFilesMustBeRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, kind string }{
		{"fifo", fifo, "a named pipe"},
		{"dev_zero", "/dev/zero", "a device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := fmt.Sprintf(`web:
  auth:
    bearer_token_file: %[1]s
  admin_auth:
    basic_auth:
      username: admin
      password_file: %[1]s
store:
  type: redis
  redis:
    url_file: %[1]s
    password_file: %[1]s
integrations:
  slack:
    api_url_file: %[1]s
  pagerduty:
    routing_key_file: %[1]s
  webhook:
    url_file: %[1]s
    bearer_token_file: %[1]s
`, tc.file)
			_, err := parseWithin(t, file)
			reason := "cannot read " + tc.file + ": not a regular file (" + tc.kind + ")"
			want := strings.Join([]string{
				"web.auth.bearer_token_file: " + reason,
				"web.admin_auth.basic_auth.password_file: " + reason,
				"store.redis.url_file: " + reason,
				"store.redis.password_file: " + reason,
				"integrations.slack: api_url_file: " + reason,
				"integrations.pagerduty: routing_key_file: " + reason,
				"integrations.webhook: url_file: " + reason,
				"integrations.webhook: bearer_token_file: " + reason,
			}, "\n")
			if err == nil || err.Error() != want {
				t.Errorf("error\n got: %v\nwant: %s", err, want)
			}
		})
	}
}

// The email integration's password file goes through the same reader.
func TestEmailPasswordFileMustBeARegularFile(t *testing.T) {
	_, err := parseWithin(t, "integrations:\n  email:\n    smarthost: smtp.example.com:587\n    from: alertmedic@example.com\n    auth_username: alertmedic\n    auth_password_file: /dev/zero\n")
	want := "integrations.email: auth_password_file: cannot read /dev/zero: not a regular file (a device)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error\n got: %v\nwant it to hold: %s", err, want)
	}
}
