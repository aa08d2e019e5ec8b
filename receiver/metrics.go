package receiver

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmedic/alertmedic/alert"
)

type metrics struct {
	requests   *prometheus.CounterVec
	latency    prometheus.Histogram
	alerts     *prometheus.CounterVec
	duplicates prometheus.Counter
	// busy counts webhooks turned away (503) at web.max_inflight_bytes.
	busy prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmedic_webhook_requests_total",
			Help: "Webhook requests answered, by HTTP status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "alertmedic_webhook_request_duration_seconds",
			Help:    "Time to answer a webhook request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmedic_alerts_received_total",
			Help: "Alerts in valid webhook messages, by status, duplicates included.",
		}, []string{"status"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alertmedic_alerts_duplicate_total",
			Help: "Alerts acknowledged but not queued, as already seen within the dedup window.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alertmedic_webhook_inflight_limited_total",
			Help: "Webhook requests answered 503 because web.max_inflight_bytes of bodies were being read already.",
		}),
	}
	// Label values start at zero so dashboards and rate() see them at once.
	for _, c := range []int{200, 400, 401, 413, 415, 503} {
		m.requests.WithLabelValues(strconv.Itoa(c))
	}
	m.alerts.WithLabelValues(alert.StatusFiring)
	m.alerts.WithLabelValues(alert.StatusResolved)
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.alerts, m.duplicates, m.busy)
	}
	return m
}

func codeLabel(code int) string { return strconv.Itoa(code) }
