package receiver

// The on-call page at /: html/template pages over the same answers the
// JSON API gives (alerts, timelines, the remediation audit, dead letters,
// the routes test, health), with the templates and static files embedded.
// Every label and annotation goes through html/template's escaping: they
// are data, never markup. The pages follow web.read_auth; the forms that
// change state (pause, resume) need web.admin_auth and are refused when a
// browser sends them from another origin (net/http's CrossOriginProtection,
// by Sec-Fetch-Site and Origin). A little JavaScript refreshes the alerts
// list when asked to; everything works without it.

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

//go:embed ui
var uiFS embed.FS

var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"alerts", "timeline", "remediation", "deliveries", "routes", "health"} {
		out[name] = template.Must(template.New(name).ParseFS(uiFS, "ui/layout.html", "ui/"+name+".html"))
	}
	return out
}()

// storeDown is what a page says when the store did not answer.
const storeDown = "The store did not answer; try again shortly."

// pageError shows page name with an error above it.
func (r *Receiver) pageError(c *gin.Context, code int, name string, d pageData, msg string) {
	d["Error"] = msg
	r.page(c, code, name, d)
}

// pageData is what every page's layout reads, and the page's own.
type pageData map[string]any

// titles are the pages' titles; a timeline's is its alert's name.
var titles = map[string]string{"alerts": "Alerts", "timeline": "Alert", "remediation": "Remediation", "deliveries": "Dead letters",
	"routes": "Routes test", "health": "Health"}

func (r *Receiver) page(c *gin.Context, code int, name string, d pageData) {
	if _, ok := d["Title"]; !ok {
		d["Title"] = titles[name]
	}
	d["Nav"], d["Version"] = name, r.o.Version
	if name == "timeline" {
		d["Nav"] = "alerts"
	}
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, name+".html", d); err != nil {
		fail(c, http.StatusInternalServerError, "render the page: "+err.Error())
		return
	}
	c.Header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(code, "text/html; charset=utf-8", b.Bytes())
}

func (r *Receiver) pageRoutes(e *gin.Engine) {
	static, _ := fs.Sub(uiFS, "ui")
	e.GET("/", r.readAuth, r.alertsPage)
	e.GET("/alerts/:fp", r.readAuth, r.timelinePage)
	e.GET("/remediation", r.readAuth, r.remediationPage)
	e.POST("/remediation/:action", r.sameOrigin, r.auth(true), r.remediationForm)
	e.GET("/deliveries", r.readAuth, r.deliveriesPage)
	e.POST("/deliveries/retry", r.sameOrigin, r.auth(true), r.sendAgain(true))
	e.GET("/routes", r.readAuth, r.routesPage)
	e.GET("/health", r.readAuth, r.healthPage)
	e.GET("/static/:file", func(c *gin.Context) {
		f := c.Param("file")
		if f != "app.css" && f != "app.js" {
			fail(c, http.StatusNotFound, "no such file")
			return
		}
		b, _ := fs.ReadFile(static, f)
		ct := "text/css; charset=utf-8"
		if path.Ext(f) == ".js" {
			ct = "text/javascript; charset=utf-8"
		}
		c.Header("Cache-Control", "max-age=300")
		c.Data(http.StatusOK, ct, b)
	})
}

var crossOrigin = http.NewCrossOriginProtection()

// sameOrigin refuses a state-changing form a browser sent from another
// origin (cross-site request forgery).
func (r *Receiver) sameOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		fail(c, http.StatusForbidden, "refused: this form was sent from another origin")
		return
	}
	c.Next()
}

func (r *Receiver) alertsPage(c *gin.Context) {
	d := pageData{"States": api.AlertStates, "Filter": c.Query("filter"), "Receiver": c.Query("receiver"), "State": c.Query("state"),
		"Alerts": api.Alerts{}}
	q := api.AlertQuery{Receiver: c.Query("receiver"), State: c.Query("state"), Limit: 500}
	if f := strings.TrimSpace(c.Query("filter")); f != "" {
		if _, err := labels.ParseMatchers(f); err != nil {
			r.pageError(c, http.StatusBadRequest, "alerts", d, "The label filter is not in Alertmanager's matcher syntax: "+err.Error())
			return
		}
		q.Filter = []string{f}
	}
	if q.State != "" && !slices.Contains(api.AlertStates, q.State) {
		r.pageError(c, http.StatusBadRequest, "alerts", d, "Unknown state "+q.State)
		return
	}
	if r.o.Alerts != nil {
		list, err := r.o.Alerts.Alerts(c.Request.Context(), q)
		if err != nil {
			r.pageError(c, http.StatusServiceUnavailable, "alerts", d, storeDown)
			return
		}
		d["Alerts"] = list
	}
	r.page(c, http.StatusOK, "alerts", d)
}

func (r *Receiver) timelinePage(c *gin.Context) {
	fp := c.Param("fp")
	d := pageData{"Timeline": api.Timeline{}}
	if !alert.IsFingerprint(fp) || r.o.Alerts == nil {
		r.pageError(c, http.StatusNotFound, "timeline", d, "No such alert: a fingerprint is 16 hexadecimal digits.")
		return
	}
	tl, err := r.o.Alerts.Timeline(c.Request.Context(), fp)
	switch {
	case errors.Is(err, api.ErrNoAlert):
		r.pageError(c, http.StatusNotFound, "timeline", d, "alertmedic has no record of this alert (never seen, or its history_retention passed).")
		return
	case err != nil:
		r.pageError(c, http.StatusServiceUnavailable, "timeline", d, storeDown)
		return
	}
	d["Timeline"] = tl
	title := tl.Labels["alertname"]
	if title == "" {
		title = fp
	}
	d["Title"] = title
	r.page(c, http.StatusOK, "timeline", d)
}

func (r *Receiver) remediationPage(c *gin.Context) {
	d := pageData{"Remediations": api.Remediations{}}
	switch c.Query("done") {
	case "paused":
		d["Notice"] = "Remediation paused."
	case "resumed":
		d["Notice"] = "Remediation resumed."
	}
	if r.o.Remediation != nil {
		recs, err := r.o.Remediation.Audit(c.Request.Context(), 200)
		if err != nil {
			r.pageError(c, http.StatusServiceUnavailable, "remediation", d, storeDown)
			return
		}
		paused, _ := r.o.Remediation.Paused(c.Request.Context())
		d["Remediations"] = api.Remediations{Paused: paused, Records: recs}
	}
	r.page(c, http.StatusOK, "remediation", d)
}

// remediationForm pauses or resumes from the page, then shows the audit.
func (r *Receiver) remediationForm(c *gin.Context) {
	if r.o.Remediation == nil {
		fail(c, http.StatusNotImplemented, "remediation is not configured")
		return
	}
	var err error
	done := ""
	switch c.Param("action") {
	case "pause":
		err, done = r.o.Remediation.Pause(c.Request.Context(), r.who(c)), "paused"
	case "resume":
		err, done = r.o.Remediation.Resume(c.Request.Context(), r.who(c)), "resumed"
	default:
		fail(c, http.StatusNotFound, "no such form")
		return
	}
	if err != nil {
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	}
	c.Redirect(http.StatusSeeOther, "/remediation?done="+done)
}

// sendAgain puts a dead letter back in the outbox (admin credentials): its
// key comes as the form's or the query's key. From the page it shows the
// dead letters again.
func (r *Receiver) sendAgain(page bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r.o.SendAgain == nil {
			fail(c, http.StatusNotImplemented, "sending again is not available")
			return
		}
		key := c.PostForm("key")
		if key == "" {
			key = c.Query("key")
		}
		if key == "" || len(key) > 1024 {
			fail(c, http.StatusBadRequest, "give the dead letter's key (as GET /api/v1/deliveries/failed lists it)")
			return
		}
		ok, err := r.o.SendAgain(c.Request.Context(), key)
		switch {
		case err != nil:
			c.Header("Retry-After", "5")
			fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		case !ok:
			fail(c, http.StatusNotFound, "no dead letter of that key (sent again already, or dropped at the cap)")
		case page:
			zerolog.Ctx(c.Request.Context()).Info().Str("by", r.who(c)).Str("item", key).Msg("dead letter sent again from the page")
			c.Redirect(http.StatusSeeOther, "/deliveries?done=sent")
		default:
			zerolog.Ctx(c.Request.Context()).Info().Str("by", r.who(c)).Str("item", key).Msg("dead letter sent again")
			c.JSON(http.StatusOK, gin.H{"sent_again": key})
		}
	}
}

func (r *Receiver) deliveriesPage(c *gin.Context) {
	d := pageData{"Dead": api.DeadLetters{}}
	if c.Query("done") == "sent" {
		d["Notice"] = "Sent again: the notification is back in the outbox."
	}
	if r.o.FailedDeliveries != nil {
		dl, err := r.o.FailedDeliveries(c.Request.Context(), "", 100, false)
		if err != nil {
			r.pageError(c, http.StatusServiceUnavailable, "deliveries", d, storeDown)
			return
		}
		d["Dead"] = dl
	}
	r.page(c, http.StatusOK, "deliveries", d)
}

// routesPage is the routes test as a form: labels, one name=value per
// line, and an instant.
func (r *Receiver) routesPage(c *gin.Context) {
	text, at := c.Query("labels"), strings.TrimSpace(c.Query("at"))
	d := pageData{"Labels": text, "At": at}
	if strings.TrimSpace(text) == "" || r.o.RouteTest == nil {
		r.page(c, http.StatusOK, "routes", d)
		return
	}
	ls := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			r.pageError(c, http.StatusBadRequest, "routes", d, "Each line is name=value: "+line)
			return
		}
		ls[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), `"`)
	}
	when := time.Now()
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			r.pageError(c, http.StatusBadRequest, "routes", d, "At is an RFC 3339 time, like 2026-11-26T23:30:00Z.")
			return
		}
		when = t
	}
	ans, err := r.o.RouteTest(ls, when)
	if err != nil {
		r.pageError(c, http.StatusBadRequest, "routes", d, err.Error())
		return
	}
	d["Answer"] = ans
	r.page(c, http.StatusOK, "routes", d)
}

// healthView is the health page's table.
type healthView struct {
	Store, StoreTime, StoreError, Queue string
	DeadLetters                         int
	Integrations                        []integrationView
}

type integrationView struct{ Name, State string }

func (r *Receiver) healthPage(c *gin.Context) {
	h := healthView{Store: r.o.StoreType + ": healthy"}
	start := time.Now()
	if err := r.o.Store.Ping(c.Request.Context()); err != nil {
		h.Store, h.StoreError = r.o.StoreType+": unhealthy", err.Error()
	}
	h.StoreTime = time.Since(start).Round(time.Microsecond).String()
	if d, err := r.o.Store.Depth(c.Request.Context()); err == nil {
		h.Queue = formatDepth(d, r.o.Capacity)
	}
	if r.o.FailedDeliveries != nil {
		if dl, err := r.o.FailedDeliveries(c.Request.Context(), "", 1, false); err == nil {
			h.DeadLetters = dl.Total
		}
	}
	if r.o.Integrations != nil {
		for _, in := range r.o.Integrations() {
			h.Integrations = append(h.Integrations, integrationView{Name: in[0], State: in[1]})
		}
	}
	r.page(c, http.StatusOK, "health", pageData{"Health": h})
}

func formatDepth(d int64, capacity int) string {
	if capacity <= 0 {
		return strconv.FormatInt(d, 10) + " entries waiting"
	}
	return strconv.FormatInt(d, 10) + " entries waiting, of a capacity of " + strconv.Itoa(capacity)
}
