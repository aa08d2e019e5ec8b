package receiver

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
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

// failedDeliveries lists the dead letters: notifications that failed for
// good. Their errors carry no secret (integrations redact URLs and keys).
func (r *Receiver) failedDeliveries(c *gin.Context) {
	if r.o.FailedDeliveries == nil {
		c.JSON(http.StatusOK, gin.H{"deliveries": []any{}})
		return
	}
	v, err := r.o.FailedDeliveries(c.Request.Context())
	if err != nil {
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	}
	c.JSON(http.StatusOK, gin.H{"deliveries": v})
}
