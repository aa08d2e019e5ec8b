package oncall_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/oncall"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store/memory"
)

// standIn records the JSON bodies POSTed to it and answers with answer.
type standIn struct {
	mu     sync.Mutex
	bodies []map[string]any
	auth   []string
	status int
	answer string
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s.mu.Lock()
	s.bodies = append(s.bodies, m)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	status, answer := s.status, s.answer
	s.mu.Unlock()
	if status == 0 {
		status = http.StatusAccepted
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (s *standIn) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

var (
	pdTarget = routing.Target{Receiver: "oncall", Integration: "pagerduty", Name: "pagerduty[0]"}
	at       = time.Date(2026, 12, 1, 14, 2, 0, 0, time.UTC)
)

func firing(fp string, labels template.KV) template.Alert {
	return template.Alert{Status: "firing", Labels: labels, Fingerprint: fp, StartsAt: at.Add(-time.Minute)}
}

type rig struct {
	refs notifiers.Refs
	pd   *pagerduty.Notifier
	pdIn *standIn
	amIn *standIn
	am   *httptest.Server
	acts *oncall.Actions
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{refs: notifiers.StoreRefs(memory.New(memory.Options{})), pdIn: &standIn{answer: `{"status":"success","dedup_key":"x"}`}, amIn: &standIn{status: http.StatusOK, answer: `{"silenceID":"6f1c-silence"}`}}
	pdSrv := httptest.NewServer(r.pdIn)
	t.Cleanup(pdSrv.Close)
	r.am = httptest.NewServer(r.amIn)
	t.Cleanup(r.am.Close)
	r.pd = pagerduty.New(pagerduty.Config{RoutingKey: "routing-key-secret", URL: pdSrv.URL + "/v2/enqueue"}, nil)
	r.acts = oncall.New(oncall.Options{
		Refs:      r.refs,
		PagerDuty: func() *pagerduty.Notifier { return r.pd },
		// Alerts of team "dev" are routed to no PagerDuty target.
		PagerDutyTargets: func(labels template.KV) []routing.Target {
			if labels["team"] == "dev" {
				return nil
			}
			return []routing.Target{pdTarget}
		},
		Alertmanager: func(externalURL string) *oncall.Alertmanager {
			if externalURL == "" {
				return nil
			}
			return &oncall.Alertmanager{URL: externalURL, BearerToken: "am-token-secret"}
		},
		Logger: zerolog.Nop(),
		Now:    func() time.Time { return at },
	})
	return r
}

func TestAcknowledgeSendsOneEventPerPagedAlert(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	alerts := template.Alerts{firing("aaa", template.KV{"alertname": "HighErrorRate"}), firing("bbb", template.KV{"alertname": "HighErrorRate", "instance": "b"})}
	nt := &notifiers.Notification{Key: "n1", Kind: notifiers.KindAlerts, Target: pdTarget, Alerts: alerts, GroupKey: "{}:{alertname=\"HighErrorRate\"}"}
	if _, err := r.pd.Notify(ctx, nt); err != nil {
		t.Fatal(err)
	}
	triggers := len(r.pdIn.got())
	if triggers != 2 {
		t.Fatalf("triggers: got %d events, want 2", triggers)
	}

	line, err := r.acts.Act(ctx, slack.Click{Action: slack.ActionAcknowledge, UserID: "U123", UserName: "alice", Group: slack.Group{Key: nt.GroupKey, Alerts: alerts}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Acknowledged by <@U123> at 14:02 UTC"; line != want {
		t.Errorf("line: got %q, want %q", line, want)
	}
	acks := r.pdIn.got()[triggers:]
	if len(acks) != 2 {
		t.Fatalf("acknowledge: got %d events, want 2", len(acks))
	}
	want := map[string]bool{pagerduty.DedupKey(pdTarget.Key(), "aaa"): true, pagerduty.DedupKey(pdTarget.Key(), "bbb"): true}
	for _, ev := range acks {
		if ev["event_action"] != "acknowledge" || ev["routing_key"] != "routing-key-secret" || !want[ev["dedup_key"].(string)] {
			t.Errorf("acknowledge event: %v", ev)
		}
		delete(want, ev["dedup_key"].(string))
	}

	clicks, err := oncall.Clicks(ctx, r.refs, nt.GroupKey)
	if err != nil || len(clicks) != 1 || clicks[0].UserID != "U123" || clicks[0].Action != "acknowledge" || clicks[0].Result != "ok" {
		t.Errorf("audit: %+v, %v", clicks, err)
	}
}

func TestAcknowledgeWithNothingPagedFailsAndIsAudited(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	dev := []template.Alert{firing("ccc", template.KV{"alertname": "Slow", "team": "dev"})}
	_, err := r.acts.Act(ctx, slack.Click{Action: slack.ActionAcknowledge, UserID: "U1", Group: slack.Group{Key: "never-paged", Alerts: dev}})
	if err == nil || !strings.Contains(err.Error(), "no PagerDuty target pages") {
		t.Fatalf("got %v", err)
	}
	if n := len(r.pdIn.got()); n != 0 {
		t.Errorf("PagerDuty got %d events, want none", n)
	}
	clicks, _ := oncall.Clicks(ctx, r.refs, "never-paged")
	if len(clicks) != 1 || clicks[0].Result != "failed" {
		t.Errorf("audit: %+v", clicks)
	}
}

func TestSilenceCreatesOneSilenceOfTheCommonLabels(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	g := slack.Group{Key: "g", ExternalURL: r.am.URL, Alerts: []template.Alert{
		firing("aaa", template.KV{"alertname": "HighErrorRate", "severity": "critical", "instance": "a"}),
		firing("bbb", template.KV{"alertname": "HighErrorRate", "severity": "critical", "instance": "b"}),
	}}
	line, err := r.acts.Act(ctx, slack.Click{Action: slack.ActionSilence, Duration: time.Hour, UserID: "U9", UserName: "bob", Channel: "C1", TS: "1700000000.000100", Group: g})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Silenced for 1h by <@U9> until 15:02 UTC (silence 6f1c-silence)"; line != want {
		t.Errorf("line: got %q, want %q", line, want)
	}
	got := r.amIn.got()
	if len(got) != 1 {
		t.Fatalf("silences posted: %d", len(got))
	}
	s := got[0]
	b, _ := json.Marshal(s["matchers"])
	if want := `[{"isEqual":true,"isRegex":false,"name":"alertname","value":"HighErrorRate"},{"isEqual":true,"isRegex":false,"name":"severity","value":"critical"}]`; string(b) != want {
		t.Errorf("matchers: got %s, want %s", b, want)
	}
	if s["startsAt"] != "2026-12-01T14:02:00Z" || s["endsAt"] != "2026-12-01T15:02:00Z" || s["createdBy"] != "slack:bob" {
		t.Errorf("silence: %v", s)
	}
	if c, _ := s["comment"].(string); !strings.Contains(c, "https://slack.com/archives/C1/p1700000000000100") {
		t.Errorf("comment links no message: %q", c)
	}
	if r.amIn.auth[0] != "Bearer am-token-secret" {
		t.Errorf("authorization: %q", r.amIn.auth[0])
	}
}

func TestSilenceRefusals(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	one := []template.Alert{firing("aaa", template.KV{"alertname": "X"})}
	for _, tc := range []struct {
		name string
		c    slack.Click
		want string
	}{
		{"too long", slack.Click{Action: "silence", Duration: 90 * 24 * time.Hour, Group: slack.Group{ExternalURL: r.am.URL, Alerts: one}}, "is not between"},
		{"no Alertmanager", slack.Click{Action: "silence", Duration: time.Hour, Group: slack.Group{Alerts: one}}, "no Alertmanager"},
		{"nothing in common", slack.Click{Action: "silence", Duration: time.Hour, Group: slack.Group{ExternalURL: r.am.URL, Alerts: []template.Alert{
			firing("a", template.KV{"alertname": "X"}), firing("b", template.KV{"alertname": "Y"})}}}, "no label in common"},
		{"unknown action", slack.Click{Action: "reboot"}, "unknown action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.acts.Act(ctx, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if n := len(r.amIn.got()); n != 0 {
		t.Errorf("Alertmanager got %d silences, want none", n)
	}
}

func TestSilenceErrorCarriesNoCredential(t *testing.T) {
	r := newRig(t)
	r.amIn.status, r.amIn.answer = http.StatusInternalServerError, "bad token am-token-secret"
	_, err := r.acts.Act(context.Background(), slack.Click{Action: "silence", Duration: time.Hour, Group: slack.Group{ExternalURL: r.am.URL, Alerts: []template.Alert{firing("a", template.KV{"alertname": "X"})}}})
	if err == nil || strings.Contains(err.Error(), "am-token-secret") || !strings.Contains(err.Error(), "500") {
		t.Errorf("got %v", err)
	}
}

// wantClicks compares alertmedic_slack_clicks_total in reg with the
// resume clicks ok and failed; the other actions' are 0.
func wantClicks(t *testing.T, reg *prometheus.Registry, ok, failed int) {
	t.Helper()
	want := fmt.Sprintf(`# HELP alertmedic_slack_clicks_total Slack button clicks carried out, by action and result (ok, failed).
# TYPE alertmedic_slack_clicks_total counter
alertmedic_slack_clicks_total{action="acknowledge",result="failed"} 0
alertmedic_slack_clicks_total{action="acknowledge",result="ok"} 0
alertmedic_slack_clicks_total{action="approve",result="failed"} 0
alertmedic_slack_clicks_total{action="approve",result="ok"} 0
alertmedic_slack_clicks_total{action="deny",result="failed"} 0
alertmedic_slack_clicks_total{action="deny",result="ok"} 0
alertmedic_slack_clicks_total{action="resume",result="failed"} %d
alertmedic_slack_clicks_total{action="resume",result="ok"} %d
alertmedic_slack_clicks_total{action="silence",result="failed"} 0
alertmedic_slack_clicks_total{action="silence",result="ok"} 0
`, failed, ok)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "alertmedic_slack_clicks_total"); err != nil {
		t.Error(err)
	}
}

// Resume (the breaker's notice) resumes remediation by "slack:<name>",
// once per click; it is audited under the remediation key and counted. A
// failure is shown as it is.
func TestResume(t *testing.T) {
	ctx := context.Background()
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	reg := prometheus.NewRegistry()
	var by []string
	var fail error
	acts := oncall.New(oncall.Options{
		Refs: refs,
		Resume: func(_ context.Context, who string) error {
			by = append(by, who)
			return fail
		},
		Logger: zerolog.Nop(), Registerer: reg,
		Now: func() time.Time { return at },
	})
	wantClicks(t, reg, 0, 0)
	click := slack.Click{Action: slack.ActionResume, UserID: "U123", UserName: "alice", Channel: "C1", TS: "1.2", Remediation: "0123abcd"}
	line, err := acts.Act(ctx, click)
	if err != nil || line != "Resumed by <@U123> at 14:02 UTC" {
		t.Fatalf("Act = %q, %v", line, err)
	}
	if len(by) != 1 || by[0] != "slack:alice" {
		t.Errorf("Resume called by %q, want once by slack:alice", by)
	}
	fail = errors.New("resume remediation: store down")
	noName := click
	noName.UserName = ""
	if _, err := acts.Act(ctx, noName); err == nil || err.Error() != "resume remediation: store down" {
		t.Errorf("failed resume: %v", err)
	}
	if len(by) != 2 || by[1] != "slack:U123" {
		t.Errorf("Resume called by %q, want slack:U123 without a name", by)
	}
	clicks, err := oncall.Clicks(ctx, refs, oncall.RemediationAudit)
	if err != nil || len(clicks) != 2 || clicks[0].Action != "resume" || clicks[0].Result != "ok" || clicks[0].User != "alice" ||
		clicks[1].Result != "failed" || !strings.Contains(clicks[1].Detail, "store down") {
		t.Errorf("audit: %+v, %v", clicks, err)
	}
	wantClicks(t, reg, 1, 1)

	// Without the option, a clear failure, audited and counted too.
	none := oncall.New(oncall.Options{Refs: refs, Logger: zerolog.Nop(), Now: func() time.Time { return at }})
	if _, err := none.Act(ctx, click); err == nil || !strings.Contains(err.Error(), "cannot be resumed from Slack here") {
		t.Errorf("without Resume: %v", err)
	}
	if clicks, _ := oncall.Clicks(ctx, refs, oncall.RemediationAudit); len(clicks) != 3 || clicks[2].Result != "failed" {
		t.Errorf("audit without Resume: %+v", clicks)
	}
}

// Approve and Deny answer the notice's proposal for "slack:<name>", with
// the clicker's ID and name for the approvers check; the engine's refusal
// is shown as it is; both are audited under the remediation key.
func TestAnswer(t *testing.T) {
	ctx := context.Background()
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	var got []string
	acts := oncall.New(oncall.Options{
		Refs: refs,
		Answer: func(_ context.Context, id string, approve bool, by string, ids []string) error {
			got = append(got, fmt.Sprintf("%s %v %s %v", id, approve, by, ids))
			if by == "slack:mallory" {
				return errors.New("not an approver of this rule")
			}
			return nil
		},
		Logger: zerolog.Nop(), Now: func() time.Time { return at },
	})
	click := slack.Click{Action: slack.ActionApprove, UserID: "U123", UserName: "alice", Channel: "C1", TS: "1.2", Remediation: "0123abcd"}
	if line, err := acts.Act(ctx, click); err != nil || line != "Approved by <@U123> at 14:02 UTC" {
		t.Fatalf("approve: %q, %v", line, err)
	}
	deny := click
	deny.Action, deny.UserID, deny.UserName = slack.ActionDeny, "U666", "mallory"
	if _, err := acts.Act(ctx, deny); err == nil || err.Error() != "not an approver of this rule" {
		t.Fatalf("deny by a non-approver: %v", err)
	}
	if want := "[0123abcd true slack:alice [U123 alice] 0123abcd false slack:mallory [U666 mallory]]"; fmt.Sprint(got) != want {
		t.Errorf("Answer calls %v, want %s", got, want)
	}
	clicks, err := oncall.Clicks(ctx, refs, oncall.RemediationAudit)
	if err != nil || len(clicks) != 2 || clicks[0].Action != "approve" || clicks[0].Result != "ok" || clicks[1].Action != "deny" || clicks[1].Result != "failed" {
		t.Errorf("audit: %+v, %v", clicks, err)
	}
}
