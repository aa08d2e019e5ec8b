// Package receiver is alertmedic's HTTP face: the webhook Alertmanager posts
// to, the health and readiness probes, reload, metrics and the JSON API. It
// answers fast: 2xx once a payload is durably queued, 4xx for a payload that
// will never be valid (so Alertmanager stops retrying), 5xx only for a
// temporary fault (so Alertmanager retries and nothing is lost).
package receiver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// Store is what the receiver needs of the state backend.
type Store interface {
	Enqueue(ctx context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error)
	Depth(ctx context.Context) (int64, error)
	Ping(ctx context.Context) error
}

// Credentials are what a request must present; the zero value lets every
// request through.
type Credentials struct {
	BearerToken string
	Username    string
	Password    string
}

func (c Credentials) enabled() bool { return c.BearerToken != "" || c.Username != "" }

// Settings are the parts of the configuration the receiver reads on every
// request; Apply swaps them atomically on reload.
type Settings struct {
	MaxRequestBytes int64
	MaxAlerts       int
	RequestTimeout  time.Duration
	DedupWindow     time.Duration
	Auth            Credentials
	// AdminAuth protects state-changing endpoints; when empty, Auth does.
	AdminAuth Credentials
	// ReadAuth, when set, protects the read-only APIs and /metrics; the
	// probes (/-/healthy, /-/ready, /api/v1/health) stay open.
	ReadAuth Credentials
	// MaxInflightBytes bounds the webhook bodies read and decoded at once;
	// 0 does not bound them.
	MaxInflightBytes int64
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// name the client; from any other peer those headers are ignored.
	TrustedProxies []netip.Prefix
}

// Options are what New needs.
type Options struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Store      Store
	StoreType  string
	// StoreStats, when set, adds backend figures to the detailed health.
	StoreStats func() map[string]int
	Capacity   int
	Version    string
	Settings   Settings
	// Reload re-reads the configuration; nil disables POST /-/reload.
	Reload func(ctx context.Context) error
	// RouteTest answers GET /api/v1/routes/test: where an alert with these
	// labels goes at that instant. An error means bad input (400).
	RouteTest func(labels map[string]string, at time.Time) (*api.RouteAnswer, error)
	// FailedDeliveries answers GET /api/v1/deliveries/failed: a page of
	// limit dead letters from cursor; an error wrapping alert.ErrBadCursor
	// is the caller's (400).
	FailedDeliveries func(ctx context.Context, cursor string, limit int, full bool) (api.DeadLetters, error)
	// SendAgain puts a dead letter, by its key, back in the outbox; false
	// when there is none of that key.
	SendAgain func(ctx context.Context, key string) (bool, error)
	// Remediation is the remediation engine's API; nil disables it.
	Remediation RemediationAPI
	// Alerts lists the alerts and tells their timelines; nil lists none.
	Alerts AlertsAPI
	// Integrations says, for the health page, each integration and
	// whether it delivers or renders into the log.
	Integrations func() [][2]string
	// SlackInteractions serves POST /api/v1/slack/interactions, the
	// clicks Slack posts. It is authenticated by Slack's signature, which
	// it checks itself, not by web.auth; nil answers 404.
	SlackInteractions http.Handler
	Now               func() time.Time
}

// Receiver serves HTTP.
type Receiver struct {
	o        Options
	settings atomic.Pointer[Settings]
	// inflight counts the webhook body bytes being read and decoded.
	inflight atomic.Int64
	started  time.Time
	engine   *gin.Engine
	m        *metrics
}

// New builds the handlers and registers the receiver's metrics.
func New(o Options) *Receiver {
	if o.Now == nil {
		o.Now = time.Now
	}
	gin.SetMode(gin.ReleaseMode)
	r := &Receiver{o: o, started: o.Now(), m: newMetrics(o.Registerer)}
	s := o.Settings
	r.settings.Store(&s)

	e := gin.New()
	// The client's address is worked out by clientIP from the configured
	// proxies, which a reload may change; gin believes no header.
	_ = e.SetTrustedProxies(nil)
	e.ForwardedByClientIP = false
	e.HandleMethodNotAllowed = true
	e.Use(r.recover, r.requestID, r.accessLog, r.limitBody)
	e.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "no such endpoint: "+c.Request.URL.Path) })
	e.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, "method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})

	e.POST("/webhook", r.auth(false), r.webhook)
	e.GET("/-/healthy", r.healthy)
	e.HEAD("/-/healthy", r.healthy)
	e.GET("/-/ready", r.ready)
	e.HEAD("/-/ready", r.ready)
	e.POST("/-/reload", r.auth(true), r.reload)
	e.PUT("/-/reload", r.auth(true), r.reload)
	e.GET("/api/v1/health", r.health)
	e.GET("/api/v1/health/detailed", r.readAuth, r.healthDetailed)
	e.GET("/api/v1/routes/test", r.readAuth, r.routeTest)
	e.GET("/api/v1/deliveries/failed", r.readAuth, r.failedDeliveries)
	e.POST("/api/v1/deliveries/failed/retry", r.auth(true), r.sendAgain(false))
	e.GET("/api/v1/remediations", r.readAuth, r.remediations)
	e.GET("/api/v1/alerts", r.readAuth, r.listAlerts)
	e.GET("/api/v1/alerts/:fp/timeline", r.readAuth, r.timeline)
	e.POST("/api/v1/remediation/pause", r.auth(true), r.pauseRemediation(true))
	e.POST("/api/v1/remediation/resume", r.auth(true), r.pauseRemediation(false))
	e.POST("/api/v1/remediations/:id/approve", r.auth(true), r.answerProposal(true))
	e.POST("/api/v1/remediations/:id/deny", r.auth(true), r.answerProposal(false))
	e.POST("/api/v1/slack/interactions", r.slackInteractions)
	g := o.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	e.GET("/metrics", r.readAuth, gin.WrapH(promhttp.HandlerFor(g, promhttp.HandlerOpts{})))
	r.pageRoutes(e)
	r.debugRoutes(e)
	r.engine = e
	return r
}

// slackInteractions hands a click to the handler that checks its signature
// and acts on it.
func (r *Receiver) slackInteractions(c *gin.Context) {
	if r.o.SlackInteractions == nil {
		fail(c, http.StatusNotFound, "Slack interactions are not configured (integrations.slack.token and signing_secret)")
		return
	}
	r.o.SlackInteractions.ServeHTTP(c.Writer, c.Request)
}

// Apply swaps the settings, as a reload does.
func (r *Receiver) Apply(s Settings) { r.settings.Store(&s) }

// Handler is the whole HTTP API.
func (r *Receiver) Handler() http.Handler { return r.engine }

// Engine lets later packages' routes be added by the app.
func (r *Receiver) Engine() *gin.Engine { return r.engine }

// errBody is the shape of every error answer.
type errBody struct {
	Error string `json:"error"`
}

func fail(c *gin.Context, code int, msg string) {
	c.Set("error", msg)
	c.AbortWithStatusJSON(code, errBody{Error: msg})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID takes the caller's X-Request-Id when it is sane, or makes one,
// and puts a logger carrying it on the request.
func (r *Receiver) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if len(id) == 0 || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < '!' || r > '~' }) {
		id = newID()
	}
	c.Set("request_id", id)
	c.Header("X-Request-Id", id)
	l := r.o.Logger.With().Str("request_id", id).Logger()
	c.Request = c.Request.WithContext(l.WithContext(c.Request.Context()))
	c.Next()
}

func (r *Receiver) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	code := c.Writer.Status()
	path := c.FullPath()
	if path == "" {
		path = "unmatched"
	}
	if path == "/webhook" {
		r.m.requests.WithLabelValues(codeLabel(code)).Inc()
		r.m.latency.Observe(time.Since(start).Seconds())
	}
	lvl := zerolog.DebugLevel
	switch {
	case code >= 500:
		lvl = zerolog.ErrorLevel
	case code >= 400:
		lvl = zerolog.WarnLevel
	case path == "/webhook":
		lvl = zerolog.InfoLevel
	}
	ev := zerolog.Ctx(c.Request.Context()).WithLevel(lvl).
		Str("method", c.Request.Method).
		Str("path", path).
		Int("status", code).
		Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).
		Str("remote", r.clientIP(c.Request))
	if msg, ok := c.Get("error"); ok {
		// An error can quote the request (a path, a label name).
		ev = ev.Str("error", alert.LogValue(msg.(string)))
	}
	ev.Msg("request")
}

func (r *Receiver) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			zerolog.Ctx(c.Request.Context()).Error().Interface("panic", v).Msg("handler panicked")
			fail(c, http.StatusInternalServerError, "internal error")
		}
	}()
	c.Next()
}

// auth checks what Alertmanager's http_config sends: a bearer token or basic
// auth. Both sides are hashed before the constant-time comparison so that
// neither the value nor its length leaks through timing.
func (r *Receiver) auth(admin bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := r.settings.Load()
		want := s.Auth
		if admin && s.AdminAuth.enabled() {
			want = s.AdminAuth
		}
		require(c, want)
	}
}

// readAuth protects read-only endpoints when web.read_auth is set.
func (r *Receiver) readAuth(c *gin.Context) { require(c, r.settings.Load().ReadAuth) }

// require lets the request through when want is not set or the request
// carries it; otherwise it answers 401 with the challenge for want's kind.
// A request let through with credentials carries who presented them
// (identity), for the audit.
func require(c *gin.Context, want Credentials) {
	if !want.enabled() {
		c.Next()
		return
	}
	if authorized(c.Request, want) {
		if want.BearerToken != "" {
			c.Set(identityKey, "bearer token")
		} else {
			c.Set(identityKey, want.Username)
		}
		c.Next()
		return
	}
	if want.BearerToken != "" {
		c.Header("WWW-Authenticate", `Bearer realm="alertmedic"`)
	} else {
		c.Header("WWW-Authenticate", `Basic realm="alertmedic"`)
	}
	fail(c, http.StatusUnauthorized, "missing or wrong credentials")
}

// limitBody bounds every request body, not only the webhook's: no
// endpoint reads more than web.max_request_bytes.
func (r *Receiver) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, r.settings.Load().MaxRequestBytes)
	}
	c.Next()
}

func authorized(req *http.Request, want Credentials) bool {
	if want.BearerToken != "" {
		h := req.Header.Get("Authorization")
		const p = "Bearer "
		if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
			return false
		}
		return equal(h[len(p):], want.BearerToken)
	}
	u, p, ok := req.BasicAuth()
	if !ok {
		return false
	}
	// Both comparisons run whatever the first's result, so that timing does
	// not tell a right user name from a wrong one.
	uok := equal(u, want.Username)
	pok := equal(p, want.Password)
	return uok && pok
}

func equal(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

const identityKey = "identity"

// who names the client of a state-changing request for the audit: the
// identity its credentials proved, if any, and its address, as clientIP
// works it out. Nothing the client merely claims (a basic-auth user name
// when basic auth is not what is configured, a forwarding header from a
// peer that is not a trusted proxy) gets into it.
func (r *Receiver) who(c *gin.Context) string {
	ip := r.clientIP(c.Request)
	if id := c.GetString(identityKey); id != "" {
		return id + "@" + ip
	}
	return ip
}

// clientIP is the request's peer, unless the peer is a trusted proxy: then
// the last address in X-Forwarded-For that is not itself a trusted proxy
// (the one the nearest untrusted hop connected from), or X-Real-IP, as gin
// and most proxies work it out.
func (r *Receiver) clientIP(req *http.Request) string {
	peer, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	trusted := r.settings.Load().TrustedProxies
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	addr := peer.Addr().Unmap()
	if len(trusted) == 0 || !isTrusted(addr) {
		return addr.String()
	}
	if xff := req.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: believe nothing before it
			}
			if !isTrusted(a) {
				return a.Unmap().String()
			}
			addr = a.Unmap()
		}
		return addr.String()
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(req.Header.Get("X-Real-IP"))); err == nil {
		return a.Unmap().String()
	}
	return addr.String()
}
