package receiver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// AlertsAPI is what the alerts endpoints need: the listing and each
// alert's timeline.
type AlertsAPI interface {
	Alerts(ctx context.Context, q api.AlertQuery) (api.Alerts, error)
	Timeline(ctx context.Context, fp string) (api.Timeline, error)
}

// listAlerts answers GET /api/v1/alerts?filter=...&state=...&receiver=...:
// filter is an Alertmanager matcher (alertname="X", team=~"a|b"), given
// once per matcher, as in Alertmanager's API v2.
func (r *Receiver) listAlerts(c *gin.Context) {
	if r.o.Alerts == nil {
		c.JSON(http.StatusOK, api.Alerts{Alerts: []api.AlertSummary{}})
		return
	}
	q, err := alertQuery(c)
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	out, err := r.o.Alerts.Alerts(c.Request.Context(), q)
	if err != nil {
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	}
	c.JSON(http.StatusOK, out)
}

// alertQuery reads the listing's query parameters.
func alertQuery(c *gin.Context) (api.AlertQuery, error) {
	var q api.AlertQuery
	for _, f := range c.QueryArray("filter") {
		if _, err := labels.ParseMatchers(f); err != nil {
			return q, errors.New("filter " + strconv.Quote(f) + ": " + err.Error())
		}
		q.Filter = append(q.Filter, f)
	}
	q.State = c.Query("state")
	if q.State != "" && !slices.Contains(api.AlertStates, q.State) {
		return q, errors.New("state must be one of " + strings.Join(api.AlertStates, ", "))
	}
	q.Receiver = c.Query("receiver")
	q.Limit = 1000
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return q, errors.New("limit must be a number from 1 to 10000")
		}
		q.Limit = n
	}
	return q, nil
}

// timeline answers GET /api/v1/alerts/{fingerprint}/timeline.
func (r *Receiver) timeline(c *gin.Context) {
	fp := c.Param("fp")
	if !alert.IsFingerprint(fp) {
		fail(c, http.StatusBadRequest, "a fingerprint is 16 hexadecimal digits, as Alertmanager shows it")
		return
	}
	if r.o.Alerts == nil {
		fail(c, http.StatusNotFound, api.ErrNoAlert.Error())
		return
	}
	tl, err := r.o.Alerts.Timeline(c.Request.Context(), fp)
	switch {
	case errors.Is(err, api.ErrNoAlert):
		fail(c, http.StatusNotFound, err.Error())
	case err != nil:
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
	default:
		c.JSON(http.StatusOK, tl)
	}
}
