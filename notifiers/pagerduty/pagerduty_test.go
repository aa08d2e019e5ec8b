package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/routing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the requests sent")

const testKey = "R0UT1NGK3Y0123456789abcdefLEAKME"

var (
	t0     = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	target = routing.Target{Receiver: "oncall", Integration: "pagerduty", Name: "pagerduty[0]"}
)

// eventsAPI stands in for PagerDuty's Events API v2: it records every
// request and answers with respond (202 and PagerDuty's success object by
// default).
type eventsAPI struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  [][]byte
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newEventsAPI(t *testing.T) *eventsAPI {
	t.Helper()
	api := &eventsAPI{t: t}
	api.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.reqs = append(api.reqs, r)
		api.bodies = append(api.bodies, body)
		respond := api.respond
		api.mu.Unlock()
		if respond != nil {
			respond(w, r, body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
	}))
	if !strings.HasPrefix(api.srv.Listener.Addr().String(), "127.0.0.1:") {
		t.Fatalf("test server on %s, want 127.0.0.1", api.srv.Listener.Addr())
	}
	t.Cleanup(api.srv.Close)
	return api
}

func (api *eventsAPI) setRespond(f func(w http.ResponseWriter, r *http.Request, body []byte)) {
	api.mu.Lock()
	defer api.mu.Unlock()
	api.respond = f
}

func (api *eventsAPI) sent() [][]byte {
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([][]byte(nil), api.bodies...)
}

// events decodes what was sent.
func (api *eventsAPI) events() []map[string]any {
	api.t.Helper()
	var out []map[string]any
	for _, b := range api.sent() {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			api.t.Fatalf("request body is not JSON: %v: %s", err, b)
		}
		out = append(out, m)
	}
	return out
}

// newNotifier returns a Notifier loaded as the configuration loader would,
// pointed at url (an Events API base URL).
func newNotifier(t *testing.T, url string, edit func(*Config)) *Notifier {
	t.Helper()
	c := Config{RoutingKey: testKey, URL: url + "/v2/enqueue"}
	if edit != nil {
		edit(&c)
	}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatalf("Load: %v", errs)
	}
	return New(c, nil)
}

func firing() template.Alert {
	return template.Alert{
		Status: "firing",
		Labels: template.KV{"alertname": "HighErrorRate", "instance": "api-1:8080", "job": "api", "severity": "critical"},
		Annotations: template.KV{
			"summary":     "High error rate on api-1:8080",
			"description": "5% of requests fail",
			"runbook_url": "https://runbooks.example.com/high-error-rate",
		},
		StartsAt:     t0,
		GeneratorURL: "http://prometheus.example.com/graph?g0.expr=rate%28errors%5B5m%5D%29",
		Fingerprint:  "a1b2c3d4e5f60718",
	}
}

func resolved(a template.Alert) template.Alert {
	a.Status = "resolved"
	a.EndsAt = t0.Add(15 * time.Minute)
	return a
}

func notification(kind string, as ...template.Alert) *notifiers.Notification {
	return &notifiers.Notification{
		Key:         "k1",
		Kind:        kind,
		Target:      target,
		Alerts:      as,
		GroupKey:    `{}:{alertname="HighErrorRate"}`,
		ExternalURL: "http://alertmanager.example.com",
	}
}

func TestGolden(t *testing.T) {
	warning := template.Alert{
		Status:       "firing",
		Labels:       template.KV{"alertname": "DiskFilling", "instance": "db-1:9100", "job": "node", "severity": "warning"},
		Annotations:  template.KV{"summary": "Disk /data on db-1 fills in 4h"},
		StartsAt:     t0.Add(time.Minute),
		GeneratorURL: "http://prometheus.example.com/graph?g0.expr=disk",
		Fingerprint:  "00000000000000aa",
	}
	// No severity, summary, instance, job or generator URL: the fallbacks.
	bare := template.Alert{
		Status:      "firing",
		Labels:      template.KV{"alertname": "Watchdog"},
		Annotations: template.KV{},
		StartsAt:    t0.Add(2 * time.Minute),
		Fingerprint: "00000000000000bb",
	}
	info := resolved(template.Alert{
		Status:      "firing",
		Labels:      template.KV{"alertname": "Deployed", "severity": "info", "job": "ci"},
		Annotations: template.KV{"summary": "Version 1.2.3 deployed"},
		StartsAt:    t0.Add(3 * time.Minute),
		Fingerprint: "00000000000000cc",
	})
	digest := notification("digest", warning, bare)
	digest.Target.Settings = map[string]string{"severity": "critical"}

	for _, tc := range []struct {
		name string
		n    *notifiers.Notification
	}{
		{"trigger", notification("alerts", firing())},
		{"resolve", notification("alerts", resolved(firing()))},
		{"three_alerts", notification("alerts", warning, bare, info)},
		{"digest_severity_setting", digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			retry, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), tc.n)
			if err != nil || retry {
				t.Fatalf("Notify = %v, %v; want false, nil", retry, err)
			}
			bodies := api.sent()
			if len(bodies) != len(tc.n.Alerts) {
				t.Fatalf("%d requests for %d alerts, want one each", len(bodies), len(tc.n.Alerts))
			}
			for _, r := range api.reqs {
				if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %s %s (%s), want POST /v2/enqueue (application/json)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
				}
			}
			got := append(bytes.Join(bodies, []byte("\n")), '\n')
			golden(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("requests differ from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestTriggerThenResolveShareDedupKey(t *testing.T) {
	api := newEventsAPI(t)
	n := newNotifier(t, api.srv.URL, nil)
	a := firing()
	for _, nt := range []*notifiers.Notification{notification("alerts", a), notification("alerts", resolved(a))} {
		if retry, err := n.Notify(context.Background(), nt); err != nil || retry {
			t.Fatalf("Notify = %v, %v", retry, err)
		}
	}
	evs := api.events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	if evs[0]["event_action"] != "trigger" || evs[1]["event_action"] != "resolve" {
		t.Errorf("actions %v, %v; want trigger, resolve", evs[0]["event_action"], evs[1]["event_action"])
	}
	want := DedupKey("oncall/pagerduty[0]", a.Fingerprint)
	if evs[0]["dedup_key"] != want || evs[1]["dedup_key"] != want {
		t.Errorf("dedup keys %v, %v; want both %s", evs[0]["dedup_key"], evs[1]["dedup_key"], want)
	}
	if len(want) != 64 {
		t.Errorf("dedup key %q is %d characters, want 64 (hex SHA-256)", want, len(want))
	}

	// The fingerprint is computed when the message left it out, and it is
	// the same one Alertmanager gives.
	noFP := resolved(a)
	noFP.Fingerprint = ""
	if _, err := n.Notify(context.Background(), notification("alerts", noFP)); err != nil {
		t.Fatal(err)
	}
	ls := model.LabelSet{}
	for k, v := range a.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	wantComputed := DedupKey("oncall/pagerduty[0]", ls.Fingerprint().String())
	if got := api.events()[2]["dedup_key"]; got != wantComputed {
		t.Errorf("dedup key without a fingerprint %v, want %s", got, wantComputed)
	}

	if DedupKey("oncall/pagerduty[0]", "x") == DedupKey("oncall/pagerduty[1]", "x") {
		t.Error("two targets share a dedup key for one alert")
	}
	if DedupKey("oncall/pagerduty[0]", "x") == DedupKey("oncall/pagerduty[0]", "y") {
		t.Error("two alerts share a dedup key on one target")
	}
}

func TestLongSummaryIsCut(t *testing.T) {
	api := newEventsAPI(t)
	a := firing()
	long := strings.Repeat("日本é🚨x", 400) // 2,000 characters, 4,400 bytes
	if utf8.RuneCountInString(long) != 2000 {
		t.Fatalf("fixture has %d characters", utf8.RuneCountInString(long))
	}
	a.Annotations["summary"] = long
	if _, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), notification("alerts", a)); err != nil {
		t.Fatal(err)
	}
	payload := api.events()[0]["payload"].(map[string]any)
	s := payload["summary"].(string)
	if !utf8.ValidString(s) {
		t.Fatal("summary is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n != 1024 {
		t.Errorf("summary has %d characters, want 1024", n)
	}
	if want := string([]rune(long)[:1023]) + "…"; s != want {
		t.Errorf("summary is not the first 1,023 characters and …:\n%q", s)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		limit    int
		want     string
	}{
		{"short", "abc", 5, "abc"},
		{"exactly the limit", "abcde", 5, "abcde"},
		{"one over", "abcdef", 5, "abcd…"},
		{"multibyte", "ééééééé", 4, "ééé…"},
		{"invalid bytes replaced", "a\xffb", 5, "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := truncate(tc.in, tc.limit); got != tc.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
}

func TestStatuses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		wantRetry   bool
		wantErr     string // "" for success
		wantAfter   time.Duration
		retryHeader bool // expect a RetryAfterError
	}{
		{name: "202", status: 202, body: `{"status":"success"}`},
		{name: "200", status: 200, body: `{"status":"success"}`},
		{name: "202 with a body that is not JSON", status: 202, body: "ok"},
		{
			name: "400 with PagerDuty's error object", status: 400,
			header: map[string]string{"Content-Type": "application/json"},
			body:   `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}`,
			wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 400: invalid event: Event object is invalid: " +
				"Length of 'routing_key' is incorrect (should be 32 characters)",
		},
		{name: "400 in plain text", status: 400, body: "bad", wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 400: bad"},
		{name: "404", status: 404, wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 404"},
		{
			name: "429 with Retry-After", status: 429, header: map[string]string{"Retry-After": "7"},
			wantRetry: true, retryHeader: true, wantAfter: 7 * time.Second,
			wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 429",
		},
		{name: "429", status: 429, wantRetry: true, wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 429"},
		{name: "500", status: 500, body: "oops", wantRetry: true, wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 500: oops"},
		{
			name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "30"},
			wantRetry: true, retryHeader: true, wantAfter: 30 * time.Second,
			wantErr: "send pagerduty event 1 of 1 (trigger): unexpected status code 503",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			api.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			retry, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), notification("alerts", firing()))
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tc.wantRetry)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("err = %v, want %s", err, tc.wantErr)
			}
			var ra *outbound.RetryAfterError
			if got := errors.As(err, &ra); got != tc.retryHeader {
				t.Fatalf("RetryAfterError in chain = %v, want %v", got, tc.retryHeader)
			}
			if ra != nil && ra.After != tc.wantAfter {
				t.Errorf("Retry-After = %s, want %s", ra.After, tc.wantAfter)
			}
			if n := len(api.sent()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	retry, err := newNotifier(t, closedPort(t), nil).Notify(context.Background(), notification("alerts", firing()))
	if !retry || err == nil {
		t.Fatalf("Notify = %v, %v; want true and an error", retry, err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), `"<redacted>"`) {
		t.Errorf("err = %v, want the dial error with the URL redacted", err)
	}
}

func TestTimeout(t *testing.T) {
	api := newEventsAPI(t)
	api.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
	n := newNotifier(t, api.srv.URL, func(c *Config) { c.Timeout = model.Duration(50 * time.Millisecond) })
	start := time.Now()
	retry, err := n.Notify(context.Background(), notification("alerts", firing()))
	if !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Notify = %v, %v; want true and a deadline error", retry, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Notify took %s with a 50ms timeout", d)
	}
}

func TestCanceledContext(t *testing.T) {
	api := newEventsAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	retry, err := newNotifier(t, api.srv.URL, nil).Notify(ctx, notification("alerts", firing()))
	if !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify = %v, %v; want true and context.Canceled", retry, err)
	}
	if n := len(api.sent()); n != 0 {
		t.Errorf("%d requests after cancellation", n)
	}
}

func TestNoticesAndEmptyNotificationsSendNothing(t *testing.T) {
	api := newEventsAPI(t)
	n := newNotifier(t, api.srv.URL, nil)
	for _, nt := range []*notifiers.Notification{
		{Kind: notifiers.KindFlappingStarted, Target: target, Text: "HighErrorRate is flapping", Alerts: template.Alerts{firing()}},
		{Kind: notifiers.KindFlappingStopped, Target: target, Text: "HighErrorRate stopped flapping", Alerts: template.Alerts{firing()}},
		{Kind: notifiers.KindAlerts, Target: target},
		{Kind: notifiers.KindDigest, Target: target},
	} {
		if retry, err := n.Notify(context.Background(), nt); err != nil || retry {
			t.Errorf("%s: Notify = %v, %v; want false, nil", nt.Kind, retry, err)
		}
	}
	if got := len(api.sent()); got != 0 {
		t.Errorf("%d requests, want none", got)
	}
}

func TestPartialFailure(t *testing.T) {
	three := func() *notifiers.Notification {
		a, b, c := firing(), firing(), firing()
		b.Labels = template.KV{"alertname": "Second"}
		b.Fingerprint = "bb"
		c.Labels = template.KV{"alertname": "Third"}
		c.Fingerprint = "cc"
		return notification("alerts", a, b, c)
	}
	failSecond := func(status int) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, _ *http.Request, body []byte) {
			if bytes.Contains(body, []byte(`"Second"`)) {
				w.WriteHeader(status)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}
	}

	t.Run("a final failure does not stop the others", func(t *testing.T) {
		api := newEventsAPI(t)
		api.setRespond(failSecond(http.StatusBadRequest))
		retry, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), three())
		if retry || err == nil || err.Error() != "send pagerduty event 2 of 3 (trigger): unexpected status code 400" {
			t.Errorf("Notify = %v, %v", retry, err)
		}
		if n := len(api.sent()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("a failure worth retrying stops there", func(t *testing.T) {
		api := newEventsAPI(t)
		api.setRespond(failSecond(http.StatusInternalServerError))
		retry, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), three())
		if !retry || err == nil || err.Error() != "send pagerduty event 2 of 3 (trigger): unexpected status code 500" {
			t.Errorf("Notify = %v, %v", retry, err)
		}
		if n := len(api.sent()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
}

// An event over PagerDuty's limit has its largest details cut first; only
// when the values are many and none large are the details dropped whole.
// The summary and the links stay either way.
func TestOversizedEventTrimsDetails(t *testing.T) {
	many := template.KV{"summary": "High error rate on api-1:8080", "runbook_url": "https://runbooks.example.com/high-error-rate"}
	for i := range 1000 {
		many[fmt.Sprintf("note%04d", i)] = strings.Repeat("n", 600)
	}
	for _, tc := range []struct {
		name        string
		annotations template.KV
		// cut lists the details cut (name → size before); nil: dropped.
		cut map[string]any
	}{
		{
			name:        "one huge annotation",
			annotations: template.KV{"summary": "High error rate on api-1:8080", "description": strings.Repeat("x", 600000), "runbook_url": "https://runbooks.example.com/high-error-rate"},
			cut:         map[string]any{"annotations.description": float64(600000)},
		},
		{
			// The largest is cut as short as fit goes, then the next is
			// cut by what is left over; the third stays whole.
			name: "three, the largest cut first",
			annotations: template.KV{
				"summary": "High error rate on api-1:8080", "runbook_url": "https://runbooks.example.com/high-error-rate",
				"description": strings.Repeat("d", 350000), "logs": strings.Repeat("l", 300000), "trace": strings.Repeat("t", 250000),
			},
			cut: map[string]any{"annotations.description": float64(350000), "annotations.logs": float64(300000)},
		},
		{
			// JSON escapes < and > as \u003c: six bytes each on the wire.
			name:        "values that grow when encoded",
			annotations: template.KV{"summary": "High error rate on api-1:8080", "runbook_url": "https://runbooks.example.com/high-error-rate", "html": strings.Repeat("<>", 150000)},
			cut:         map[string]any{"annotations.html": float64(300000)},
		},
		{name: "many values, none large", annotations: many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			a := firing()
			a.Annotations = tc.annotations
			if _, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), notification("alerts", a)); err != nil {
				t.Fatal(err)
			}
			if body := api.sent()[0]; len(body) > maxEventBytes {
				t.Errorf("event is %d bytes, over %d", len(body), maxEventBytes)
			}
			ev := api.events()[0]
			payload := ev["payload"].(map[string]any)
			if payload["summary"] != "High error rate on api-1:8080" {
				t.Errorf("summary %q, want it intact", payload["summary"])
			}
			if links, _ := ev["links"].([]any); len(links) != 2 {
				t.Errorf("links %v, want runbook and source", ev["links"])
			}
			details := payload["custom_details"].(map[string]any)
			if tc.cut == nil {
				if msg, _ := details["error"].(string); !strings.HasPrefix(msg, "custom details removed: the event was ") || len(details) != 1 {
					t.Errorf("custom_details = %.300v, want only the error", details)
				}
				return
			}
			if !reflect.DeepEqual(details["truncated"], tc.cut) {
				t.Errorf("truncated = %v, want %v", details["truncated"], tc.cut)
			}
			anns := details["annotations"].(map[string]any)
			for name := range tc.cut {
				v := anns[strings.TrimPrefix(name, "annotations.")].(string)
				orig := tc.annotations[strings.TrimPrefix(name, "annotations.")]
				if !strings.HasSuffix(v, "…") || !strings.HasPrefix(orig, strings.TrimSuffix(v, "…")) {
					t.Errorf("%s is not its start and …: %.40q", name, v)
				}
			}
			for k, v := range tc.annotations {
				if _, cut := tc.cut["annotations."+k]; !cut && anns[k] != v {
					t.Errorf("annotation %s was changed: %.40q", k, anns[k])
				}
			}
			if !reflect.DeepEqual(details["labels"], map[string]any{"alertname": "HighErrorRate", "instance": "api-1:8080", "job": "api", "severity": "critical"}) {
				t.Errorf("labels were touched: %v", details["labels"])
			}
		})
	}
	// A link as long as the limit goes, after the details: the other stays.
	t.Run("a runbook_url of 600 KB", func(t *testing.T) {
		api := newEventsAPI(t)
		a := firing()
		a.Annotations["runbook_url"] = "https://runbooks.example.com/" + strings.Repeat("r", 600000)
		if _, err := newNotifier(t, api.srv.URL, nil).Notify(context.Background(), notification("alerts", a)); err != nil {
			t.Fatal(err)
		}
		if body := api.sent()[0]; len(body) > maxEventBytes {
			t.Errorf("event is %d bytes, over %d", len(body), maxEventBytes)
		}
		ev := api.events()[0]
		if links := ev["links"].([]any); len(links) != 1 || links[0].(map[string]any)["text"] != "Source" {
			t.Errorf("links %v, want the source alone", links)
		}
		if s := ev["payload"].(map[string]any)["summary"]; s != "High error rate on api-1:8080" {
			t.Errorf("summary %q", s)
		}
	})
	// The alert itself is not cut: its maps are the notification's.
	a := firing()
	a.Annotations["description"] = strings.Repeat("x", 600000)
	if _, err := newNotifier(t, newEventsAPI(t).srv.URL, nil).Notify(context.Background(), notification("alerts", a)); err != nil {
		t.Fatal(err)
	}
	if len(a.Annotations["description"]) != 600000 {
		t.Error("fit cut the notification's own annotations")
	}
}

func TestTemplateError(t *testing.T) {
	api := newEventsAPI(t)
	n := newNotifier(t, api.srv.URL, func(c *Config) { c.Summary = `{{ template "nope" . }}` })
	retry, err := n.Notify(context.Background(), notification("alerts", firing()))
	if retry || err == nil || !strings.HasPrefix(err.Error(), "render pagerduty summary: ") {
		t.Errorf("Notify = %v, %v; want false and a render error", retry, err)
	}
	if len(api.sent()) != 0 {
		t.Error("an event was sent without its summary")
	}
}

// chain lists err and every error it wraps (through Unwrap() error and
// Unwrap() []error).
func chain(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) { //nolint:errorlint // walks the chain itself, one link at a time
	case interface{ Unwrap() error }:
		out = append(out, chain(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, chain(e)...)
		}
	}
	return out
}

// TestNoSecretLeaks drives every outcome with a known routing key, against
// an Events API that quotes the request (and so the key) back in every way
// it can, and asserts the key is in no error.
func TestNoSecretLeaks(t *testing.T) {
	echoJSON := func(status int) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, _ *http.Request, body []byte) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			b, _ := json.Marshal(map[string]any{
				"status": "invalid event", "message": "you sent " + string(body),
				"errors": []string{"routing_key " + testKey + " is wrong"},
			})
			_, _ = w.Write(b)
		}
	}
	echoText := func(status int) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, _ *http.Request, body []byte) {
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
	}
	for _, tc := range []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request, []byte)
		closed  bool // no server: connection refused
		timeout bool
		wantErr bool
	}{
		{name: "success"},
		{name: "202 echoing the request", respond: echoText(http.StatusAccepted)},
		{name: "400 echoing in JSON", respond: echoJSON(http.StatusBadRequest), wantErr: true},
		{name: "400 echoing in text", respond: echoText(http.StatusBadRequest), wantErr: true},
		{name: "403 echoing in text", respond: echoText(http.StatusForbidden), wantErr: true},
		{name: "429 echoing in JSON", respond: echoJSON(http.StatusTooManyRequests), wantErr: true},
		{name: "500 echoing in text", respond: echoText(http.StatusInternalServerError), wantErr: true},
		{
			// CheckResponse quotes 256 bytes: the key straddles the cut.
			name: "400 with the key across the quoted limit", wantErr: true,
			respond: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, strings.Repeat("x", 240)+testKey)
			},
		},
		{name: "503 echoing in JSON", respond: echoJSON(http.StatusServiceUnavailable), wantErr: true},
		{name: "timeout", timeout: true, wantErr: true},
		{name: "connection refused", closed: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var api *eventsAPI
			url := closedPort(t)
			if !tc.closed {
				api = newEventsAPI(t)
				url = api.srv.URL
				api.setRespond(tc.respond)
				if tc.timeout {
					api.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
				}
			}
			n := newNotifier(t, url, func(c *Config) { c.Timeout = model.Duration(200 * time.Millisecond) })
			_, err := n.Notify(context.Background(), notification("alerts", firing()))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			for _, e := range chain(err) {
				for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					// A part of the key is a leak too.
					if strings.Contains(s, testKey[:8]) {
						t.Fatalf("the routing key leaked: %s", s)
					}
				}
			}
			// The key did go out, so that its absence above means something.
			if api != nil && (len(api.sent()) != 1 || !bytes.Contains(api.sent()[0], []byte(testKey))) {
				t.Error("the routing key was not sent in the request body")
			}
		})
	}
}
