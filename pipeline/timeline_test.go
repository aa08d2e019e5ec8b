package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/secret"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

var update = flag.Bool("update", false, "rewrite the golden timelines")

// golden compares a story with testdata/timeline/<name>.golden.
func golden(t *testing.T, name, got string) { t.Helper(); goldenFile(t, name+".golden", got) }

func goldenFile(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "timeline", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s:\n%s\nwant:\n%s", file, got, want)
	}
}

// story is the alert's timeline as alert why prints it; the timeline's
// JSON, as the API answers it, is golden too (<name>.json): the page's
// tests render it (receiver/page_test.go).
func story(t *testing.T, g *rig, name string, a ...string) string {
	t.Helper()
	tl, err := g.p.Timeline(context.Background(), alert.Fingerprint(mk(alert.StatusFiring, t0, a...).Labels))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(tl, "", "  ")
	goldenFile(t, name+".json", string(b)+"\n")
	return tl.Story()
}

// A flapping alert: the changes, the start of the flap and what was held,
// its end, and the state that went out then.
func TestTimelineFlapping(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{}), example(t), clk)
	labels := []string{"alertname", "DiskFull", "severity", "warning", "instance", "db-1"}
	for i := 0; i < 7; i++ {
		status, start := alert.StatusFiring, clk.Now()
		if i%2 == 1 {
			status, start = alert.StatusResolved, clk.Now().Add(-time.Minute)
		}
		g.feedID(t, "req-"+string(rune('a'+i)), mk(status, start, labels...))
		clk.Add(time.Minute)
	}
	clk.Add(16 * time.Minute)
	if err := g.p.check(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.flush(t)
	golden(t, "flapping", story(t, g, "flapping", labels...))
}

// A warning at 23:30 on a route muted by quiet hours with mute_action:
// defer: deferred until 08:00, then delivered in the digest.
func TestTimelineQuietHours(t *testing.T) {
	yml := strings.Replace(string(config.Example), "    - matchers: ['severity=\"warning\"']\n      receiver: warning-alerts\n",
		"    - matchers: ['severity=\"warning\"']\n      receiver: warning-alerts\n      mute_time_intervals: [quiet-hours]\n      mute_action: defer\n", 1)
	night := time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)
	clk := &clock{t: night}
	g := newRig(t, memory.New(memory.Options{}), rulesFrom(t, yml), clk)
	labels := []string{"alertname", "HighLatency", "severity", "warning", "instance", "api-1"}
	g.feedID(t, "req-night", mk(alert.StatusFiring, night, labels...))
	if n := len(g.rec.take()); n != 0 {
		t.Fatalf("%d notifications during quiet hours", n)
	}
	muted, err := g.p.Alerts(context.Background(), api.AlertQuery{State: "muted"})
	if err != nil || len(muted.Alerts) != 1 || !muted.Alerts[0].MutedUntil["warning-alerts/slack[0]"].Equal(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("muted alerts at 23:30: %+v %v", muted, err)
	}
	clk.t = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	g.flush(t)
	if k := kinds(g.rec.take()); k["digest warning-alerts/slack[0]"] != 1 {
		t.Fatalf("at 08:00: %v", k)
	}
	golden(t, "quiet_hours", story(t, g, "quiet_hours", labels...))
}

// slack429 answers the first post 429 with Retry-After, then 200, as
// Slack's incoming webhooks do.
type slack429 struct {
	mu    sync.Mutex
	posts int
}

func (s *slack429) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if s.posts == 1 {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "rate_limited", http.StatusTooManyRequests)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// An alert delivered after Slack's 429: the attempt that failed, the
// retry it waited for, the delivery.
func TestTimelineSlack429(t *testing.T) {
	srv := httptest.NewServer(&slack429{})
	t.Cleanup(srv.Close)
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{}), example(t), clk)
	nf := slack.New(slack.Config{APIURL: secret.Secret(srv.URL + "/services/T/B/X")}, srv.Client(), nil)
	g.p.o.Notifier = tee{g.rec, nf, "slack"}
	labels := []string{"alertname", "HighErrorRate", "severity", "warning", "instance", "api-2"}
	g.feedID(t, "req-1", mk(alert.StatusFiring, t0, labels...))
	clk.Add(30 * time.Second)
	g.flush(t)
	golden(t, "slack_429", story(t, g, "slack_429", labels...))
	var n int
	for _, x := range g.rec.take() {
		if x.Kind == notifiers.KindAlerts {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d attempts, want the 429 and the delivery", n)
	}
}

// failFirst fails its first notification for good (Slack's 400), then
// delivers.
type failFirst struct {
	mu    sync.Mutex
	calls int
}

func (f *failFirst) Notify(context.Context, *notifiers.Notification) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 1 {
		return false, errors.New("post webhook: unexpected status code 400: invalid_payload")
	}
	return false, nil
}

// A dead letter sent again goes back in the outbox and is delivered; its
// story says both.
func TestSendAgain(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{}), example(t), clk)
	nf := &failFirst{}
	g.p.o.Notifier = nf
	labels := []string{"alertname", "DiskFull", "severity", "warning", "instance", "db-2"}
	g.feedID(t, "req-dead", mk(alert.StatusFiring, t0, labels...))
	dl, err := g.p.FailedDeliveries(context.Background(), "", 10, false)
	if err != nil || len(dl.Deliveries) != 1 {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	clk.Add(time.Minute)
	if ok, err := g.p.SendAgain(context.Background(), dl.Deliveries[0].Key); err != nil || !ok {
		t.Fatalf("send again: %v %v", ok, err)
	}
	if ok, _ := g.p.SendAgain(context.Background(), dl.Deliveries[0].Key); ok {
		t.Error("sent again twice")
	}
	g.flush(t)
	if nf.calls != 2 {
		t.Errorf("%d sends, want the failure and the one sent again", nf.calls)
	}
	if dl, _ := g.p.FailedDeliveries(context.Background(), "", 10, false); len(dl.Deliveries) != 0 {
		t.Errorf("dead letters left: %+v", dl)
	}
	tl, err := g.p.Timeline(context.Background(), alert.Fingerprint(mk(alert.StatusFiring, t0, labels...).Labels))
	if err != nil {
		t.Fatal(err)
	}
	s := tl.Story()
	for _, want := range []string{
		"failed warning-alerts/slack[0]: failed for good after 1 attempts: post webhook: unexpected status code 400: invalid_payload\n",
		"2026-11-26 12:01:00  delivered warning-alerts/slack[0]: delivered at attempt 1\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the story has no %q:\n%s", want, s)
		}
	}
}

// An observation the webhook dropped as a duplicate (another Alertmanager
// of an HA pair sent it too) is in the story, with its request and sender.
func TestTimelineDuplicate(t *testing.T) {
	st := memory.New(memory.Options{Now: func() time.Time { return t0 }})
	clk := &clock{t: t0}
	g := newRig(t, st, example(t), clk)
	labels := []string{"alertname", "DiskFull", "severity", "warning", "instance", "db-3"}
	a := mk(alert.StatusFiring, t0, labels...)
	g.feedID(t, "req-a", a)
	e := &alert.Entry{ID: "req-b", ReceivedAt: t0, Message: &alert.Message{Version: "4", GroupKey: "{}:{}",
		Data: &template.Data{Receiver: "alertmedic", Status: "firing", Alerts: template.Alerts{a}, ExternalURL: "http://alertmanager-b:9093"}}}
	if res, err := st.Enqueue(context.Background(), e, time.Hour); err != nil || res.Queued {
		t.Fatalf("the duplicate was queued: %+v %v", res, err)
	}
	tl, err := g.p.Timeline(context.Background(), a.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if s := tl.Story(); !strings.Contains(s, "received: firing again, in request req-b from http://alertmanager-b:9093: a duplicate, dropped (the latest of that day)\n") {
		t.Errorf("the story has no duplicate:\n%s", s)
	}
}

// The alerts of one request decided alike share one block of events; each
// alert's story, labels and group are what they are when it comes alone,
// and the listing filters on labels the block holds.
func TestTimelineShared(t *testing.T) {
	testTimelineShared(t, func(clk *clock) Store { return memory.New(memory.Options{Now: clk.Now}) })
}

func TestTimelineSharedRedis(t *testing.T) {
	testTimelineShared(t, func(*clock) Store { return redistest.Open(t, redistest.Prefix(t, "shared")) })
}

func testTimelineShared(t *testing.T, open func(*clock) Store) {
	crit := func(instance string) template.Alert {
		return mk(alert.StatusFiring, t0, "alertname", "NodeDown", "severity", "critical", "instance", instance)
	}
	warn := mk(alert.StatusFiring, t0, "alertname", "NodeDown", "severity", "warning", "instance", "d")
	clk := &clock{t: t0}
	st := open(clk)
	g := newRig(t, st, example(t), clk)
	g.feedID(t, "req-storm", crit("a"), crit("b"), crit("c"), warn)
	clk.Add(time.Minute)
	g.feedID(t, "req-again", crit("a"), crit("b"), crit("c")) // Alertmanager's repeat: already sent
	g.flush(t)
	ctx := context.Background()

	blocks, err := st.Get(ctx, 0, sharedKey("req-storm.0"), sharedKey("req-storm.1"), sharedKey("req-again.0"), sharedKey("req-again.1"))
	if err != nil || blocks[0] == nil || blocks[1] != nil || blocks[2] == nil || blocks[3] != nil {
		t.Fatalf("blocks %q %v: want one per request (the warning decided otherwise)", blocks, err)
	}
	recs := records(t, st, &alert.Entry{Message: &alert.Message{Data: &template.Data{Alerts: template.Alerts{crit("a"), warn}}}})
	if r := recs[0]; !r.SharedLabels || r.Events[1].I != "req-again.0" || r.GroupKey != "" || len(r.Labels) != 1 || r.Labels["instance"] != "a" || len(r.Events) != 2 {
		t.Errorf("shared record %+v", r)
	}
	if r := recs[1]; r.SharedLabels || len(r.Labels) != 3 || r.GroupKey != "{}:{}" {
		t.Errorf("the warning's record %+v", r)
	}

	// The same alert alone, in a request of the same ID: the same story.
	clk2 := &clock{t: t0}
	alone := newRig(t, memory.New(memory.Options{Now: clk2.Now}), example(t), clk2)
	alone.feedID(t, "req-storm", crit("b"))
	clk2.Add(time.Minute)
	alone.feedID(t, "req-again", crit("b"))
	alone.flush(t)
	fp := crit("b").Fingerprint
	want, err := alone.p.Timeline(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.p.Timeline(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Story() != want.Story() {
		t.Errorf("shared:\n%s\nalone:\n%s", got.Story(), want.Story())
	}
	// Each delivery names the message that carried it: the key the
	// notifier was given (an email's Message-ID derives from it).
	keys := map[string]string{}
	for _, n := range g.rec.take() {
		keys[n.Key] = n.Target.Key()
	}
	delivered := 0
	for _, e := range got.Events {
		if e.Stage != api.StageDelivered {
			continue
		}
		delivered++
		if len(e.Messages) != 1 || keys[e.Messages[0]] != e.Target {
			t.Errorf("delivered %s in messages %v; the notifier was given %v", e.Target, e.Messages, keys)
		}
	}
	if delivered != 3 {
		t.Errorf("%d delivered events, want one per target", delivered)
	}
	if !strings.Contains(got.Story(), "delivered oncall/pagerduty[0]") || !strings.Contains(got.Story(), "received: firing, in request req-again from http://alertmanager:9093") {
		t.Errorf("the story lacks its delivery or its second request:\n%s", got.Story())
	}
	if len(got.Labels) != 3 || got.Labels["severity"] != "critical" || got.GroupKey != "{}:{}" {
		t.Errorf("labels %v, group %q", got.Labels, got.GroupKey)
	}

	list := func(f string) []api.AlertSummary {
		t.Helper()
		as, err := g.p.Alerts(ctx, api.AlertQuery{Filter: []string{f}})
		if err != nil {
			t.Fatal(err)
		}
		return as.Alerts
	}
	if as := list(`severity="critical"`); len(as) != 3 || as[0].Labels["alertname"] != "NodeDown" || as[0].LastDelivery["oncall/pagerduty[0]"] != api.StageDelivered {
		t.Errorf("critical alerts: %+v", as)
	}
	if as := list(`instance="b"`); len(as) != 1 || as[0].Fingerprint != fp {
		t.Errorf("instance b: %+v", as)
	}

	// A block gone (evicted at the store's cap): the story says so.
	if err := st.Commit(ctx, 0, store.Txn{Set: []store.Value{{Key: sharedKey("req-again.0")}}}); err != nil {
		t.Fatal(err)
	}
	got, err = g.p.Timeline(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Story(); !strings.Contains(s, "what was decided is no longer kept") || !strings.Contains(s, "in request req-storm") || got.Labels["instance"] != "b" {
		t.Errorf("with the block gone:\n%s%v", s, got.Labels)
	}
}
