package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium; under CI its absence fails the test
// (.ci/run installs it), elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs it with apt-get)")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// scriptLabel is the captured firing payload with its instance label
// holding markup: the page must show it as text.
func scriptLabel(t *testing.T) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, "firing.json"), &m); err != nil {
		t.Fatal(err)
	}
	a := m["alerts"].([]any)[0].(map[string]any)
	a["labels"].(map[string]any)["instance"] = `<script>window.pwned=1</script>`
	a["labels"].(map[string]any)["alertname"] = "ScriptInLabel"
	delete(a, "fingerprint")
	b, _ := json.Marshal(m)
	return b
}

// The on-call page in a real browser (headless Chromium) against the
// daemon fed real captured payloads: the alerts are listed, a timeline
// shows the route and the deliveries, the routes-test form answers,
// remediation pauses with the admin credentials and the audit shows it,
// and a label holding <script> is shown as text and never runs.
// ALERTMEDIC_SCREENSHOTS=dir writes each view there as a PNG.
func TestPageInBrowser(t *testing.T) {
	browser := chromium(t)
	cfg := writeConfig(t, exampleWith(t,
		[2]string{"\nweb:\n", "\nweb:\n  admin_auth:\n    basic_auth: {username: admin, password: admin-pass}\n"}))
	d := start(t, "--config.file="+cfg)
	for _, body := range [][]byte{fixture(t, "firing.json"), fixture(t, "group_50.json"), scriptLabel(t)} {
		if code, resp := post(t, d.url("/webhook"), body); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
	}
	eventually(t, 10*time.Second, "the alerts listed", func() bool {
		_, b := get(t, d.url("/api/v1/alerts"))
		return strings.Contains(b, "HighErrorRate") && strings.Contains(b, "ScriptInLabel")
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	shots := os.Getenv("ALERTMEDIC_SCREENSHOTS")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		must(what, chromedp.Do(ctx, steps...))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		must("read "+sel, err)
		return s
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()) // the window, as PNG
		must("screenshot", err)
		must("write the screenshot", os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin-pass"))

	do("the alerts page", chromedp.Navigate(d.url("/")), chromedp.WaitVisible(chromedp.CSS("table.alerts")))
	list := text("table.alerts")
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.querySelectorAll("script").length) + " " + String(document.querySelectorAll("script:not([src])").length)`))
	must("count scripts", err)
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.pwned)`))
	must("window.pwned", err)
	shot("alerts")

	// The captured critical alert's timeline.
	do("open the timeline", chromedp.Click(`//a[@class="alert"][text()="HighErrorRate"]`), chromedp.WaitVisible(chromedp.CSS("table.timeline")))
	story := text("table.timeline")
	shot("timeline")

	// The routes test as a form.
	do("the routes test", chromedp.Navigate(d.url("/routes")),
		chromedp.SetValue(chromedp.CSS("textarea[name=labels]"), "alertname=HighErrorRate\nseverity=critical"),
		chromedp.Click(chromedp.CSS("#route")), chromedp.WaitVisible(chromedp.CSS("pre.explanation")))
	routed := text("main")
	shot("routes")

	// Pause with the admin credentials.
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	must("network", err)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
	must("credentials", err)
	do("pause", chromedp.Navigate(d.url("/remediation")), chromedp.Click(chromedp.CSS("#pause")), chromedp.WaitVisible(chromedp.CSS("#resume")))
	audit := text("main")
	shot("remediation")

	if !strings.Contains(list, "HighErrorRate") || !strings.Contains(list, "ScriptInLabel") {
		t.Errorf("the alerts page lists:\n%s", list)
	}
	if !strings.Contains(list, "instance=<script>window.pwned=1</script>") {
		t.Errorf("the <script> label is not shown as text:\n%s", list)
	}
	if scripts != "1 0" || pwned != "undefined" {
		t.Errorf("scripts on the page %q (want only app.js), window.pwned %q", scripts, pwned)
	}
	for _, want := range []string{"routed", "route.routes[0] -> oncall", "oncall/pagerduty[0]", "delivered"} {
		if !strings.Contains(story, want) {
			t.Errorf("the timeline has no %q:\n%s", want, story)
		}
	}
	if !strings.Contains(routed, "oncall/pagerduty[0]") || !strings.Contains(routed, `matched route.routes[0] {severity="critical"}`) {
		t.Errorf("the routes test answered:\n%s", routed)
	}
	if !strings.Contains(audit, "Remediation paused.") || !strings.Contains(audit, "is paused") || !strings.Contains(audit, "admin@127.0.0.1") {
		t.Errorf("after the pause the page says:\n%s", audit)
	}

	// The form without the admin credentials, or from another origin, is
	// refused.
	if code, _ := post(t, d.url("/remediation/resume"), nil); code != 401 {
		t.Errorf("resume without credentials: %d", code)
	}
	if code, body := post(t, d.url("/remediation/resume"), nil, "Authorization", auth, "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"); code != 403 {
		t.Errorf("resume from another origin: %d %s", code, body)
	}
}
