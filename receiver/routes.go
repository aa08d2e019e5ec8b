package receiver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// routeTest is `alertmedic routes test` over HTTP. Labels come as
// name=value query parameters (alertname=HighErrorRate&severity=critical),
// or as label=name=value for label names that clash with at.
func (r *Receiver) routeTest(c *gin.Context) {
	if r.o.RouteTest == nil {
		fail(c, http.StatusNotImplemented, "routing is not configured")
		return
	}
	labels := map[string]string{}
	for k, vs := range c.Request.URL.Query() {
		for _, v := range vs {
			switch k {
			case "at":
			case "label":
				name, value, ok := strings.Cut(v, "=")
				if !ok {
					fail(c, http.StatusBadRequest, "label="+v+" must be label=name=value")
					return
				}
				labels[name] = value
			default:
				labels[k] = v
			}
		}
	}
	if len(labels) == 0 {
		fail(c, http.StatusBadRequest, "give the alert's labels as query parameters, e.g. ?alertname=HighErrorRate&severity=critical")
		return
	}
	at := r.o.Now()
	if s := c.Query("at"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			fail(c, http.StatusBadRequest, "at="+s+" is not an RFC 3339 time (like 2026-11-26T23:30:00Z)")
			return
		}
		at = t
	}
	ans, err := r.o.RouteTest(labels, at)
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	c.JSON(http.StatusOK, ans)
}

// failedDeliveries lists the dead letters, notifications that failed for
// good, a page at a time: ?limit= (20 by default, at most 100; 10 with
// full=true, which adds the notifications themselves) and ?cursor=, the
// next_cursor of the page before. Their errors carry no secret
// (integrations redact URLs and keys).
func (r *Receiver) failedDeliveries(c *gin.Context) {
	if r.o.FailedDeliveries == nil {
		c.JSON(http.StatusOK, api.DeadLetters{Deliveries: []api.DeadLetter{}})
		return
	}
	full := false
	switch c.Query("full") {
	case "", "false", "0":
	case "true", "1":
		full = true
	default:
		fail(c, http.StatusBadRequest, "full must be true or false")
		return
	}
	maxLimit := 100
	if full {
		maxLimit = 10
	}
	limit := min(20, maxLimit)
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			fail(c, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxLimit))
			return
		}
		limit = n
	}
	v, err := r.o.FailedDeliveries(c.Request.Context(), c.Query("cursor"), limit, full)
	if errors.Is(err, alert.ErrBadCursor) {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	}
	c.JSON(http.StatusOK, v)
}
