package pagerduty

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store/memory"
)

func memRefs() notifiers.Refs { return notifiers.StoreRefs(memory.New(memory.Options{})) }

// withRefs is newNotifier recording pages in refs.
func withRefs(t *testing.T, url string, refs notifiers.Refs, edit func(*Config)) *Notifier {
	t.Helper()
	n := newNotifier(t, url, edit)
	n.refs = refs
	return n
}

// TestEventContext checks what a trigger carries besides the summary: the
// alert's labels and annotations, its links, who sent it and where from.
func TestEventContext(t *testing.T) {
	a := firing()
	for _, tc := range []struct {
		name          string
		edit          func(*Config)
		externalURL   string
		generatorURL  string
		wantLinks     []any
		wantClientURL string
	}{
		{
			name:         "with alertmedic's alert page",
			edit:         func(c *Config) { c.AlertPageURL = "https://alertmedic.example.com/alerts/" },
			externalURL:  "http://alertmanager.example.com",
			generatorURL: a.GeneratorURL,
			wantLinks: []any{
				map[string]any{"href": "https://runbooks.example.com/high-error-rate", "text": "Runbook"},
				map[string]any{"href": a.GeneratorURL, "text": "Source"},
				map[string]any{"href": "https://alertmedic.example.com/alerts/a1b2c3d4e5f60718", "text": "alertmedic"},
			},
			wantClientURL: "http://alertmanager.example.com",
		},
		{
			name:         "no external URL: the generator's",
			generatorURL: a.GeneratorURL,
			wantLinks: []any{
				map[string]any{"href": "https://runbooks.example.com/high-error-rate", "text": "Runbook"},
				map[string]any{"href": a.GeneratorURL, "text": "Source"},
			},
			wantClientURL: a.GeneratorURL,
		},
		{
			name:          "client_url configured wins",
			edit:          func(c *Config) { c.ClientURL = "https://alertmedic.example.com" },
			externalURL:   "http://alertmanager.example.com",
			wantLinks:     []any{map[string]any{"href": "https://runbooks.example.com/high-error-rate", "text": "Runbook"}},
			wantClientURL: "https://alertmedic.example.com",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			al := firing()
			al.GeneratorURL = tc.generatorURL
			nt := notification("alerts", al)
			nt.ExternalURL = tc.externalURL
			if _, err := newNotifier(t, api.srv.URL, tc.edit).Notify(context.Background(), nt); err != nil {
				t.Fatal(err)
			}
			ev := api.events()[0]
			if ev["client"] != "alertmedic" {
				t.Errorf("client %v, want alertmedic", ev["client"])
			}
			if ev["client_url"] != tc.wantClientURL {
				t.Errorf("client_url %v, want %s", ev["client_url"], tc.wantClientURL)
			}
			if !reflect.DeepEqual(ev["links"], tc.wantLinks) {
				t.Errorf("links %v, want %v", ev["links"], tc.wantLinks)
			}
			details := ev["payload"].(map[string]any)["custom_details"].(map[string]any)
			wantLabels := map[string]any{}
			for k, v := range al.Labels {
				wantLabels[k] = v
			}
			wantAnnotations := map[string]any{}
			for k, v := range al.Annotations {
				wantAnnotations[k] = v
			}
			if !reflect.DeepEqual(details["labels"], wantLabels) || !reflect.DeepEqual(details["annotations"], wantAnnotations) {
				t.Errorf("custom_details %v, want the alert's labels and annotations", details)
			}
			if details["startsAt"] != "2026-01-15T10:30:00Z" {
				t.Errorf("startsAt %v", details["startsAt"])
			}
		})
	}
}

func TestPagedAfterTriggers(t *testing.T) {
	api := newEventsAPI(t)
	refs := memRefs()
	n := withRefs(t, api.srv.URL, refs, nil)
	ctx := context.Background()
	one, two := firing(), firing()
	two.Labels = template.KV{"alertname": "HighErrorRate", "instance": "api-2:8080"}
	two.Fingerprint = "0000000000000002"
	other := routing.Target{Receiver: "platform", Integration: "pagerduty", Name: "pagerduty[0]"}

	for _, nt := range []*notifiers.Notification{
		notification("alerts", one, two),
		notification("alerts", one), // again: recorded once
	} {
		if _, err := n.Notify(ctx, nt); err != nil {
			t.Fatal(err)
		}
	}
	onOther := notification("alerts", one)
	onOther.Target = other
	if _, err := n.Notify(ctx, onOther); err != nil {
		t.Fatal(err)
	}
	// A resolve, and a trigger PagerDuty refused, page nobody.
	res := notification("alerts", resolved(two))
	res.Target.Name = "pagerduty[1]"
	if _, err := n.Notify(ctx, res); err != nil {
		t.Fatal(err)
	}
	api.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusBadRequest) })
	refused := notification("alerts", one)
	refused.Target.Name = "pagerduty[2]"
	if _, err := n.Notify(ctx, refused); err == nil {
		t.Fatal("want the 400")
	}

	got, err := Paged(ctx, refs, notification("alerts").GroupKey)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"oncall/pagerduty[0]":   {one.Fingerprint, two.Fingerprint},
		"platform/pagerduty[0]": {one.Fingerprint},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Paged = %v, want %v", got, want)
	}
	if got, err := Paged(ctx, refs, `{}:{alertname="Other"}`); got != nil || err != nil {
		t.Errorf("Paged of a group that paged nobody = %v, %v; want nil, nil", got, err)
	}
	if got, err := Paged(ctx, nil, notification("alerts").GroupKey); got != nil || err != nil {
		t.Errorf("Paged without refs = %v, %v; want nil, nil", got, err)
	}
}

// The dispatcher sends a group's events several at once: every one is
// recorded.
func TestPagedConcurrentTriggers(t *testing.T) {
	api := newEventsAPI(t)
	refs := memRefs()
	n := withRefs(t, api.srv.URL, refs, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := firing()
			a.Fingerprint = fmt.Sprintf("%016x", i)
			if _, err := n.Notify(context.Background(), notification("alerts", a)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := Paged(context.Background(), refs, notification("alerts").GroupKey)
	if err != nil || len(got["oncall/pagerduty[0]"]) != 20 {
		t.Errorf("Paged = %v, %v; want 20 fingerprints", got, err)
	}
}

func TestPagedCaps(t *testing.T) {
	var p pagedRef
	for i := range maxPagedTargets + 1 {
		p.add(fmt.Sprintf("r/pagerduty[%d]", i), []string{"a", "b"})
	}
	if len(p.Targets) != maxPagedTargets || p.DroppedTargets != 1 || p.DroppedFingerprints != 2 {
		t.Errorf("%d targets, dropped %d targets and %d fingerprints; want %d, 1, 2", len(p.Targets), p.DroppedTargets, p.DroppedFingerprints, maxPagedTargets)
	}
	var many []string
	for i := range maxPagedFingerprints + 5 {
		many = append(many, fmt.Sprint(i))
	}
	var q pagedRef
	q.add("r/pagerduty[0]", many[:10])
	q.add("r/pagerduty[0]", many)
	if got := q.Targets["r/pagerduty[0]"]; len(got) != maxPagedFingerprints || got[0] != "0" || q.DroppedFingerprints != 5 {
		t.Errorf("%d fingerprints (first %s), dropped %d; want %d, 0, 5", len(got), got[0], q.DroppedFingerprints, maxPagedFingerprints)
	}
}

// failingRefs is a store that is down.
type failingRefs struct{}

var errStoreDown = errors.New("store down: dial tcp 10.0.0.7:6379: connection refused")

func (failingRefs) Ref(context.Context, string) ([]byte, error) { return nil, errStoreDown }

func (failingRefs) UpdateRef(context.Context, string, time.Duration, func([]byte) ([]byte, error)) ([]byte, error) {
	return nil, errStoreDown
}

func TestPagedRecordFailingLosesNoPage(t *testing.T) {
	api := newEventsAPI(t)
	var logs bytes.Buffer
	n := withRefs(t, api.srv.URL, failingRefs{}, nil).WithLogger(zerolog.New(&logs))
	if retry, err := n.Notify(context.Background(), notification("alerts", firing())); err != nil || retry {
		t.Fatalf("Notify = %v, %v; want the page delivered", retry, err)
	}
	if len(api.sent()) != 1 {
		t.Fatalf("%d events, want 1", len(api.sent()))
	}
	if !strings.Contains(logs.String(), "pages not recorded") || strings.Contains(logs.String(), testKey[:8]) {
		t.Errorf("log %q, want the failure without the routing key", logs.String())
	}
	if _, err := Paged(context.Background(), failingRefs{}, "g"); err == nil || !strings.HasPrefix(err.Error(), "read pagerduty pages: ") {
		t.Errorf("Paged error %v", err)
	}
}

func TestAcknowledge(t *testing.T) {
	api := newEventsAPI(t)
	refs := memRefs()
	n := withRefs(t, api.srv.URL, refs, nil)
	ctx := context.Background()
	one, two := firing(), firing()
	two.Fingerprint = "0000000000000002"
	if _, err := n.Notify(ctx, notification("alerts", one, two)); err != nil {
		t.Fatal(err)
	}
	paged, err := Paged(ctx, refs, notification("alerts").GroupKey)
	if err != nil {
		t.Fatal(err)
	}
	for key, fps := range paged {
		if key != target.Key() {
			t.Fatalf("paged %s, want %s", key, target.Key())
		}
		if err := n.Acknowledge(ctx, target, fps); err != nil {
			t.Fatal(err)
		}
	}
	evs := api.events()
	if len(evs) != 4 {
		t.Fatalf("%d events, want 2 triggers and 2 acknowledges", len(evs))
	}
	for i, ack := range evs[2:] {
		trigger := evs[i]
		if ack["event_action"] != "acknowledge" || ack["routing_key"] != testKey || ack["dedup_key"] != trigger["dedup_key"] {
			t.Errorf("acknowledge %d: %v; want event_action acknowledge, the routing key and dedup_key %v", i, ack, trigger["dedup_key"])
		}
		if ack["dedup_key"] != DedupKey(target.Key(), []string{one.Fingerprint, two.Fingerprint}[i]) {
			t.Errorf("acknowledge %d dedup_key %v", i, ack["dedup_key"])
		}
		if _, ok := ack["payload"]; ok {
			t.Errorf("acknowledge %d carries a payload: %v", i, ack)
		}
	}
}

func TestAcknowledgeFailures(t *testing.T) {
	echo := func(status int) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, _ *http.Request, body []byte) {
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
	}
	fps := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name     string
		respond  func(http.ResponseWriter, *http.Request, []byte)
		noKey    bool
		wantErr  string
		wantSent int
	}{
		{name: "a final failure: the others are still sent", respond: echo(http.StatusBadRequest), wantErr: "acknowledge pagerduty alert 1 of 3: unexpected status code 400", wantSent: 3},
		{name: "a failure worth retrying stops there", respond: echo(http.StatusInternalServerError), wantErr: "acknowledge pagerduty alert 1 of 3: unexpected status code 500", wantSent: 1},
		{name: "no routing key", noKey: true, wantErr: "acknowledge pagerduty alerts: no routing key configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			api.setRespond(tc.respond)
			n := newNotifier(t, api.srv.URL, nil)
			if tc.noKey {
				n = New(Config{URL: api.srv.URL + "/v2/enqueue"}, nil, nil)
			}
			err := n.Acknowledge(context.Background(), target, fps)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %s", err, tc.wantErr)
			}
			for _, e := range chain(err) {
				if strings.Contains(e.Error(), testKey[:8]) || strings.Contains(fmt.Sprintf("%+v", e), testKey[:8]) {
					t.Fatalf("the routing key leaked: %v", e)
				}
			}
			if got := len(api.sent()); got != tc.wantSent {
				t.Errorf("%d requests, want %d", got, tc.wantSent)
			}
		})
	}
	// The body did carry the key, so the check above means something.
	api := newEventsAPI(t)
	if err := newNotifier(t, api.srv.URL, nil).Acknowledge(context.Background(), target, fps[:1]); err != nil || !bytes.Contains(api.sent()[0], []byte(testKey)) {
		t.Errorf("Acknowledge = %v; the key must go in the body", err)
	}
}
