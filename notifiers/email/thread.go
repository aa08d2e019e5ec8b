package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alertmedic/alertmedic/notifiers"
)

// The mails of an alert group thread for each recipient: the group's first
// mail to a recipient is the root of its thread, whose Message-ID and
// subject its ref keeps (notifiers.RefKey("email", target key, group key,
// address), renewed by every mail of the group, so it lasts
// notifiers.RefTTL past the latest); the later ones, the resolve too, carry
// In-Reply-To and References naming the root and take its subject, which
// is what mail clients thread by (Gmail wants the subject too).
//
// The root is claimed before it is sent, atomically across replicas, so
// that two mails of a group sent at once cannot both start a thread; the
// claim names the root's Message-ID, which its retries keep (messageID).
// Refs that fail (the store is down, or slow past refTimeout) cost the
// thread, never the mail: it goes out unthreaded and the failure is
// logged.

const (
	// refTimeout bounds the refs' part of a mail, so that a slow store
	// leaves the SMTP conversation its time.
	refTimeout = 5 * time.Second
	// maxRootSubject bounds the subject a ref keeps (and so the root's
	// subject, which its replies repeat): the ref stays small, and a
	// subject past it is unreadable anyway.
	maxRootSubject = 900
	// maxRefID bounds a Message-ID read from a ref.
	maxRefID = 250
)

// root is the ref of one recipient's thread.
type root struct {
	// ID is the root's Message-ID, with its angle brackets.
	ID      string `json:"id"`
	Subject string `json:"subject"`
	// Last is the Message-ID of the group's latest mail. It changes with
	// every mail, so that every mail rewrites the ref and renews its TTL
	// (a value written unchanged is no write).
	Last string `json:"last,omitempty"`
}

// msgID is what a ref's Message-ID must look like to go into a header:
// <local@domain> in printable ASCII, no brackets or spaces inside.
var msgID = regexp.MustCompile(`^<[!-;=?-~]+@[!-;=?-~]+>$`)

func (r root) valid() bool {
	return len(r.ID) <= maxRefID && msgID.MatchString(r.ID) &&
		len(r.Subject) <= maxRootSubject+len("…") && utf8.ValidString(r.Subject) && !strings.ContainsAny(r.Subject, "\r\n")
}

// mailOut is one mail to send: recipients that share a thread.
type mailOut struct {
	to []*mail.Address
	// id is the Message-ID, without its angle brackets.
	id string
	// parent is the root's Message-ID, with them; "" when the mail starts
	// a thread or has none.
	parent  string
	subject string
}

// threaded reports whether nt's mails thread: those of an alert group,
// alerts and the digests of a group.
func (n *Notifier) threaded(nt *notifiers.Notification) bool {
	return n.refs != nil && nt.GroupKey != "" && (nt.Kind == notifiers.KindAlerts || nt.Kind == notifiers.KindDigest)
}

// threads splits nt's mail into one per thread of its recipients: usually
// one mail to all (the group's first mail is the root for each of them,
// and its later mails reply to that root for each). When the recipients'
// roots differ (an address was added to the target after the group's
// first mail, or a ref was lost) each distinct root gets its own mail to
// the recipients under it, rather than a rule picking one root for all,
// which would break the others' threads. The mail that starts threads
// keeps id, which the refs name; the replies of a split get ids derived
// from it and their root, stable through retries too.
func (n *Notifier) threads(ctx context.Context, nt *notifiers.Notification, to []*mail.Address, id, subject string) []mailOut {
	if !n.threaded(nt) {
		return []mailOut{{to: to, id: id, subject: subject}}
	}
	subject = notifiers.Cut(subject, maxRootSubject)
	own := "<" + id + ">"
	ctx, cancel := context.WithTimeout(ctx, refTimeout)
	defer cancel()
	var out []mailOut
	byParent := map[string]int{}
	for _, a := range to {
		parent, subj := "", subject
		r, err := n.claim(ctx, notifiers.RefKey("email", nt.Target.Key(), nt.GroupKey, strings.ToLower(a.Address)), root{ID: own, Subject: subject, Last: own})
		switch {
		case err != nil:
			// The key is a hash and the address is left out: the log
			// names the target only.
			n.log.Warn().Err(err).Str("target", nt.Target.Key()).Str("key", nt.Key).Msg("email thread ref unavailable; the mail goes out unthreaded")
		case r.ID != own:
			parent, subj = r.ID, r.Subject
		}
		i, ok := byParent[parent]
		if !ok {
			i = len(out)
			byParent[parent] = i
			out = append(out, mailOut{id: id, parent: parent, subject: subj})
		}
		out[i].to = append(out[i].to, a)
	}
	if len(out) > 1 {
		for i := range out {
			if out[i].parent != "" {
				sum := sha256.Sum256([]byte(id + "\x00" + out[i].parent))
				out[i].id = hex.EncodeToString(sum[:16]) + "@" + domain(n.from.Address)
			}
		}
	}
	return out
}

// claim makes mine the root under key unless a valid root is there already,
// and returns the root that is (renewed, with mine's Last).
func (n *Notifier) claim(ctx context.Context, key string, mine root) (root, error) {
	v, err := n.refs.UpdateRef(ctx, key, notifiers.RefTTL, func(old []byte) ([]byte, error) {
		r := mine
		var cur root
		if old != nil && json.Unmarshal(old, &cur) == nil && cur.valid() {
			r.ID, r.Subject = cur.ID, cur.Subject
		}
		return json.Marshal(r)
	})
	if err != nil {
		return root{}, err
	}
	var r root
	if err := json.Unmarshal(v, &r); err != nil || !r.valid() {
		// What the store answered is not what fn wrote: thread nothing on it.
		return mine, nil
	}
	return r, nil
}
