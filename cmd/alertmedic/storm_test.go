package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// An alert storm: 20,000 distinct alerts as 50-alert bodies and five
// 1,000-alert bodies, 25,000 in all, routed to one Slack, one PagerDuty and
// one webhook target, each a stand-in speaking its protocol on loopback.
const (
	stormSmall  = 400 // bodies of 50
	stormLarge  = 5   // bodies of 1,000
	stormAlerts = stormSmall*50 + stormLarge*1000
)

// stormBodies are the storm's webhook bodies; alert i carries label i and
// summary "storm-i", by which the stand-ins know it.
func stormBodies() [][]byte {
	var out [][]byte
	n := 0
	body := func(k int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"version":"4","status":"firing","receiver":"alertmedic","groupKey":"{}:{alertname=\"Storm\"}","groupLabels":{"alertname":"Storm"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":[`)
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"Storm","severity":"warning","i":"%d"},"annotations":{"summary":"storm-%d"},"startsAt":"2026-11-26T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph"}`, n, n)
			n++
		}
		b.WriteString(`]}`)
		return b.Bytes()
	}
	for i := 0; i < stormSmall; i++ {
		out = append(out, body(50))
		if i%80 == 79 {
			out = append(out, body(1000))
		}
	}
	return out
}

// stormSink stands in for Slack, PagerDuty and a webhook endpoint at once,
// each on its own path, and records what each received and when it
// answered.
type stormSink struct {
	mu sync.Mutex
	// Slack: the alerts each message shows, and the ones it counts.
	slackTimes []time.Time
	slackShown map[int]int
	slackMore  int
	// PagerDuty: events by alert, with the time of the first answer.
	pd      map[int]int
	pdFirst map[int]time.Time
	// Webhook: POSTs by alert, and idempotency keys seen.
	hook      map[int]int
	hookFirst map[int]time.Time
	hookKeys  map[string]int
	srv       *httptest.Server
}

var (
	stormSeqRE  = regexp.MustCompile(`storm-(\d+)`)
	stormMoreRE = regexp.MustCompile(`^and (\d+) more alerts?$`)
)

func newStormSink(t *testing.T) *stormSink {
	s := &stormSink{slackShown: map[int]int{}, pd: map[int]int{}, pdFirst: map[int]time.Time{}, hook: map[int]int{}, hookFirst: map[int]time.Time{}, hookKeys: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stormSink) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/slack":
		var m struct {
			Attachments []struct {
				Text     string `json:"text"`
				Fallback string `json:"fallback"`
			} `json:"attachments"`
		}
		if json.Unmarshal(b, &m) != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.slackTimes = append(s.slackTimes, time.Now())
		for _, a := range m.Attachments {
			if mm := stormMoreRE.FindStringSubmatch(a.Text); mm != nil {
				n, _ := strconv.Atoi(mm[1])
				s.slackMore += n
			} else if mm := stormSeqRE.FindStringSubmatch(a.Text + " " + a.Fallback); mm != nil {
				n, _ := strconv.Atoi(mm[1])
				s.slackShown[n]++
			}
		}
		s.mu.Unlock()
		io.WriteString(w, "ok")
	case "/v2/enqueue":
		var ev struct {
			Payload struct {
				Details struct {
					Labels map[string]string `json:"labels"`
				} `json:"custom_details"`
			} `json:"payload"`
		}
		if json.Unmarshal(b, &ev) != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(ev.Payload.Details.Labels["i"])
		if err != nil {
			http.Error(w, "no alert in the event", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.pd[n]++
		if _, ok := s.pdFirst[n]; !ok {
			s.pdFirst[n] = time.Now()
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"success","message":"Event processed"}`)
	case "/hook":
		var m struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if json.Unmarshal(b, &m) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.hookKeys[r.Header.Get("Idempotency-Key")]++
		for _, a := range m.Alerts {
			n, _ := strconv.Atoi(a.Labels["i"])
			s.hook[n]++
			if _, ok := s.hookFirst[n]; !ok {
				s.hookFirst[n] = time.Now()
			}
		}
		s.mu.Unlock()
		io.WriteString(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

// accounted says how many alerts each stand-in has: Slack's shown and
// counted, and the distinct alerts at PagerDuty and the webhook.
func (s *stormSink) accounted() (slack, pd, hook int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slackShown) + s.slackMore, len(s.pd), len(s.hook)
}

func stormConfig(t *testing.T, sink *stormSink, storeBlock, replica string) string {
	return writeConfig(t, fmt.Sprintf(`
global:
  replica_id: %s
%s
web:
  max_request_bytes: 8388608
pipeline:
  workers: 2
route:
  receiver: storm
receivers:
  - name: storm
    integrations:
      - type: slack
        settings: {channel: "#storm"}
      - type: pagerduty
      - type: webhook
integrations:
  slack:
    api_url: %[3]s/slack
  pagerduty:
    routing_key: storm-key
    url: %[3]s/v2/enqueue
  webhook:
    url: %[3]s/hook
    max_alerts: 100
delivery:
  attempt_timeout: 3s
  min_backoff: 50ms
  max_backoff: 500ms
`, replica, storeBlock, sink.srv.URL))
}

// postAll posts every body to the daemons in turn, 8 at a time, retrying a
// 503 and moving a body to the next daemon when one does not answer (as an
// Alertmanager retries); it returns when each body got a 200.
func postAll(t *testing.T, urls func(i int) string, bodies [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for try := 0; ; try++ {
					if try > 600 {
						t.Errorf("body %d: no 200 after %d tries", i, try)
						break
					}
					req, _ := http.NewRequest(http.MethodPost, urls(i+try), bytes.NewReader(bodies[i]))
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					rb, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					if resp.StatusCode != 503 {
						t.Errorf("body %d: %d %s", i, resp.StatusCode, rb)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for i := range bodies {
		next <- i
	}
	close(next)
	wg.Wait()
}

// metricSum reads one counter from a daemon's /metrics, summed over the
// series whose labels contain every one of sel.
func metricSum(t *testing.T, d *daemon, name string, sel ...string) float64 {
	t.Helper()
	_, body := get(t, d.url("/metrics"))
	sum := 0.0
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, s := range sel {
			ok = ok && strings.Contains(l, s)
		}
		if !ok {
			continue
		}
		f := strings.Fields(l)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

func TestStormMemory(t *testing.T) { testStorm(t, "store:\n  type: memory") }

func TestStormRedis(t *testing.T) {
	_, prefix := redisPrefix(t)
	testStorm(t, fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n    claim_idle: 1s", redisURL(), prefix))
}

// The storm on one Redis with the keys spread over 4 shards: the alerts'
// entries, records and dedup keys in their shards, each target's outbox in
// its own, the outbox work crossing shards through the forward queue.
func TestStormRedisSharded(t *testing.T) {
	_, prefix := redisPrefix(t)
	testStorm(t, fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n    claim_idle: 1s\n    shards: 4", redisURL(), prefix))
}

// Every alert of a storm reaches PagerDuty and the webhook exactly once, the
// Slack messages account for every alert within Slack's rate limit, and the
// daemon's count of delivered alerts agrees with what arrived.
func testStorm(t *testing.T, storeBlock string) {
	sink := newStormSink(t)
	d := start(t, "--config.file="+stormConfig(t, sink, storeBlock, "storm-a"))
	bodies := stormBodies()
	began := time.Now()
	postAll(t, func(int) string { return d.url("/webhook") }, bodies)
	ingest := time.Since(began)
	eventually(t, 90*time.Second, "every alert at every stand-in", func() bool {
		s, p, h := sink.accounted()
		return s >= stormAlerts && p >= stormAlerts && h >= stormAlerts
	})
	drain := time.Since(began)
	time.Sleep(500 * time.Millisecond) // a duplicate would show by now
	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("%d alerts: ingest %v, drained %v; Slack %d messages (%d shown, %d counted), PagerDuty %d events, webhook %d POSTs",
		stormAlerts, ingest.Round(time.Millisecond), drain.Round(time.Millisecond), len(sink.slackTimes), len(sink.slackShown), sink.slackMore, sumCounts(sink.pd), len(sink.hookKeys))
	for i := 0; i < stormAlerts; i++ {
		if sink.pd[i] != 1 || sink.hook[i] != 1 {
			t.Fatalf("alert %d reached PagerDuty %d times and the webhook %d times, want once each", i, sink.pd[i], sink.hook[i])
		}
	}
	if got := len(sink.slackShown) + sink.slackMore; got != stormAlerts {
		t.Errorf("the Slack messages account for %d alerts, want %d", got, stormAlerts)
	}
	for n, c := range sink.slackShown {
		if c != 1 {
			t.Errorf("alert %d shown in %d Slack messages", n, c)
		}
	}
	checkRate(t, sink.slackTimes, 1, 3)
	for _, integration := range []string{"slack", "pagerduty", "webhook"} {
		got := metricSum(t, d, "alertmedic_notification_alerts_total", `integration="`+integration+`"`, `outcome="delivered"`)
		if int(got) != stormAlerts {
			t.Errorf("alertmedic_notification_alerts_total{integration=%q,outcome=\"delivered\"} = %v, want %d", integration, got, stormAlerts)
		}
	}
}

func sumCounts(m map[int]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// checkRate fails when any stretch of the messages' arrival times holds
// more than a GCRA limit of perSecond with burst lets through (a little
// slack for the network between the token and the arrival).
func checkRate(t *testing.T, times []time.Time, perSecond float64, burst int) {
	t.Helper()
	ts := append([]time.Time(nil), times...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			span := ts[j].Sub(ts[i]) + 200*time.Millisecond
			if allowed := burst + int(span.Seconds()*perSecond); j-i+1 > allowed {
				t.Errorf("%d Slack messages within %v: the limit (%g/s, burst %d) allows %d", j-i+1, ts[j].Sub(ts[i]), perSecond, burst, allowed)
				return
			}
		}
	}
}

// Three daemons on one Redis share a storm; one is killed with SIGKILL
// midway and restarted. Nothing is lost; no alert whose delivery was
// answered before the kill is delivered again (what the killed daemon had in
// flight may go twice, under the same key); the three together keep Slack
// within its one rate limit.
func TestStormThreeReplicasSIGKILLRedis(t *testing.T) {
	_, prefix := redisPrefix(t)
	sink := newStormSink(t)
	storeBlock := fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n    claim_idle: 1s", redisURL(), prefix)
	var dmu sync.Mutex
	ds := []*daemon{}
	for _, r := range []string{"storm-a", "storm-b", "storm-c"} {
		ds = append(ds, start(t, "--config.file="+stormConfig(t, sink, storeBlock, r)))
	}
	cfgB := stormConfig(t, sink, storeBlock, "storm-b")
	bodies := stormBodies()
	var killedAt time.Time
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		postAll(t, func(i int) string {
			dmu.Lock()
			defer dmu.Unlock()
			return ds[i%3].url("/webhook")
		}, bodies)
	}()
	// Kill b while the storm is at its height, then bring it back.
	eventually(t, 60*time.Second, "a third of the storm delivered", func() bool {
		_, p, _ := sink.accounted()
		return p > stormAlerts/3
	})
	dmu.Lock()
	b := ds[1]
	dmu.Unlock()
	b.stop(t, syscall.SIGKILL, 5*time.Second)
	killedAt = time.Now()
	time.Sleep(2 * time.Second)
	nb := start(t, "--config.file="+cfgB)
	dmu.Lock()
	ds[1] = nb
	dmu.Unlock()
	<-posted
	eventually(t, 120*time.Second, "every alert at every stand-in", func() bool {
		s, p, h := sink.accounted()
		return s >= stormAlerts && p >= stormAlerts && h >= stormAlerts
	})
	time.Sleep(time.Second)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	// What the killed daemon had in flight: answered in the last lease
	// before the kill. An alert answered earlier was settled and must not
	// come again.
	const inFlight = 2 * time.Second
	pdDup, hookDup := 0, 0
	for i := 0; i < stormAlerts; i++ {
		if sink.pd[i] == 0 || sink.hook[i] == 0 {
			t.Fatalf("alert %d lost: PagerDuty %d, webhook %d", i, sink.pd[i], sink.hook[i])
		}
		if sink.pd[i] > 1 {
			pdDup++
			if sink.pd[i] > 2 || sink.pdFirst[i].Before(killedAt.Add(-inFlight)) {
				t.Errorf("alert %d reached PagerDuty %d times, first at %v (the kill at %v)", i, sink.pd[i], sink.pdFirst[i].Format(time.StampMilli), killedAt.Format(time.StampMilli))
			}
		}
		if sink.hook[i] > 1 {
			hookDup++
			if sink.hook[i] > 2 || sink.hookFirst[i].Before(killedAt.Add(-inFlight)) {
				t.Errorf("alert %d reached the webhook %d times, first at %v (the kill at %v)", i, sink.hook[i], sink.hookFirst[i].Format(time.StampMilli), killedAt.Format(time.StampMilli))
			}
		}
	}
	for k, c := range sink.hookKeys {
		if c > 1 {
			t.Logf("webhook POST %q came %d times (in flight at the kill: the same key, so an idempotent endpoint drops it)", k, c)
		}
	}
	if got := len(sink.slackShown) + sink.slackMore; got < stormAlerts {
		t.Errorf("the Slack messages account for %d alerts, want at least %d", got, stormAlerts)
	}
	checkRate(t, sink.slackTimes, 1, 3)
	t.Logf("Slack %d messages; in flight at the kill and sent again: %d PagerDuty events, %d webhook alerts", len(sink.slackTimes), pdDup, hookDup)
}
