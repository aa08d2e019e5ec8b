package receiver

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
)

// webhookAnswer is the body of a 200: what happened to the alerts.
type webhookAnswer struct {
	Status     string `json:"status"`
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
}

func (r *Receiver) webhook(c *gin.Context) {
	s := r.settings.Load()
	log := zerolog.Ctx(c.Request.Context())

	ct := c.GetHeader("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		if ct == "" {
			ct = "none"
		}
		fail(c, http.StatusUnsupportedMediaType, "content type must be application/json, got "+ct)
		return
	}
	// The body, and what decoding it makes, count against the bytes in
	// flight across requests until this one is answered: many large bodies
	// at once wait (503, which Alertmanager retries) instead of growing the
	// heap without bound. A body of unknown length counts as the largest.
	if limit := s.MaxInflightBytes; limit > 0 {
		n := c.Request.ContentLength
		if n <= 0 || n > s.MaxRequestBytes {
			n = s.MaxRequestBytes
		}
		if r.inflight.Add(n) > limit {
			r.inflight.Add(-n)
			r.m.busy.Inc()
			c.Header("Retry-After", "1")
			fail(c, http.StatusServiceUnavailable, "too many webhook bytes in flight (web.max_inflight_bytes); retry later")
			return
		}
		defer r.inflight.Add(-n)
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	if n := c.Request.ContentLength; n > 0 && n <= s.MaxRequestBytes {
		buf.Grow(int(n) + bytes.MinRead) // one read to EOF, no regrowth
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, s.MaxRequestBytes))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(c, http.StatusRequestEntityTooLarge, "body is larger than the limit of "+formatBytes(mbe.Limit)+" (web.max_request_bytes)")
			return
		}
		// The sender went away or the connection broke mid-body: nothing was
		// accepted, and a 400 tells the truth about this request.
		fail(c, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	msg, err := alert.Decode(body, alert.Limits{MaxAlerts: s.MaxAlerts})
	if err != nil {
		code := http.StatusBadRequest
		var ie *alert.InvalidError
		if errors.As(err, &ie) && ie.TooLarge {
			code = http.StatusRequestEntityTooLarge
		}
		fail(c, code, err.Error())
		return
	}

	rid := c.GetString("request_id")
	e := &alert.Entry{ID: newID(), ReceivedAt: r.o.Now().UTC(), RequestID: rid, Message: msg}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.RequestTimeout)
	defer cancel()
	res, err := r.o.Store.Enqueue(ctx, e, s.DedupWindow)
	if err != nil {
		// Anything that kept the entry out of the queue is temporary from
		// Alertmanager's point of view: 503 makes it retry, so nothing is lost.
		c.Header("Retry-After", "5")
		if errors.Is(err, alert.ErrQueueFull) {
			fail(c, http.StatusServiceUnavailable, "queue is full; retry later")
		} else {
			log.Error().Err(err).Str("group_key", alert.LogValue(msg.GroupKey)).Int("alerts", len(msg.Alerts)).Msg("enqueue failed")
			fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		}
		return
	}
	firing := 0
	for _, a := range msg.Alerts {
		if a.Status == alert.StatusFiring {
			firing++
		}
	}
	r.m.alerts.WithLabelValues(alert.StatusFiring).Add(float64(firing))
	r.m.alerts.WithLabelValues(alert.StatusResolved).Add(float64(len(msg.Alerts) - firing))
	r.m.duplicates.Add(float64(res.Duplicates))
	log.Debug().Str("entry_id", e.ID).Str("group_key", alert.LogValue(msg.GroupKey)).
		Int("accepted", res.Accepted).Int("duplicates", res.Duplicates).Msg("webhook accepted")
	c.JSON(http.StatusOK, webhookAnswer{Status: "success", Accepted: res.Accepted, Duplicates: res.Duplicates})
}

// bodyBuffers holds the buffers webhook bodies are read into: a 50-alert
// body is about 23 KiB, and reading each into a fresh, repeatedly grown
// slice was a tenth of the webhook's CPU under load. Nothing keeps the body
// after Decode (encoding/json copies every string it stores).
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBodyBuffer returns buf to the pool unless it grew past 1 MiB: one
// large body must not pin that much for good.
func putBodyBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return
	}
	buf.Reset()
	bodyBuffers.Put(buf)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}
