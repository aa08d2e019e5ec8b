package app

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/config"
)

func testApp(load func(string) (*config.Config, []byte, error)) *App {
	return &App{log: zerolog.Nop(), reloading: make(chan struct{}, 1), load: load,
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ok"})}
}

// A reload whose read never finishes (a FIFO was one) held the lock every
// request takes, and SIGTERM waited for it. Now it gives up at its
// caller's deadline, holds no lock meanwhile, and a second reload is told.
func TestReloadGivesUpAtItsDeadline(t *testing.T) {
	release := make(chan struct{})
	a := testApp(func(string) (*config.Config, []byte, error) {
		<-release
		return nil, nil, errors.New("late")
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.reload(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not finish in time") {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reload did not give up at its deadline")
	}
	// The lock requests take is free.
	locked := make(chan struct{})
	go func() { a.currentConfig(); close(locked) }()
	select {
	case <-locked:
	case <-time.After(5 * time.Second):
		t.Fatal("currentConfig blocked behind the reload")
	}
	// A second reload while the first still reads: refused at its own
	// deadline; cancelling it (shutdown) ends it at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	if err := a.reload(ctx2); err == nil || !strings.Contains(err.Error(), "another reload") {
		t.Fatalf("second reload: %v", err)
	}
}

// A FIFO as the configuration file, or as a *_file, fails the load at
// once instead of blocking it.
func TestLoadConfigRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFIFO := filepath.Join(dir, "token")
	if err := syscall.Mkfifo(tokenFIFO, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yml")
	if err := os.WriteFile(good, []byte("web:\n  auth:\n    bearer_token_file: token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{fifo, good} {
		done := make(chan error, 1)
		go func() { _, _, err := loadConfig(f); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("load %s: %v", f, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("load %s blocked", f)
		}
	}
}

// Credentials are off by default; on an address other hosts can reach,
// the start says so, and names what is open.
func TestUnauthenticatedWarning(t *testing.T) {
	w := config.Default().Web
	if got := unauthenticated(w, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9095}); got != nil {
		t.Errorf("loopback: %v, want no warning", got)
	}
	if got := unauthenticated(w, &net.TCPAddr{IP: net.IPv6loopback, Port: 9095}); got != nil {
		t.Errorf("::1: %v, want no warning", got)
	}
	got := unauthenticated(w, &net.TCPAddr{IP: net.IPv6unspecified, Port: 9095})
	if len(got) != 4 || !strings.Contains(got[0], "/webhook") || !strings.Contains(got[1], "/-/reload") {
		t.Errorf("all interfaces, no auth: %v", got)
	}
	w.AdminAuth = config.HTTPAuth{BearerToken: "x"}
	if got := unauthenticated(w, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}); len(got) != 2 {
		t.Errorf("admin auth only: %v, want the webhook and the reads", got)
	}
	w.Auth = config.HTTPAuth{BearerToken: "y"}
	if got := unauthenticated(w, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}); got != nil {
		t.Errorf("web.auth set: %v, want no warning", got)
	}
}
