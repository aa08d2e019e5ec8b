package pagerduty

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

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

func TestAcknowledge(t *testing.T) {
	api := newEventsAPI(t)
	n := newNotifier(t, api.srv.URL, nil)
	ctx := context.Background()
	one, two := firing(), firing()
	two.Fingerprint = "0000000000000002"
	if _, err := n.Notify(ctx, notification("alerts", one, two)); err != nil {
		t.Fatal(err)
	}
	if err := n.Acknowledge(ctx, target, []string{one.Fingerprint, two.Fingerprint}); err != nil {
		t.Fatal(err)
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
				n = New(Config{URL: api.srv.URL + "/v2/enqueue"}, nil)
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
