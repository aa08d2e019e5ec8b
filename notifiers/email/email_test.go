package email

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	testUser = "alertmedic"
	testPass = "s3cr3t-Hunter2-smtp-password"
)

// received is one message as the test relay saw it.
type received struct {
	TLS      bool // the connection was encrypted at MAIL FROM
	AuthUser string
	From     string
	Rcpts    []string
	Data     []byte
}

// relay is the test server's backend: it records what arrives and fails on
// demand, as a real relay would.
type relay struct {
	mu    sync.Mutex
	msgs  []received
	auths int // AUTH attempts, successful or not

	// requireAuth refuses MAIL FROM before AUTH, like a submission port.
	requireAuth bool
	// echoAuth refuses AUTH quoting the credentials back (a careless
	// relay), so that the notifier's scrubbing is tested.
	echoAuth bool
	rcptErr  error
	dataErr  error
	// stall makes DATA wait until it is closed.
	stall chan struct{}
}

func (r *relay) NewSession(c *smtp.Conn) (smtp.Session, error) { return &session{r: r, c: c}, nil }

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...)
}

func (r *relay) authAttempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auths
}

type session struct {
	r      *relay
	c      *smtp.Conn
	authed string
	cur    received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		s.r.mu.Lock()
		s.r.auths++
		s.r.mu.Unlock()
		if s.r.echoAuth {
			return fmt.Errorf("no user %s with password %s", username, password)
		}
		if username != testUser || password != testPass {
			return smtp.ErrAuthFailed
		}
		s.authed = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.requireAuth && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.c.TLSConnectionState()
	s.cur = received{TLS: isTLS, AuthUser: s.authed, From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.rcptErr != nil {
		return s.r.rcptErr
	}
	s.cur.Rcpts = append(s.cur.Rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.r.stall != nil {
		<-s.r.stall
	}
	if s.r.dataErr != nil {
		return s.r.dataErr
	}
	s.cur.Data = b
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// server is a running test relay.
type server struct {
	addr string
	// caFile is the PEM of the relay's self-signed certificate.
	caFile string
}

type serverOpts struct {
	noSTARTTLS        bool
	allowInsecureAuth bool
}

// startServer runs an SMTP server on 127.0.0.1 until the test ends: with
// STARTTLS on a certificate made for the test, and AUTH only inside TLS
// unless opts say otherwise.
func startServer(t *testing.T, r *relay, opts serverOpts) server {
	t.Helper()
	cert, caPEM := selfSigned(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(r)
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.AllowInsecureAuth = opts.allowInsecureAuth
	if !opts.noSTARTTLS {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	if r.stall != nil {
		// Registered after Close, so it runs first: a stalled session
		// must be let go before the server can shut down.
		t.Cleanup(func() { close(r.stall) })
	}
	return server{addr: l.Addr().String(), caFile: caFile}
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA, so the
// client can trust it through ca_file.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "alertmedic test relay"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// config is the shipped email block pointed at srv: STARTTLS required, AUTH
// with the known user, the relay's certificate trusted through ca_file.
func config(t *testing.T, srv server) Config {
	t.Helper()
	c := Config{
		Smarthost:    srv.addr,
		From:         "Alertmedic <alerts@company.com>",
		TLS:          TLSMandatory,
		AuthUsername: testUser,
		AuthPassword: testPass,
		CAFile:       srv.caFile,
		Timeout:      model.Duration(5 * time.Second),
	}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatalf("load: %v", errs)
	}
	return c
}

var t0 = time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)

func target(to string) routing.Target {
	return routing.Target{Receiver: "oncall", Integration: "email", Name: "email[0]", Settings: map[string]string{"to": to}}
}

// The shipped rules' alerts, as the pipeline hands them over.
func alertsNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:         "alerts:0f3c:oncall/email[0]",
		Kind:        notifiers.KindAlerts,
		Target:      target("oncall@company.com, Platform Team <platform@company.com>"),
		GroupKey:    `{}/{severity="critical"}:{alertname="HighErrorRate"}`,
		ExternalURL: "http://alertmanager.company.com:9093",
		Alerts: template.Alerts{
			{
				Status: alert.StatusFiring,
				Labels: template.KV{"alertname": "HighErrorRate", "severity": "critical", "team": "platform", "instance": "api-1:8000"},
				Annotations: template.KV{
					"summary":     "High error rate detected",
					"description": "Error rate is 7.5% (> 5% threshold) & rising",
					"runbook_url": "https://docs.company.com/runbooks/high-error-rate",
				},
				StartsAt:     t0,
				GeneratorURL: "http://prometheus.company.com:9090/graph?g0.expr=rate%28http_requests_total%5B5m%5D%29",
				Fingerprint:  "a1b2c3d4e5f60718",
			},
			{
				Status: alert.StatusResolved,
				Labels: template.KV{"alertname": "HighErrorRate", "severity": "critical", "team": "platform", "instance": "api-2:8000"},
				Annotations: template.KV{
					"summary":     "High error rate detected",
					"description": "Error rate is 5.2% for the last 5 minutes",
				},
				StartsAt:    t0.Add(-10 * time.Minute),
				EndsAt:      t0,
				Fingerprint: "b1b2c3d4e5f60718",
			},
		},
	}
}

func resolvedNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "alerts:77aa:oncall/email[0]",
		Kind:   notifiers.KindAlerts,
		Target: target("oncall@company.com"),
		Alerts: template.Alerts{{
			Status: alert.StatusResolved,
			Labels: template.KV{"alertname": "ServiceDown", "severity": "critical", "team": "platform", "instance": "api-1:8000"},
			Annotations: template.KV{
				"summary":     "Service api-1:8000 is down",
				"description": "api-1:8000 has been down for more than 1 minute",
				"runbook_url": "https://docs.company.com/runbooks/service-down",
			},
			StartsAt:    t0,
			EndsAt:      t0.Add(4 * time.Minute),
			Fingerprint: "c1b2c3d4e5f60718",
		}},
	}
}

func flappingNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "flap:9e1d:started:1705314600000000000:ops/email[0]",
		Kind:   notifiers.KindFlappingStarted,
		Target: target("ops@company.com"),
		Text:   `alert ExternalAPIFailure {alertname="ExternalAPIFailure", api="bright_data"} is flapping: 6 changes in 10m0s. Its notifications are held back until it is stable for 15m0s.`,
		Facts:  map[string]string{"alertname": "ExternalAPIFailure", "changes": "6", "window": "10m0s", "percent": "60.0", "method": "changes"},
		Alerts: template.Alerts{{
			Status: alert.StatusFiring,
			Labels: template.KV{"alertname": "ExternalAPIFailure", "api": "bright_data"},
		}},
	}
}

func digestNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "digest:oncall/email[0]:1705381200000000000",
		Kind:   notifiers.KindDigest,
		Target: target("oncall@company.com"),
		Alerts: template.Alerts{
			{
				Status:      alert.StatusFiring,
				Labels:      template.KV{"alertname": "LowCacheHitRate", "severity": "warning", "team": "platform"},
				Annotations: template.KV{"summary": "Cache hit rate is low", "description": "Cache hit rate is 41%"},
				StartsAt:    t0,
				Fingerprint: "d1b2c3d4e5f60718",
			},
			{
				Status:      alert.StatusResolved,
				Labels:      template.KV{"alertname": "SlowResponseTime", "severity": "warning", "team": "platform"},
				Annotations: template.KV{"summary": "API response time is slow"},
				StartsAt:    t0,
				EndsAt:      t0.Add(time.Hour),
				Fingerprint: "e1b2c3d4e5f60718",
			},
		},
	}
}

// TestNotifyGolden runs real SMTP conversations (STARTTLS, then AUTH
// PLAIN) and compares what the relay received with testdata/*.golden.
func TestNotifyGolden(t *testing.T) {
	cases := []struct {
		name  string
		n     *notifiers.Notification
		rcpts []string
	}{
		{"alerts", alertsNotification(), []string{"oncall@company.com", "platform@company.com"}},
		{"resolved", resolvedNotification(), []string{"oncall@company.com"}},
		{"flapping_started", flappingNotification(), []string{"ops@company.com"}},
		{"digest", digestNotification(), []string{"oncall@company.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &relay{requireAuth: true}
			srv := startServer(t, r, serverOpts{})
			retry, err := New(config(t, srv), nil).Notify(context.Background(), tc.n)
			if err != nil || retry {
				t.Fatalf("Notify = %v, %v; want delivered", retry, err)
			}
			msgs := r.messages()
			if len(msgs) != 1 {
				t.Fatalf("relay received %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if !m.TLS {
				t.Error("message was sent before STARTTLS")
			}
			if m.AuthUser != testUser {
				t.Errorf("authenticated as %q, want %q", m.AuthUser, testUser)
			}
			if m.From != "alerts@company.com" {
				t.Errorf("MAIL FROM %q, want alerts@company.com", m.From)
			}
			if strings.Join(m.Rcpts, ",") != strings.Join(tc.rcpts, ",") {
				t.Errorf("RCPT TO %q, want %q", m.Rcpts, tc.rcpts)
			}
			golden(t, tc.name+".golden", readable(t, m))
			if tc.name == "alerts" {
				golden(t, "alerts.eml.golden", normalise(t, m.Data))
			}
			if bytes.Contains(m.Data, []byte(testPass)) {
				t.Error("the message carries the password")
			}
		})
	}
}

// readable renders a received message for its golden file: the envelope,
// the headers a reader sees, and each part decoded.
func readable(t *testing.T, m received) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM: <%s>\n", m.From)
	for _, r := range m.Rcpts {
		fmt.Fprintf(&b, "RCPT TO: <%s>\n", r)
	}
	dec := new(mime.WordDecoder)
	for _, h := range []string{"From", "To", "Subject", "Message-Id", "Auto-Submitted", "User-Agent", "Mime-Version"} {
		v, err := dec.DecodeHeader(msg.Header.Get(h))
		if err != nil {
			t.Fatalf("decode %s: %v", h, err)
		}
		fmt.Fprintf(&b, "%s: %s\n", h, v)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		var body io.Reader = p
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			body = quotedprintable.NewReader(p)
		}
		content, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		fmt.Fprintf(&b, "\n----- %s -----\n%s", p.Header.Get("Content-Type"), strings.ReplaceAll(string(content), "\r\n", "\n"))
	}
	return []byte(b.String())
}

var (
	dateRe     = regexp.MustCompile(`(?m)^Date: .*$`)
	boundaryRe = regexp.MustCompile(`boundary="?([^"\r\n;]+)"?`)
)

// normalise makes a raw message comparable: the date and the MIME
// boundary change with every mail.
func normalise(t *testing.T, data []byte) []byte {
	t.Helper()
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	s = dateRe.ReplaceAllString(s, "Date: <date>")
	m := boundaryRe.FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no MIME boundary in the message")
	}
	return []byte(strings.ReplaceAll(s, m[1], "<boundary>"))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// assertNoSecret is the secret-leak check every failure goes through.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))
	for _, s := range []string{testPass, plain, testPass[:12]} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error carries the password (%q): %v", s, err)
		}
	}
}

func TestNotifyFailures(t *testing.T) {
	smtpErr := func(code int, text string) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: text}
	}
	cases := []struct {
		name   string
		relay  *relay
		opts   serverOpts
		config func(*Config)
		// wantErr is a part of the error text.
		wantErr   string
		wantRetry bool
		// wantAuths is how many AUTH attempts the relay saw (-1: any).
		wantAuths int
	}{
		{
			name:      "wrong password",
			relay:     &relay{},
			config:    func(c *Config) { c.AuthPassword = "not-" + testPass },
			wantErr:   "SMTP AUTH failed: 535",
			wantRetry: false,
			wantAuths: 1,
		},
		{
			name:      "temporary failure at RCPT",
			relay:     &relay{rcptErr: smtpErr(451, "Greylisted, try again later")},
			wantErr:   "sending SMTP RCPT TO command: 451",
			wantRetry: true,
			wantAuths: 1,
		},
		{
			name:      "permanent failure at RCPT",
			relay:     &relay{rcptErr: smtpErr(550, "No such user")},
			wantErr:   "sending SMTP RCPT TO command: 550",
			wantRetry: false,
			wantAuths: 1,
		},
		{
			name:      "temporary failure after DATA",
			relay:     &relay{dataErr: smtpErr(451, "Local error in processing")},
			wantErr:   "closing SMTP DATA writer: 451",
			wantRetry: true,
			wantAuths: 1,
		},
		{
			name:      "permanent failure after DATA",
			relay:     &relay{dataErr: smtpErr(554, "Message rejected as spam")},
			wantErr:   "closing SMTP DATA writer: 554",
			wantRetry: false,
			wantAuths: 1,
		},
		{
			name:      "tls mandatory, relay without STARTTLS",
			relay:     &relay{},
			opts:      serverOpts{noSTARTTLS: true},
			wantErr:   "does not support STARTTLS",
			wantRetry: false,
			wantAuths: 0,
		},
		{
			// The relay offers AUTH PLAIN in clear; the password must not
			// follow.
			name:      "tls opportunistic, relay without STARTTLS offering AUTH in clear",
			relay:     &relay{},
			opts:      serverOpts{noSTARTTLS: true, allowInsecureAuth: true},
			config:    func(c *Config) { c.TLS = TLSOpportunistic },
			wantErr:   "autodiscover",
			wantRetry: false,
			wantAuths: 0,
		},
		{
			name:      "certificate not trusted",
			relay:     &relay{},
			config:    func(c *Config) { c.CAFile = "" },
			wantErr:   "certificate",
			wantRetry: false,
			wantAuths: 0,
		},
		{
			name:      "relay quotes the credentials back",
			relay:     &relay{echoAuth: true},
			wantErr:   "no user alertmedic with password <secret>",
			wantRetry: true,
			wantAuths: 1,
		},
		{
			name:      "relay stalls past the timeout",
			relay:     &relay{stall: make(chan struct{})},
			config:    func(c *Config) { c.Timeout = model.Duration(300 * time.Millisecond) },
			wantErr:   ": email timeout (300ms) reached",
			wantRetry: true,
			wantAuths: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.relay, tc.opts)
			c := config(t, srv)
			if tc.config != nil {
				tc.config(&c)
			}
			retry, err := New(c, nil).Notify(context.Background(), alertsNotification())
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			t.Logf("retry=%v error: %v", retry, err)
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v (error: %v)", retry, tc.wantRetry, err)
			}
			if got := tc.relay.authAttempts(); tc.wantAuths >= 0 && got != tc.wantAuths {
				t.Errorf("relay saw %d AUTH attempts, want %d", got, tc.wantAuths)
			}
			if n := len(tc.relay.messages()); n != 0 {
				t.Errorf("relay accepted %d messages, want none", n)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestNotifyDelivers(t *testing.T) {
	cases := []struct {
		name    string
		opts    serverOpts
		config  func(*Config)
		wantTLS bool
	}{
		{
			name:    "insecure_skip_verify instead of ca_file",
			config:  func(c *Config) { c.CAFile, c.InsecureSkipVerify = "", true },
			wantTLS: true,
		},
		{
			name:   "tls opportunistic, relay without STARTTLS, no auth",
			opts:   serverOpts{noSTARTTLS: true},
			config: func(c *Config) { c.TLS, c.AuthUsername, c.AuthPassword = TLSOpportunistic, "", "" },
		},
		{
			name:   "tls none on a relay offering STARTTLS",
			config: func(c *Config) { c.TLS, c.AuthUsername, c.AuthPassword = TLSNone, "", "" },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &relay{}
			srv := startServer(t, r, tc.opts)
			c := config(t, srv)
			tc.config(&c)
			retry, err := New(c, nil).Notify(context.Background(), resolvedNotification())
			if err != nil || retry {
				t.Fatalf("Notify = %v, %v; want delivered", retry, err)
			}
			msgs := r.messages()
			if len(msgs) != 1 {
				t.Fatalf("relay received %d messages, want 1", len(msgs))
			}
			if msgs[0].TLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", msgs[0].TLS, tc.wantTLS)
			}
		})
	}
}

func TestNotifyWithoutConversation(t *testing.T) {
	// A port nothing listens on: taken, then given back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()

	base := Config{Smarthost: closed, From: "alerts@company.com", AuthUsername: testUser, AuthPassword: testPass}
	cases := []struct {
		name      string
		config    Config
		n         func() *notifiers.Notification
		ctx       func() context.Context
		wantErr   string
		wantRetry bool
	}{
		{
			name:      "connection refused",
			config:    base,
			wantErr:   "connection refused",
			wantRetry: true,
		},
		{
			name:   "canceled",
			config: base,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr:   "context canceled",
			wantRetry: true,
		},
		{
			name:   "no recipients",
			config: base,
			n: func() *notifiers.Notification {
				n := alertsNotification()
				n.Target.Settings = nil
				return n
			},
			wantErr: "build mail: to: required",
		},
		{
			name:   "bad recipient",
			config: base,
			n: func() *notifiers.Notification {
				n := alertsNotification()
				n.Target.Settings["to"] = "oncall"
				return n
			},
			wantErr: `build mail: to: "oncall" is not a comma-separated list of email addresses`,
		},
		{
			name:    "not configured",
			config:  Config{AuthPassword: testPass},
			wantErr: "email is not configured: set smarthost and from in integrations.email",
		},
		{
			name:    "template fails",
			config:  Config{Smarthost: closed, From: "alerts@company.com", Subject: `{{ template "nope" . }}`},
			wantErr: `build mail: subject: render template: template: :1:12: executing "" at <{{template "nope" .}}>: template "nope" not defined`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			n := alertsNotification()
			if tc.n != nil {
				n = tc.n()
			}
			retry, err := New(tc.config, nil).Notify(ctx, n)
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			t.Logf("retry=%v error: %v", retry, err)
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v (error: %v)", retry, tc.wantRetry, err)
			}
			assertNoSecret(t, err)
		})
	}
}

// TestConfigPrintsNoSecret: a Config reaching a log line or a config dump
// shows <secret>, not the password.
func TestConfigPrintsNoSecret(t *testing.T) {
	c := Config{Smarthost: "smtp.company.com:587", From: "alerts@company.com", AuthUsername: testUser, AuthPassword: testPass}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", New(c, nil)), fmt.Sprintf("%#v", New(c, nil)), fmt.Sprintf("%v", *New(c, nil))} {
		if strings.Contains(s, testPass) {
			t.Errorf("printed config carries the password: %s", s)
		}
	}
}

// The Message-ID a mail goes out with is MessageID of its notification's
// key and sender: the one an alert's timeline names its delivery by.
func TestMessageIDIsTheTimelines(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	c := config(t, srv)
	nt := alertsNotification()
	if retry, err := New(c, nil).Notify(context.Background(), nt); err != nil || retry {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	msgs := r.messages()
	if len(msgs) != 1 {
		t.Fatalf("relay received %d messages", len(msgs))
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get("Message-Id"), "<"+MessageID(nt.Key, c.From)+">"; got != want {
		t.Errorf("Message-Id %q, want %q", got, want)
	}
}
