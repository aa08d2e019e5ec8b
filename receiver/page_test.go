package receiver

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alertmedic/alertmedic/api"
)

var updatePages = flag.Bool("update", false, "rewrite the golden pages")

// timelines serves the timelines the pipeline's golden tests wrote
// (pipeline/testdata/timeline/*.json), as the app's AlertsAPI would.
type timelines map[string]api.Timeline

func (ts timelines) Alerts(context.Context, api.AlertQuery) (api.Alerts, error) {
	out := api.Alerts{Alerts: []api.AlertSummary{}}
	for _, tl := range ts {
		out.Alerts = append(out.Alerts, api.AlertSummary{Fingerprint: tl.Fingerprint, Labels: tl.Labels, Status: tl.Status, StartsAt: tl.StartsAt})
	}
	return out, nil
}

func (ts timelines) Timeline(_ context.Context, fp string) (api.Timeline, error) {
	for _, tl := range ts {
		if tl.Fingerprint == fp {
			return tl, nil
		}
	}
	return api.Timeline{}, api.ErrNoAlert
}

var timelineTable = regexp.MustCompile(`(?s)<table class="timeline">.*?</table>`)

// The page tells the same three stories as alert why (a flapping alert,
// one deferred by quiet hours, one delivered after a Slack 429): every
// event, in order, each field escaped; golden-tested.
func TestTimelinePageStories(t *testing.T) {
	ts := timelines{}
	for _, name := range []string{"flapping", "quiet_hours", "slack_429"} {
		b, err := os.ReadFile(filepath.Join("..", "pipeline", "testdata", "timeline", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var tl api.Timeline
		if err := json.Unmarshal(b, &tl); err != nil {
			t.Fatal(err)
		}
		ts[name] = tl
	}
	h := newHarness(t, nil, Settings{})
	h.rcv.o.Alerts = ts
	for name, tl := range ts {
		resp, err := http.Get(h.srv.URL + "/alerts/" + tl.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		table := timelineTable.FindString(string(body))
		// Every event is a row, in the timeline's order.
		if n := strings.Count(table, "<tr class=\"stage-"); n != len(tl.Events) {
			t.Errorf("%s: %d rows for %d events", name, n, len(tl.Events))
		}
		path := filepath.Join("testdata", "page", name+".golden")
		if *updatePages {
			if err := os.WriteFile(path, []byte(table+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if table+"\n" != string(want) {
			t.Errorf("%s:\n%s\nwant:\n%s", name, table, want)
		}
	}
	// The list links each alert to its story.
	code, list := get(t, h.srv.URL+"/")
	if code != 200 || !strings.Contains(list, `href="/alerts/36fa6ad150acb3fb"`) {
		t.Errorf("the alerts page (%d) does not link the stories:\n%s", code, list)
	}
}

// A label and an event's detail holding markup are shown as text.
func TestPageEscapes(t *testing.T) {
	h := newHarness(t, nil, Settings{})
	h.rcv.o.Alerts = timelines{"x": {Fingerprint: "0123456789abcdef", Status: "firing",
		Labels: map[string]string{"alertname": "<script>alert(1)</script>", "note": `"><img src=x onerror=alert(2)>`},
		Events: []api.TimelineEvent{{Stage: api.StageReceived, Detail: "<b>bold</b>"}}}}
	for _, path := range []string{"/", "/alerts/0123456789abcdef"} {
		code, body := get(t, h.srv.URL+path)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		for _, raw := range []string{"<script>alert(1)", "<img src=x", "<b>bold"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s carries %q unescaped", path, raw)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the label as text", path)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Send again, from the API and from the page: admin credentials, a key,
// same origin for the form; 404 for a key with no dead letter.
func TestSendAgainEndpoints(t *testing.T) {
	h := newHarness(t, nil, Settings{AdminAuth: Credentials{Username: "alice", Password: "pw"}})
	var sent []string
	h.rcv.o.SendAgain = func(_ context.Context, key string) (bool, error) {
		if key != "e:req-1:oncall/pagerduty[0]" {
			return false, nil
		}
		sent = append(sent, key)
		return true, nil
	}
	admin := []string{"Authorization", "Basic YWxpY2U6cHc="}
	form := "application/x-www-form-urlencoded"
	body := []byte("key=" + url.QueryEscape("e:req-1:oncall/pagerduty[0]"))
	for _, tc := range []struct {
		path  string
		ctype string
		body  []byte
		hdr   []string
		code  int
	}{
		{"/api/v1/deliveries/failed/retry?key=e:req-1:oncall/pagerduty%5B0%5D", "", nil, nil, 401},
		{"/api/v1/deliveries/failed/retry", "", nil, admin, 400},
		{"/api/v1/deliveries/failed/retry?key=nope", "", nil, admin, 404},
		{"/api/v1/deliveries/failed/retry?key=e:req-1:oncall/pagerduty%5B0%5D", "", nil, admin, 200},
		{"/deliveries/retry", form, body, append([]string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, admin...), 403},
		{"/deliveries/retry", form, body, nil, 401},
		// 303 to the dead letters, which the client follows.
		{"/deliveries/retry", form, body, append([]string{"Sec-Fetch-Site", "same-origin"}, admin...), 200},
	} {
		code, resp := h.post(t, tc.path, tc.ctype, tc.body, tc.hdr...)
		if code != tc.code {
			t.Errorf("POST %s: %d %s, want %d", tc.path, code, resp, tc.code)
		}
	}
	if len(sent) != 2 {
		t.Errorf("sent again %v, want twice (API, page)", sent)
	}
}
