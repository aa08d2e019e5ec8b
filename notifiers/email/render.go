package email

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"github.com/alertmedic/alertmedic/notifiers"
)

// RenderedFrom stands in for the sender in what Render returns when c has
// none (email is not configured yet).
const RenderedFrom = "<from>"

// renderFrom is the sender the mail is built with when c has none: the
// mail needs one, and this domain (RFC 2606) cannot be anybody's.
const renderFrom = "alertmedic@unconfigured.invalid"

// Render returns the mail a Notifier with c would send for nt, as a person
// reads it: its headers in the order they are sent (encoded words decoded,
// the MIME structure left out), a blank line, and the text part. The HTML
// alternative goes with it but is not shown. It connects to nobody and
// carries no password: the mail holds none. For the log integration and
// `alertmedic template render`.
func Render(c Config, nt *notifiers.Notification) ([]byte, error) {
	unconfigured := c.From == ""
	if unconfigured {
		c.From = renderFrom
	}
	if c.Smarthost == "" {
		// Only New's check needs it: Render connects to nothing.
		c.Smarthost = "localhost:25"
	}
	n := New(c, nil)
	if n.err != nil {
		return nil, n.err
	}
	to, err := recipients(nt.Target.Settings[SettingTo])
	if err != nil {
		return nil, fmt.Errorf("build mail: %w", err)
	}
	msg, err := n.message(nt, to)
	if err != nil {
		return nil, fmt.Errorf("build mail: %w", err)
	}
	var raw bytes.Buffer
	if _, err := msg.WriteTo(&raw); err != nil {
		return nil, fmt.Errorf("build mail: %w", err)
	}
	out, err := readBack(raw.Bytes(), unconfigured)
	if err != nil {
		return nil, fmt.Errorf("read back mail: %w", err)
	}
	return out, nil
}

// readBack turns a mail as it goes on the wire into its headers and text
// part, decoded.
func readBack(raw []byte, unconfigured bool) ([]byte, error) {
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil, errors.New("no end of headers")
	}
	var out strings.Builder
	dec := new(mime.WordDecoder)
	for _, h := range unfold(string(head)) {
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "mime-version", "content-type", "content-transfer-encoding":
			continue
		case "from":
			if unconfigured {
				value = RenderedFrom
			}
		}
		if v, err := dec.DecodeHeader(value); err == nil {
			value = v
		}
		fmt.Fprintf(&out, "%s: %s\n", name, value)
	}
	out.WriteString("\n")
	text, err := textPart(raw)
	if err != nil {
		return nil, err
	}
	out.WriteString(strings.ReplaceAll(text, "\r\n", "\n"))
	return []byte(out.String()), nil
}

// unfold splits a header block into one string per header, continuation
// lines joined to theirs.
func unfold(head string) []string {
	var hs []string
	for _, l := range strings.Split(head, "\r\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(hs) > 0 {
			hs[len(hs)-1] += " " + strings.TrimLeft(l, " \t")
			continue
		}
		hs = append(hs, l)
	}
	return hs
}

// textPart is the decoded text/plain part of a mail, itself or inside a
// multipart one.
func textPart(raw []byte) (string, error) {
	m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return "", err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body := m.Body
		switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		return string(b), err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		// NextPart undoes quoted-printable.
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", errors.New("no text/plain part")
		}
		if err != nil {
			return "", err
		}
		if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" {
			b, err := io.ReadAll(p)
			return string(b), err
		}
	}
}
