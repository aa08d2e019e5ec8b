// Package email is the email integration: one mail per notification, with
// a plain-text and an HTML part, sent through one SMTP relay with STARTTLS
// and SMTP AUTH (github.com/wneessen/go-mail). It owns its configuration
// block (integrations.email), the default subject and bodies and the
// classification of the relay's answers into retry
// (4xx, lost connections, timeouts) or give up (5xx); backoff is the
// pipeline's. With refs it threads the mails of an alert group for each
// recipient (thread.go).
package email

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	gomail "github.com/wneessen/go-mail"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
)

var _ notifiers.Notifier = (*Notifier)(nil)

// Notifier sends notifications by mail. It is safe for concurrent use: each
// Notify has its own SMTP connection.
type Notifier struct {
	cfg    Config
	host   string
	port   int
	policy gomail.TLSPolicy
	from   *mail.Address
	tls    *tls.Config
	// err is a Config that New could not use (it was not loaded, or its
	// CA file went away since); every Notify reports it.
	err error
	// secrets are the strings no error may carry: the password and the
	// AUTH PLAIN exchange that carries it.
	secrets outbound.Secrets
	// refs keep each group's thread roots, by recipient; nil keeps none.
	refs notifiers.Refs
	// log hears of refs that could not be read or written (the mail went
	// out unthreaded); silent unless WithLogger.
	log zerolog.Logger
}

// New returns a Notifier for a loaded Config. refs keep the thread root of
// each alert group and recipient, so that a group's later mails reply to
// its first; nil keeps no threads (each mail stands alone, with its own
// Message-ID all the same).
func New(c Config, refs notifiers.Refs) *Notifier {
	c.setDefaults()
	n := &Notifier{cfg: c, refs: refs, log: zerolog.Nop()}
	n.err = n.init()
	if c.AuthPassword != "" {
		n.secrets = outbound.NewSecrets(
			// What AUTH PLAIN puts on the wire, should a relay quote it back.
			base64.StdEncoding.EncodeToString([]byte("\x00"+c.AuthUsername+"\x00"+string(c.AuthPassword))),
			string(c.AuthPassword),
		)
	}
	return n
}

// WithLogger makes n log the refs it could not read or write (the mail
// went out unthreaded) to l, and returns n.
func (n *Notifier) WithLogger(l zerolog.Logger) *Notifier {
	n.log = l
	return n
}

// PerMessage is how many alerts one mail lists (max_alerts).
func (n *Notifier) PerMessage() int { return n.cfg.MaxAlerts }

// String describes the Notifier without its credentials: fmt would print
// unexported fields as they are, Secret or not.
func (n Notifier) String() string { return "email via " + n.cfg.Smarthost }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

func (n *Notifier) init() error {
	if !n.cfg.Configured() {
		return errors.New("email is not configured: set smarthost and from in integrations.email")
	}
	host, port, err := net.SplitHostPort(n.cfg.Smarthost)
	if err != nil {
		return fmt.Errorf("smarthost: %q is not host:port", n.cfg.Smarthost)
	}
	if n.port, err = strconv.Atoi(port); err != nil {
		return fmt.Errorf("smarthost: %q has no valid port", n.cfg.Smarthost)
	}
	n.host = host
	if n.from, err = mail.ParseAddress(n.cfg.From); err != nil {
		return fmt.Errorf("from: %q is not an email address", n.cfg.From)
	}
	if n.policy, err = tlsPolicy(n.cfg.TLS); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	n.tls = &tls.Config{
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		// Off unless the operator asked for it, for a test or self-signed
		// relay; ca_file is the better way.
		InsecureSkipVerify: n.cfg.InsecureSkipVerify, //nolint:gosec
	}
	if n.cfg.CAFile != "" {
		if n.tls.RootCAs, err = loadCA(n.cfg.CAFile); err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
	}
	return nil
}

func tlsPolicy(s string) (gomail.TLSPolicy, error) {
	switch s {
	case TLSMandatory:
		return gomail.TLSMandatory, nil
	case TLSOpportunistic, "":
		return gomail.TLSOpportunistic, nil
	case TLSNone:
		return gomail.NoTLS, nil
	}
	return 0, fmt.Errorf("%q is not one of %s, %s, %s", s, TLSMandatory, TLSOpportunistic, TLSNone)
}

// Notify sends nt as one mail to the target's settings.to. It says to retry
// on 4xx answers, lost connections and timeouts, and not on 5xx answers or
// on a configuration the relay refuses (no STARTTLS when it is mandatory,
// an unverifiable certificate, no usable AUTH mechanism), which a retry
// would not change.
func (n *Notifier) Notify(ctx context.Context, nt *notifiers.Notification) (bool, error) {
	if n.err != nil {
		return false, n.err
	}
	to, err := recipients(nt.Target.Settings[SettingTo])
	if err != nil {
		return false, fmt.Errorf("build mail: %w", err)
	}
	msgs, err := n.messages(ctx, nt, to)
	if err != nil {
		return false, fmt.Errorf("build mail: %w", err)
	}

	ctx, cancel := context.WithTimeoutCause(ctx, time.Duration(n.cfg.Timeout), fmt.Errorf("email timeout (%s) reached", n.cfg.Timeout))
	defer cancel()
	var (
		conn net.Conn
		stop func() bool
	)
	defer func() {
		if stop != nil {
			stop()
		}
		// go-mail leaves the connection open when the conversation fails
		// before QUIT (AUTH refused, STARTTLS missing).
		if conn != nil {
			_ = conn.Close()
		}
	}()
	opts := []gomail.Option{
		gomail.WithPort(n.port),
		gomail.WithTLSPolicy(n.policy),
		gomail.WithTLSConfig(n.tls),
		// go-mail bounds each read and write by this, not the whole
		// conversation; closing the connection when ctx ends does that.
		// A second more, so that the whole conversation's bound is the one
		// that stops it and says so, even when a read started at once.
		gomail.WithTimeout(time.Duration(n.cfg.Timeout) + time.Second),
		gomail.WithDialContextFunc(func(dctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// go-mail only gives ctx to the dial: this is what stops a
			// relay that stalls mid-DATA when ctx (the pipeline's attempt
			// or the timeout above) ends.
			conn, stop = c, context.AfterFunc(ctx, func() { _ = c.Close() })
			return c, nil
		}),
	}
	if n.cfg.AuthUsername != "" {
		opts = append(opts,
			// The strongest mechanism the relay offers; go-mail leaves
			// PLAIN and LOGIN out unless the connection is encrypted, so
			// the password never crosses the network in clear.
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(n.cfg.AuthUsername),
			gomail.WithPassword(string(n.cfg.AuthPassword)),
		)
	}
	client, err := gomail.NewClient(n.host, opts...)
	if err != nil {
		return false, n.scrub(fmt.Errorf("create smtp client: %w", err))
	}

	// Dial, send and quit one by one rather than DialAndSendWithContext,
	// which joins QUIT's failure to the send's into a two-line error.
	op := "connect to"
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err == nil {
		op = "send mail via"
		// Several mails only when the recipients' threads differ; the
		// first that fails ends the conversation, and the retry sends
		// them all again, each with the Message-ID it had.
		for _, m := range msgs {
			if err = client.SendWithSMTPClient(sc, m); err != nil && !m.IsDelivered() {
				break
			}
			err = nil
		}
		// A failed QUIT changes nothing: the relay has the message or
		// the send already failed.
		_ = client.CloseWithSMTPClient(sc)
	}
	if err == nil {
		return false, nil
	}
	if errors.Is(err, gomail.ErrNoSupportedAuthDiscovered) {
		err = fmt.Errorf("authenticate: the relay offers no mechanism safe to use here (PLAIN and LOGIN need TLS: set tls: mandatory or check the relay's STARTTLS): %w", err)
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
	}
	return retryable(ctx, err), n.scrub(fmt.Errorf("%s %s: %w", op, n.cfg.Smarthost, err))
}

// retryable classifies a failed conversation.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		if se.IsTemp() {
			return true
		}
		if se.ErrorCode() >= 500 {
			return false
		}
		switch se.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			// go-mail could not build the envelope: the same next time.
			return false
		}
		// No reply code: the connection broke (NOOP, a write, DATA).
		return true
	}
	// A reply to the greeting, EHLO, STARTTLS or AUTH.
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code/100 == 4
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		// The relay's certificate will not verify next time either: fix
		// ca_file (or the relay).
		return false
	}
	if errors.Is(err, gomail.ErrNoSupportedAuthDiscovered) {
		return false
	}
	// go-mail returns these as plain strings; the tests pin them.
	msg := err.Error()
	if strings.Contains(msg, "does not support STARTTLS") || strings.Contains(msg, "does not support SMTP AUTH") {
		return false
	}
	// Anything else (refused, reset, EOF, DNS) is the network's: worth
	// another try.
	return true
}

// scrub keeps the password out of an error even when a relay quotes the
// AUTH exchange back in its reply.
func (n *Notifier) scrub(err error) error { return n.secrets.Scrub(err) }

// messages builds the mails of nt: one to all of to, or one per thread
// when the recipients' threads differ (thread.go).
func (n *Notifier) messages(ctx context.Context, nt *notifiers.Notification, to []*mail.Address) ([]*gomail.Msg, error) {
	subject, err := n.subject(nt)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	text, err := render(notifiers.TemplateFor(nt, notifiers.SettingText, n.cfg.Text), nt, false)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	// Templates that end each alert with a blank line leave a trail of
	// them; one newline ends the part.
	text = strings.TrimRight(text, "\n") + "\n"
	html, err := render(notifiers.TemplateFor(nt, notifiers.SettingHTML, n.cfg.HTML), nt, true)
	if err != nil {
		return nil, fmt.Errorf("html: %w", err)
	}
	id, err := n.messageID(nt)
	if err != nil {
		return nil, err
	}
	var msgs []*gomail.Msg
	for _, p := range n.threads(ctx, nt, to, id, subject) {
		msgs = append(msgs, n.build(p, text, html))
	}
	return msgs, nil
}

// message builds nt's mail to all of to, as it goes out without refs (for
// Render: a rendering claims no thread).
func (n *Notifier) message(nt *notifiers.Notification, to []*mail.Address) (*gomail.Msg, error) {
	msgs, err := (&Notifier{cfg: n.cfg, from: n.from}).messages(context.Background(), nt, to)
	if err != nil {
		return nil, err
	}
	return msgs[0], nil
}

// messageID is the local part and domain of a mail's Message-ID (without
// the angle brackets): random@domain of from ("alertmedic" without one),
// the random part derived from the notification's key when it has one.
// The key is the notification's identity: a retry of a mail the relay took
// but did not acknowledge carries the same Message-ID, which lets mail
// systems drop the duplicate, and a thread's root keeps the Message-ID its
// ref names through its retries.
func (n *Notifier) messageID(nt *notifiers.Notification) (string, error) {
	if nt.Key != "" {
		return MessageID(nt.Key, n.from.Address), nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("message-id: %w", err)
	}
	return hex.EncodeToString(b[:]) + "@" + domain(n.from.Address), nil
}

// MessageID is the Message-ID (without its angle brackets) of the mail of
// the notification keyed key, sent from from (the configured sender, an
// address with or without a name): what an alert's timeline names its
// delivery by. (The rare mail split off to recipients whose thread has
// another root gets an ID derived from this one and its root.)
func MessageID(key, from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		from = a.Address
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16]) + "@" + domain(from)
}

// build makes one mail: headers, the text part and the HTML alternative.
func (n *Notifier) build(p mailOut, text, html string) *gomail.Msg {
	m := gomail.NewMsg()
	m.FromMailAddress(n.from)
	m.ToMailAddress(p.to...)
	m.Subject(p.subject)
	m.SetDate()
	m.SetMessageIDWithValue(p.id)
	if p.parent != "" {
		// RFC 5322 3.6.4: the reply names its parent in both; clients
		// that thread by References alone (most) and those that read
		// In-Reply-To find the root either way.
		m.SetGenHeader(gomail.HeaderInReplyTo, p.parent)
		m.SetGenHeader(gomail.HeaderReferences, p.parent)
	}
	m.SetUserAgent("alertmedic")
	// RFC 3834: out-of-office responders must not answer alerts.
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return m
}

// subject is the rendered template for alerts; alertmedic's notices and
// digests say what they are instead, which an alert template cannot.
func (n *Notifier) subject(nt *notifiers.Notification) (string, error) {
	var s string
	switch nt.Kind {
	case notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation:
		s = "[alertmedic] " + nt.Text
	case notifiers.KindDigest:
		s = "Digest: " + digestCount(len(nt.Alerts)) + " held during quiet hours"
	default:
		var err error
		if s, err = render(notifiers.TemplateFor(nt, notifiers.SettingSubject, n.cfg.Subject), nt, false); err != nil {
			return "", err
		}
	}
	// A header is one line.
	return strings.Join(strings.Fields(s), " "), nil
}

func digestCount(n int) string {
	if n == 1 {
		return "1 alert"
	}
	return strconv.Itoa(n) + " alerts"
}

func domain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "alertmedic"
}
