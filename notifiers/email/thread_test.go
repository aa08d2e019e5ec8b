package email

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store/memory"
)

// head is what threading shows of a received mail.
type head struct {
	rcpts                                     string
	messageID, inReplyTo, references, subject string
}

func heads(t *testing.T, r *relay) []head {
	t.Helper()
	var out []head
	dec := new(mime.WordDecoder)
	for _, m := range r.messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("read message: %v", err)
		}
		subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, head{
			rcpts:      strings.Join(m.Rcpts, ","),
			messageID:  msg.Header.Get("Message-Id"),
			inReplyTo:  msg.Header.Get("In-Reply-To"),
			references: msg.Header.Get("References"),
			subject:    subject,
		})
	}
	return out
}

// groupMail is a mail of the group named group to, firing or resolved.
func groupMail(key, group, to, status string) *notifiers.Notification {
	a := template.Alert{
		Status:      status,
		Labels:      template.KV{"alertname": group, "severity": "critical"},
		Annotations: template.KV{"summary": group + " is down"},
		StartsAt:    t0,
		Fingerprint: "f-" + group,
	}
	if status == alert.StatusResolved {
		a.EndsAt = t0.Add(time.Hour)
	}
	return &notifiers.Notification{
		Key:      key,
		Kind:     notifiers.KindAlerts,
		Target:   target(to),
		GroupKey: `{}:{alertname="` + group + `"}`,
		Alerts:   template.Alerts{a},
	}
}

func send(t *testing.T, n *Notifier, nt *notifiers.Notification) {
	t.Helper()
	if retry, err := n.Notify(context.Background(), nt); err != nil || retry {
		t.Fatalf("Notify(%s) = %v, %v; want delivered", nt.Key, retry, err)
	}
}

func memRefs() notifiers.Refs { return notifiers.StoreRefs(memory.New(memory.Options{})) }

func TestThreadFiringThenResolved(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	n := New(config(t, srv), memRefs())
	send(t, n, groupMail("k1", "ServiceDown", "oncall@company.com", alert.StatusFiring))
	// A retry of the root (same key) is the root still, not a reply to
	// itself.
	send(t, n, groupMail("k1", "ServiceDown", "oncall@company.com", alert.StatusFiring))
	send(t, n, groupMail("k2", "ServiceDown", "oncall@company.com", alert.StatusResolved))

	hs := heads(t, r)
	if len(hs) != 3 {
		t.Fatalf("%d mails, want 3", len(hs))
	}
	root, retry, resolve := hs[0], hs[1], hs[2]
	if root.messageID == "" || !strings.HasSuffix(root.messageID, "@company.com>") {
		t.Errorf("root Message-ID %q, want <...@company.com>", root.messageID)
	}
	if root.inReplyTo != "" || root.references != "" || retry.inReplyTo != "" || retry.references != "" {
		t.Errorf("the root carries In-Reply-To %q / References %q (retry %q / %q), want none", root.inReplyTo, root.references, retry.inReplyTo, retry.references)
	}
	if retry.messageID != root.messageID {
		t.Errorf("the root's retry has Message-ID %q, want the root's %q", retry.messageID, root.messageID)
	}
	if resolve.inReplyTo != root.messageID || resolve.references != root.messageID {
		t.Errorf("resolve In-Reply-To %q, References %q; want both %q", resolve.inReplyTo, resolve.references, root.messageID)
	}
	if resolve.messageID == root.messageID || resolve.messageID == "" {
		t.Errorf("resolve Message-ID %q, want its own", resolve.messageID)
	}
	if resolve.subject != root.subject || root.subject != "CRITICAL: ServiceDown - ServiceDown is down" {
		t.Errorf("subjects %q, %q; want both the root's", root.subject, resolve.subject)
	}
}

func TestThreadPerGroup(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	n := New(config(t, srv), memRefs())
	send(t, n, groupMail("a1", "ServiceDown", "oncall@company.com", alert.StatusFiring))
	send(t, n, groupMail("b1", "DiskFull", "oncall@company.com", alert.StatusFiring))
	send(t, n, groupMail("b2", "DiskFull", "oncall@company.com", alert.StatusResolved))
	send(t, n, groupMail("a2", "ServiceDown", "oncall@company.com", alert.StatusResolved))

	hs := heads(t, r)
	if len(hs) != 4 {
		t.Fatalf("%d mails, want 4", len(hs))
	}
	a1, b1, b2, a2 := hs[0], hs[1], hs[2], hs[3]
	if b1.inReplyTo != "" || a1.messageID == b1.messageID {
		t.Errorf("the second group's first mail replies to %q (Message-ID %q, first group's %q), want a thread of its own", b1.inReplyTo, b1.messageID, a1.messageID)
	}
	if b2.inReplyTo != b1.messageID || b2.references != b1.messageID || b2.subject != b1.subject {
		t.Errorf("DiskFull resolve: In-Reply-To %q, References %q, Subject %q; want %q and %q", b2.inReplyTo, b2.references, b2.subject, b1.messageID, b1.subject)
	}
	if a2.inReplyTo != a1.messageID || a2.references != a1.messageID || a2.subject != a1.subject {
		t.Errorf("ServiceDown resolve: In-Reply-To %q, References %q, Subject %q; want %q and %q", a2.inReplyTo, a2.references, a2.subject, a1.messageID, a1.subject)
	}

	// Another target's mails of the same group are another thread.
	other := groupMail("a3", "ServiceDown", "oncall@company.com", alert.StatusResolved)
	other.Target.Name = "email[1]"
	send(t, n, other)
	if h := heads(t, r)[4]; h.inReplyTo != "" {
		t.Errorf("another target's mail replies to %q, want a thread of its own", h.inReplyTo)
	}
}

// A recipient added after the group's first mail has no root yet: it gets
// a mail of its own, the root of its thread, while the others' mail
// replies to theirs.
func TestThreadRecipientsWithDifferentRoots(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	n := New(config(t, srv), memRefs())
	send(t, n, groupMail("k1", "ServiceDown", "oncall@company.com", alert.StatusFiring))
	send(t, n, groupMail("k2", "ServiceDown", "oncall@company.com, Platform <platform@company.com>", alert.StatusResolved))

	hs := heads(t, r)
	if len(hs) != 3 {
		t.Fatalf("%d mails, want 3 (the second split in two)", len(hs))
	}
	root, reply, newRoot := hs[0], hs[1], hs[2]
	if reply.rcpts != "oncall@company.com" || reply.inReplyTo != root.messageID {
		t.Errorf("mail to %s replies to %q, want oncall@company.com replying to %q", reply.rcpts, reply.inReplyTo, root.messageID)
	}
	if newRoot.rcpts != "platform@company.com" || newRoot.inReplyTo != "" {
		t.Errorf("mail to %s replies to %q, want platform@company.com starting its thread", newRoot.rcpts, newRoot.inReplyTo)
	}
	if reply.messageID == newRoot.messageID {
		t.Errorf("the two mails of a split share Message-ID %s", reply.messageID)
	}

	// Each keeps its thread from then on.
	send(t, n, groupMail("k3", "ServiceDown", "oncall@company.com, Platform <platform@company.com>", alert.StatusFiring))
	hs = heads(t, r)
	if len(hs) != 5 {
		t.Fatalf("%d mails, want 5 (the third split in two as well)", len(hs))
	}
	if hs[3].rcpts != "oncall@company.com" || hs[3].inReplyTo != root.messageID {
		t.Errorf("oncall's next mail: %+v, want a reply to %q", hs[3], root.messageID)
	}
	if hs[4].rcpts != "platform@company.com" || hs[4].inReplyTo != newRoot.messageID {
		t.Errorf("platform's next mail: %+v, want a reply to %q", hs[4], newRoot.messageID)
	}
}

// failingRefs is a store that is down.
type failingRefs struct{}

var errStoreDown = errors.New("store down: dial tcp 10.0.0.7:6379: connection refused")

func (failingRefs) Ref(context.Context, string) ([]byte, error) { return nil, errStoreDown }

func (failingRefs) UpdateRef(context.Context, string, time.Duration, func([]byte) ([]byte, error)) ([]byte, error) {
	return nil, errStoreDown
}

func TestThreadRefsFailing(t *testing.T) {
	r := &relay{requireAuth: true}
	srv := startServer(t, r, serverOpts{})
	var logs bytes.Buffer
	n := New(config(t, srv), failingRefs{}).WithLogger(zerolog.New(&logs))
	send(t, n, groupMail("k1", "ServiceDown", "oncall@company.com", alert.StatusFiring))
	send(t, n, groupMail("k2", "ServiceDown", "oncall@company.com", alert.StatusResolved))
	hs := heads(t, r)
	if len(hs) != 2 {
		t.Fatalf("%d mails, want 2: the refs failing must not lose them", len(hs))
	}
	for _, h := range hs {
		if h.messageID == "" || h.inReplyTo != "" || h.references != "" {
			t.Errorf("mail %+v, want a Message-ID and no threading", h)
		}
	}
	if !strings.Contains(logs.String(), "unthreaded") || !strings.Contains(logs.String(), "store down") {
		t.Errorf("log %q, want the failure", logs.String())
	}
	for _, s := range []string{testPass, "oncall@company.com"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log carries %q: %s", s, logs.String())
		}
	}
}

func TestThreadOnlyGroups(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	n := New(config(t, srv), memRefs())
	noGroup := groupMail("k1", "ServiceDown", "oncall@company.com", alert.StatusFiring)
	noGroup.GroupKey = ""
	notice := flappingNotification()
	notice.GroupKey = `{}:{alertname="ExternalAPIFailure"}`
	digest := digestNotification()
	digest.GroupKey = `{}:{alertname="LowCacheHitRate"}`
	digest2 := digestNotification()
	digest2.Key += "-2"
	digest2.GroupKey = digest.GroupKey
	for _, nt := range []*notifiers.Notification{noGroup, noGroup, notice, notice, digest, digest2} {
		nt.Key += "x" // each its own mail
		send(t, n, nt)
	}
	hs := heads(t, r)
	for i, h := range hs[:4] {
		if h.inReplyTo != "" {
			t.Errorf("mail %d (no group, or a notice) replies to %q, want no thread", i, h.inReplyTo)
		}
	}
	if hs[5].inReplyTo != hs[4].messageID {
		t.Errorf("a group's second digest replies to %q, want the first %q", hs[5].inReplyTo, hs[4].messageID)
	}
}

func TestMessageIDWithoutKeyIsRandom(t *testing.T) {
	r := &relay{}
	srv := startServer(t, r, serverOpts{})
	n := New(config(t, srv), nil)
	for range 2 {
		nt := flappingNotification()
		nt.Key = ""
		send(t, n, nt)
	}
	hs := heads(t, r)
	if hs[0].messageID == hs[1].messageID || !strings.HasSuffix(hs[0].messageID, "@company.com>") {
		t.Errorf("Message-IDs %q, %q; want two random ones @company.com", hs[0].messageID, hs[1].messageID)
	}
}
