package secret

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		fifo:        "not a regular file (a named pipe)",
		"/dev/zero": "not a regular file (a device)",
		dir:         "not a regular file (a directory)",
		big:         "more than the 1048576 bytes it may have",
	} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(name); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ReadFile(%s) = %v, want an error with %q", name, err, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("ReadFile(%s) still blocked after 2s", name)
		}
	}
}

func TestReadFileFollowsASymlinkToARegularFile(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "..data", "token")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("  s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "token")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var s Secret
	if err := Fill("x.token", &s, "token", dir); err != nil {
		t.Fatal(err)
	}
	if string(s) != "s3cr3t" {
		t.Fatalf("got %q", string(s))
	}
	if err := Fill("x.token", &s, "token", dir); err == nil || err.Error() != "x.token: set token or token_file, not both" {
		t.Fatalf("both set: %v", err)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	s := Secret("hunter2")
	j, _ := json.Marshal(struct{ S Secret }{s})
	for _, out := range []string{s.String(), fmt.Sprintf("%v %s %#v %+v", s, s, s, s), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret in %q", out)
		}
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret should print empty")
	}
}
