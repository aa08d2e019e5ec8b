package pipeline

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmedic/alertmedic/alert"
)

type metrics struct {
	processed    *prometheus.CounterVec
	redelivered  prometheus.Counter
	duration     prometheus.Histogram
	wait         prometheus.Histogram
	storeErrors  *prometheus.CounterVec
	held         prometheus.Counter
	muted        *prometheus.CounterVec
	notified     *prometheus.CounterVec
	notifyErrors prometheus.Counter
	deadLetters  *prometheus.CounterVec
	coalesced    prometheus.Counter
	alertsOut    *prometheus.CounterVec
	limited      prometheus.Counter
	deadEvicted  prometheus.Counter
	conflicts    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s Store) *metrics {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmedic_alerts_processed_total",
			Help: "Alerts processed by the pipeline, by status.",
		}, []string{"status"}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alertmedic_queue_redelivered_total",
			Help: "Queue entries another consumer finished first (it took them over after claim_idle); this copy was dropped unwritten.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "alertmedic_processing_duration_seconds",
			Help:    "Time to process one queue entry.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "alertmedic_queue_wait_seconds",
			Help:    "Time from the webhook accepting an entry to a worker starting it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmedic_pipeline_store_errors_total",
			Help: "Store operations the pipeline could not complete, by operation.",
		}, []string{"op"}),
	}
	m.held = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_flapping_held_total",
		Help: "Alert notifications held back because the alert was flapping.",
	})
	m.muted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_notifications_muted_total",
		Help: "Alerts not notified at once because the target was muted, by action (drop, defer).",
	}, []string{"action"})
	m.notified = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_notifications_total",
		Help: "Notifications handed to an integration, by kind.",
	}, []string{"kind"})
	m.notifyErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_notification_errors_total",
		Help: "Notifications an integration failed to deliver.",
	})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_notifications_dead_letters_total",
		Help: "Notifications that failed for good and were kept as dead letters, by integration.",
	}, []string{"integration"})
	for _, i := range []string{"slack", "email", "pagerduty", "webhook", "log"} {
		m.deadLetters.WithLabelValues(i)
	}
	m.coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_notifications_coalesced_total",
		Help: "Notifications merged into another for the same target while it was rate limited or busy.",
	})
	m.alertsOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_notification_alerts_total",
		Help: "Alerts carried or counted (\"and N more\") by delivered messages, and alerts in dead letters, by integration and outcome (delivered, dead_letter).",
	}, []string{"integration", "outcome"})
	m.limited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_notifications_rate_limited_total",
		Help: "Times a target's waiting notifications were held back by its rate limit (they merge into its next message).",
	})
	m.deadEvicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_notifications_dead_letters_evicted_total",
		Help: "Dead letters dropped, oldest first, because more than the cap were kept.",
	})
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_pipeline_commit_conflicts_total",
		Help: "Decisions taken again because another worker or replica changed an alert's record meanwhile.",
	})
	for _, i := range []string{"slack", "email", "pagerduty", "webhook", "log"} {
		m.alertsOut.WithLabelValues(i, "delivered")
		m.alertsOut.WithLabelValues(i, "dead_letter")
	}
	m.muted.WithLabelValues("drop")
	m.muted.WithLabelValues("defer")
	for _, k := range []string{"alerts", "digest", "flapping_started", "flapping_stopped"} {
		m.notified.WithLabelValues(k)
	}
	m.processed.WithLabelValues(alert.StatusFiring)
	m.processed.WithLabelValues(alert.StatusResolved)
	for _, op := range []string{"dequeue", "read", "commit", "check", "dispatch", "remedy", "verify", "maintain"} {
		m.storeErrors.WithLabelValues(op)
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "alertmedic_queue_depth",
		Help: "Entries queued and not yet acknowledged; -1 when the store cannot be asked.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		d, err := s.Depth(ctx)
		if err != nil {
			return -1
		}
		return float64(d)
	})
	if reg != nil {
		reg.MustRegister(m.processed, m.redelivered, m.duration, m.wait, m.storeErrors, depth, m.held, m.muted, m.notified, m.notifyErrors, m.deadLetters, m.coalesced,
			m.alertsOut, m.limited, m.deadEvicted, m.conflicts)
	}
	return m
}
