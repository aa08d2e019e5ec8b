// Package app wires alertmedic together from its configuration and runs it:
// it builds the store, the pipeline and the HTTP receiver, starts them,
// reloads the configuration on request, and shuts everything down in the
// reverse order of start, within a bound.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/oncall"
	"github.com/alertmedic/alertmedic/pipeline"
	"github.com/alertmedic/alertmedic/receiver"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store/memory"
	"github.com/alertmedic/alertmedic/store/redis"
)

// Build information, set by the linker (see the Makefile).
var (
	Version  = "dev"
	Revision = "unknown"
)

// Options come from the command line.
type Options struct {
	// ConfigFile is the YAML file; empty runs on the embedded example.
	ConfigFile    string
	ListenAddress string
	Logger        zerolog.Logger
	// Reload receives a value for each SIGHUP.
	Reload <-chan struct{}
	// Ready, when set, is called with the address the server listens on.
	Ready func(addr net.Addr)
}

// store is every part of a backend the app wires.
type store interface {
	receiver.Store
	pipeline.Store
	remediation.Store
	Close() error
}

// App is a running alertmedic.
type App struct {
	o   Options
	log zerolog.Logger

	mu sync.Mutex // guards cfg and rawCfg, and the swap a reload makes
	// reloading holds a token while a reload reads and checks a file, so
	// that one runs at a time; it is given back when the read finishes,
	// even after its caller stopped waiting.
	reloading chan struct{}
	// load reads the configuration (loadConfig; tests replace it).
	load       func(file string) (*config.Config, []byte, error)
	cfg        *config.Config
	rules      *pipeline.Rules
	rawCfg     []byte
	st         store
	rcv        *receiver.Receiver
	pl         *pipeline.Pipeline
	notifier   *swappable
	eng        *remediation.Engine
	oncall     *oncall.Actions
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

// loadConfig reads the file (config.LoadFile: a regular file only, read
// once), or the embedded example when none is given.
func loadConfig(file string) (*config.Config, []byte, error) {
	if file == "" {
		c, err := config.Parse(config.Example, "")
		if err != nil {
			return nil, nil, fmt.Errorf("embedded example configuration: %w", err)
		}
		return c, config.Example, nil
	}
	return config.LoadFile(file)
}

// ReloadTimeout bounds a reload: reading and checking the new
// configuration. Past it the reload fails and the running configuration
// stays; shutdown never waits for one.
const ReloadTimeout = 30 * time.Second

// Run starts alertmedic and blocks until ctx is cancelled and shutdown has
// finished. It builds every part from the configuration (build), serves
// until ctx ends or the HTTP server fails (serve), then stops the parts in
// reverse order (shutdown).
func Run(ctx context.Context, o Options) error {
	a, err := build(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.st.Close(); err != nil {
			a.log.Warn().Err(err).Msg("close store")
		}
	}()
	return a.serve(ctx)
}

// build reads the configuration and wires the parts: the metrics registry,
// the store, the route tree, the integrations, the remediation engine, the
// pipeline and the HTTP receiver. It starts nothing but the store's
// connection; an error closes what it opened.
func build(ctx context.Context, o Options) (*App, error) {
	cfg, raw, err := loadConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	a := &App{o: o, log: o.Logger, cfg: cfg, rawCfg: raw, reloading: make(chan struct{}, 1), load: loadConfig}
	if o.ConfigFile == "" {
		a.log.Info().Msg("no --config.file given: running on the embedded example configuration (memory store, no outbound calls)")
	}
	reg := a.registry()

	st, capacity, stats, err := openStore(ctx, cfg, a.log.With().Str("component", "store").Logger(), reg)
	if err != nil {
		return nil, err
	}
	a.st = st
	a.log.Info().Str("store", cfg.Store.Type).Str("replica", cfg.Global.ReplicaID).Msg("store opened")
	if err := a.wire(cfg, reg, capacity, stats); err != nil {
		if cerr := st.Close(); cerr != nil {
			a.log.Warn().Err(cerr).Msg("close store")
		}
		return nil, err
	}
	return a, nil
}

// registry makes the metrics registry with the process's own metrics and
// the app's: build info and the reload gauges.
func (a *App) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "alertmedic_build_info",
		Help: "A metric with a constant '1' value labeled by version, revision and goversion.",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(Version, Revision, runtime.Version()).Set(1)
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "alertmedic_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	a.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "alertmedic_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	reg.MustRegister(buildInfo, a.reloadOK, a.reloadTime)
	a.reloadOK.Set(1)
	a.reloadTime.SetToCurrentTime()
	return reg
}

// wire builds the parts that sit on the store, each from cfg.
func (a *App) wire(cfg *config.Config, reg *prometheus.Registry, capacity int, stats func() map[string]int) error {
	rules, err := buildRules(cfg)
	if err != nil {
		return err
	}
	a.rules = rules
	a.oncall = a.newOncall(reg)
	ints, live := newIntegrations(cfg, a.log.With().Str("component", "notify").Logger(), notifiers.StoreRefs(a.st), a.oncall)
	a.notifier = &swappable{}
	a.notifier.set(ints)
	if len(live) == 0 {
		a.log.Info().Msg("no integration has credentials: every notification is rendered into the log")
	} else {
		a.log.Info().Strs("integrations", live).Msg("integrations with credentials deliver; the others render into the log")
	}
	eng, err := remediation.New(remediation.Options{
		Config:     cfg.Remediation,
		Store:      a.st,
		Client:     &http.Client{},
		Logger:     a.log.With().Str("component", "remediation").Logger(),
		Registerer: reg,
		ReplicaID:  cfg.Global.ReplicaID,
	})
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	a.eng = eng
	a.pl = pipeline.New(pipeline.Options{
		Remediator: eng,
		Store:      a.st,
		Logger:     a.log.With().Str("component", "pipeline").Logger(),
		Registerer: reg,
		Workers:    cfg.Pipeline.Workers,
		Consumer:   cfg.Global.ReplicaID,
		Notifier:   a.notifier,
		Retrier: pipeline.Retrier{
			MinBackoff:     time.Duration(cfg.Delivery.MinBackoff),
			MaxBackoff:     time.Duration(cfg.Delivery.MaxBackoff),
			AttemptTimeout: time.Duration(cfg.Delivery.AttemptTimeout),
			Deadline:       time.Duration(cfg.Delivery.Deadline),
		},
		RateLimits:    cfg.Delivery.RateLimits,
		Rules:         rules,
		RecordTTL:     time.Duration(cfg.Pipeline.HistoryRetention),
		CheckInterval: time.Duration(cfg.Pipeline.CheckInterval),
	})
	a.rcv = receiver.New(receiver.Options{
		Logger:           a.log.With().Str("component", "receiver").Logger(),
		Registerer:       reg,
		Gatherer:         reg,
		Store:            a.st,
		StoreType:        cfg.Store.Type,
		StoreStats:       stats,
		Capacity:         capacity,
		Version:          Version,
		Settings:         settings(cfg),
		Reload:           a.reload,
		FailedDeliveries: a.pl.FailedDeliveries,
		SendAgain:        a.pl.SendAgain,
		Remediation:      remediationAPI{eng, a.pl},
		Alerts: alertsAPI{pl: a.pl, eng: eng, refs: notifiers.StoreRefs(a.st), tree: func() *routing.Tree {
			_, rules := a.current()
			if rules == nil {
				return nil
			}
			return rules.Tree
		}, emailFrom: func() string {
			if c := a.currentConfig(); c != nil && c.Integrations.Email.Configured() {
				return c.Integrations.Email.From
			}
			return ""
		}},
		Integrations: func() [][2]string {
			ints := a.notifier.p.Load()
			var out [][2]string
			for _, typ := range routing.IntegrationTypes {
				state := "no credentials: renders what it would send into the log"
				if _, ok := ints.by[typ]; ok {
					state = "delivers"
				}
				if typ == routing.Log {
					state = "writes into the log"
				}
				out = append(out, [2]string{typ, state})
			}
			return out
		},
		SlackInteractions: a.notifier,
		RouteTest: func(labels map[string]string, at time.Time) (*api.RouteAnswer, error) {
			kv, err := checkLabels(labels)
			if err != nil {
				return nil, err
			}
			cfg, rules := a.current()
			return RouteTest(cfg, rules.Tree, kv, at)
		},
	})
	return nil
}

// serve listens, starts the workers and answers HTTP until ctx ends or the
// server fails, taking a reload for each value of Options.Reload; then it
// shuts down.
func (a *App) serve(ctx context.Context) error {
	cfg := a.currentConfig()
	ln, err := net.Listen("tcp", a.o.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.o.ListenAddress, err)
	}
	srv := &http.Server{
		Handler:           a.rcv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Duration(cfg.Web.RequestTimeout) + 20*time.Second,
		WriteTimeout:      time.Duration(cfg.Web.RequestTimeout) + 20*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	a.pl.Start(workCtx)

	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	a.log.Info().Str("address", ln.Addr().String()).Str("version", Version).Msg("listening")
	if open := unauthenticated(cfg.Web, ln.Addr()); len(open) > 0 {
		a.log.Warn().Str("address", ln.Addr().String()).Strs("unauthenticated", open).
			Msg("web.auth is not set and the listen address is not loopback: anyone who can reach it can use these endpoints")
	}
	if a.o.Ready != nil {
		a.o.Ready(ln.Addr())
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-a.o.Reload:
			_ = a.reload(ctx) // logged by reload
		case err := <-srvErr:
			runErr = fmt.Errorf("serve http: %w", err)
			break loop
		}
	}
	a.shutdown(srv, stopWork)
	return runErr
}

// shutdown stops, in reverse order of start and within one bound
// (pipeline.shutdown_timeout): the HTTP server stops taking webhooks
// (requests in flight finish), the workers finish what they hold, and, for
// the memory store whose queue and outbox die with the process, what is
// left is processed and delivered.
func (a *App) shutdown(srv *http.Server, stopWork context.CancelFunc) {
	cfg := a.currentConfig()
	bound := time.Duration(cfg.Pipeline.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	a.log.Info().Str("bound", bound.String()).Msg("shutting down")
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn().Err(err).Msg("http shutdown did not finish in time")
	}
	stopWork()
	if err := a.pl.Wait(sctx); err != nil {
		a.log.Warn().Err(err).Msg("workers did not finish in time")
	}
	if err := a.notifier.drain(sctx); err != nil {
		a.log.Warn().Err(err).Msg("Slack clicks still being carried out at shutdown")
	}
	if cfg.Store.Type == config.StoreMemory && sctx.Err() == nil {
		n, err := a.pl.Drain(sctx)
		left, _ := a.st.Depth(context.Background())
		ev := a.log.Info()
		if err != nil || left > 0 {
			ev = a.log.Error().AnErr("error", err)
		}
		ev.Int("drained", n).Int64("left", left).Msg("memory queue drained")
		if err := a.pl.Flush(sctx); err != nil {
			a.log.Error().Err(err).Msg("final delivery flush failed")
		}
	}
	a.log.Info().Msg("stopped")
}

// openStore opens the configured backend and registers its metrics; it
// returns the store, its queue capacity and its figures for the health page.
func openStore(ctx context.Context, cfg *config.Config, log zerolog.Logger, reg prometheus.Registerer) (store, int, func() map[string]int, error) {
	switch cfg.Store.Type {
	case config.StoreRedis:
		r := cfg.Store.Redis
		redis.SetLogger(log)
		client, err := redis.NewClient(redis.ClientOptions{
			URL:          string(r.URL),
			Addrs:        r.Addrs,
			MasterName:   r.MasterName,
			Username:     r.Username,
			Password:     string(r.Password),
			DB:           r.DB,
			DialTimeout:  time.Duration(r.DialTimeout),
			ReadTimeout:  time.Duration(r.Timeout),
			WriteTimeout: time.Duration(r.Timeout),
		})
		if err != nil {
			return nil, 0, nil, fmt.Errorf("redis store: %w", err)
		}
		s, err := redis.New(ctx, redis.Options{
			Client:         client,
			Prefix:         r.KeyPrefix,
			Capacity:       r.QueueCapacity,
			ClaimIdle:      time.Duration(r.ClaimIdle),
			KeyTTL:         time.Duration(r.KeyTTL),
			MaxDeadLetters: r.MaxDeadLetters,
			WaitReplicas:   r.WaitReplicas,
			WaitTimeout:    time.Duration(r.Timeout),
			Shards:         r.ShardCount(),
			ShardKey:       shardKey(cfg.Flapping),
			Logger:         log,
		})
		if err != nil {
			_ = client.Close()
			return nil, 0, nil, fmt.Errorf("redis store: %w", err)
		}
		return s, r.QueueCapacity, nil, nil
	default:
		m := cfg.Store.Memory
		s := memory.New(memory.Options{
			Capacity:       m.QueueCapacity,
			MaxDedupKeys:   m.MaxDedupKeys,
			MaxValues:      m.MaxValues,
			MaxItems:       m.MaxItems,
			MaxDeadLetters: m.MaxDeadLetters,
		})
		if reg != nil {
			reg.MustRegister(memoryCollector{s})
		}
		return s, m.QueueCapacity, func() map[string]int { return s.Stats().Sizes }, nil
	}
}

// buildRules compiles the route tree; config.Load has checked it already,
// so an error here is a bug rather than bad input.
func buildRules(c *config.Config) (*pipeline.Rules, error) {
	r := &pipeline.Rules{Flapping: c.Flapping, FlappingReceiver: c.Notices.FlappingReceiver, RemediationReceiver: c.Remediation.NotifyReceiver, DigestMax: c.Delivery.DigestMaxAlerts}
	if c.Route == nil {
		return r, nil
	}
	tree, errs := routing.Compile(c.Routing())
	if len(errs) > 0 {
		return nil, fmt.Errorf("compile routes: %w", errors.Join(errs...))
	}
	r.Tree = tree
	return r, nil
}

func creds(a config.HTTPAuth) receiver.Credentials {
	c := receiver.Credentials{BearerToken: string(a.BearerToken)}
	if a.BasicAuth != nil {
		c.Username, c.Password = a.BasicAuth.Username, string(a.BasicAuth.Password)
	}
	return c
}

func settings(c *config.Config) receiver.Settings {
	return receiver.Settings{
		MaxRequestBytes:  c.Web.MaxRequestBytes,
		MaxAlerts:        c.Web.MaxAlerts,
		RequestTimeout:   time.Duration(c.Web.RequestTimeout),
		DedupWindow:      time.Duration(c.Webhook.DedupWindow),
		Auth:             creds(c.Web.Auth),
		AdminAuth:        creds(c.Web.AdminAuth),
		ReadAuth:         creds(c.Web.ReadAuth),
		MaxInflightBytes: c.Web.MaxInflightBytes,
		TrustedProxies:   c.Web.TrustedPrefixes,
	}
}

// unauthenticated lists what anyone who reaches addr can do, when web.auth
// is empty and addr is not a loopback address; nil otherwise. Credentials
// are off by default, as in Alertmanager, so that a first run works.
func unauthenticated(w config.WebConfig, addr net.Addr) []string {
	if w.Auth.Enabled() {
		return nil
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return nil
	}
	open := []string{"POST /webhook (post alerts)"}
	if !w.AdminAuth.Enabled() {
		open = append(open, "POST /-/reload", "POST /api/v1/remediation/pause and /resume")
	}
	if !w.ReadAuth.Enabled() {
		open = append(open, "GET /metrics, /api/v1/* and /debug/pprof (read)")
	}
	return open
}

// shardKey places an alert in a store shard: by its flap key when the
// global flapping.by groups alerts (a group's alerts then share a shard,
// and so its flap state), else by its fingerprint.
func shardKey(f flapping.Config) func(template.Alert) string {
	if len(f.By) == 0 {
		return nil
	}
	return func(a template.Alert) string { return flapping.Key(f, a.Fingerprint, a.Labels) }
}

func (a *App) currentConfig() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// current is the configuration in force and its compiled rules, the ones
// the pipeline uses: the routes test answers from them, not from a
// compilation of its own.
func (a *App) current() (*config.Config, *pipeline.Rules) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg, a.rules
}

// reload re-reads the configuration file and applies it atomically; a file
// that does not load changes nothing. It gives up when ctx ends or after
// ReloadTimeout, whichever is first, and the file is read without holding
// the lock every request takes (currentConfig), so a slow read delays no
// request and no shutdown.
func (a *App) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReloadTimeout)
	defer cancel()
	refuse := func(err error) error {
		// Logged before the gauge says so: whoever watches the gauge finds
		// the reason in the log.
		a.log.Error().Err(err).Msg("configuration reload refused; the previous configuration stays in force")
		a.reloadOK.Set(0)
		return err
	}
	select {
	case a.reloading <- struct{}{}:
	case <-ctx.Done():
		return refuse(errors.New("another reload is still reading the configuration"))
	}
	type loaded struct {
		cfg *config.Config
		raw []byte
		err error
	}
	got := make(chan loaded, 1)
	go func() {
		defer func() { <-a.reloading }()
		c, r, err := a.load(a.o.ConfigFile)
		got <- loaded{c, r, err}
	}()
	var l loaded
	select {
	case l = <-got:
	case <-ctx.Done():
		return refuse(errors.New("reading the configuration did not finish in time"))
	}
	if l.err != nil {
		return refuse(l.err)
	}
	cfg, raw := l.cfg, l.raw
	a.mu.Lock()
	defer a.mu.Unlock()
	if restartOnly := restartNeeded(a.cfg, cfg); restartOnly != "" {
		// Applying half a configuration would be worse than none: refuse it.
		return refuse(fmt.Errorf("%s cannot change on reload; restart alertmedic to apply it", restartOnly))
	}
	rules, err := buildRules(cfg)
	if err != nil {
		return refuse(err)
	}
	ints, _ := newIntegrations(cfg, a.log.With().Str("component", "notify").Logger(), notifiers.StoreRefs(a.st), a.oncall)
	a.rcv.Apply(settings(cfg))
	a.pl.Apply(rules)
	a.rules = rules
	a.notifier.set(ints)
	if err := a.eng.Apply(cfg.Remediation); err != nil {
		// Load checked it; a refusal here is logged, the rest applies.
		a.log.Error().Err(err).Msg("remediation kept its previous configuration")
	}
	changed := !bytes.Equal(raw, a.rawCfg)
	a.cfg, a.rawCfg = cfg, raw
	a.reloadOK.Set(1)
	a.reloadTime.SetToCurrentTime()
	a.log.Info().Bool("changed", changed).Msg("configuration reloaded")
	return nil
}

// restartNeeded names the first section that differs in a way a running
// process cannot apply, or "".
func restartNeeded(old, cur *config.Config) string {
	switch {
	case fmt.Sprintf("%#v", old.Store) != fmt.Sprintf("%#v", cur.Store):
		return "store"
	case old.Global.ReplicaID != cur.Global.ReplicaID:
		return "global.replica_id"
	case fmt.Sprintf("%#v", old.Pipeline) != fmt.Sprintf("%#v", cur.Pipeline):
		return "pipeline"
	case fmt.Sprintf("%v", old.Delivery) != fmt.Sprintf("%v", cur.Delivery):
		return "delivery"
	}
	return ""
}

// remediationAPI adapts the engine to the HTTP API's interface.
type remediationAPI struct {
	e  *remediation.Engine
	pl *pipeline.Pipeline
}

func (r remediationAPI) Audit(ctx context.Context, limit int) ([]api.RemediationRecord, error) {
	return r.e.Audit(ctx, limit)
}
func (r remediationAPI) Pause(ctx context.Context, by string) error {
	return r.announce(ctx)(r.e.Pause(ctx, by))
}

func (r remediationAPI) Resume(ctx context.Context, by string) error {
	return r.announce(ctx)(r.e.Resume(ctx, by))
}

// announce sends a pause's or resume's notice through the pipeline.
func (r remediationAPI) announce(ctx context.Context) func(*remediation.Notice, error) error {
	return func(n *remediation.Notice, err error) error {
		if n != nil {
			r.pl.RemediationNotice(context.WithoutCancel(ctx), n)
		}
		return err
	}
}
func (r remediationAPI) Paused(ctx context.Context) (bool, error) { return r.e.Paused(ctx) }

// Answer approves or denies a proposal for the API (admin credentials: any
// rule's).
func (r remediationAPI) Answer(ctx context.Context, id string, approve bool, by string) (api.RemediationRecord, error) {
	rec, err := r.answer(ctx, id, approve, remediation.Approver{By: by})
	switch {
	case errors.Is(err, remediation.ErrNoProposal):
		return api.RemediationRecord{}, receiver.ErrNoProposal
	case errors.Is(err, remediation.ErrDecided):
		return api.RemediationRecord{}, fmt.Errorf("%w: %v", receiver.ErrAnswered, err)
	}
	return rec.RemediationRecord, err
}

// answer records an answer, announces it, and has the pipeline carry the
// proposal at once.
func (r remediationAPI) answer(ctx context.Context, id string, approve bool, who remediation.Approver) (remediation.Record, error) {
	rec, err := r.e.Decide(ctx, id, approve, who)
	if err != nil {
		return rec, err
	}
	r.pl.Answered(context.WithoutCancel(ctx), id, rec.Notice)
	return rec, nil
}

// memoryCollector exports what the memory store's caps did: the sizes of
// each kind of state, the finished state evicted at a cap, and the work
// refused because still-needed state was at its cap.
type memoryCollector struct{ s *memory.Store }

var (
	memSizeDesc    = prometheus.NewDesc("alertmedic_store_size", "Entries, keys and items the memory store holds, by kind.", []string{"kind"}, nil)
	memEvictDesc   = prometheus.NewDesc("alertmedic_store_evictions_total", "Finished state the memory store dropped at its cap, oldest first, by kind.", []string{"kind"}, nil)
	memRefusalDesc = prometheus.NewDesc("alertmedic_store_refusals_total", "Work the memory store refused (the webhook answered 503) because still-needed state was at its cap, by kind.", []string{"kind"}, nil)
)

func (c memoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- memSizeDesc
	ch <- memEvictDesc
	ch <- memRefusalDesc
}

func (c memoryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for k, v := range st.Sizes {
		ch <- prometheus.MustNewConstMetric(memSizeDesc, prometheus.GaugeValue, float64(v), k)
	}
	// Zeros, not gaps, for the kinds a cap can hit.
	for _, k := range []string{"dedup_keys", "values", "outbox_dead", "remedy_dead"} {
		ch <- prometheus.MustNewConstMetric(memEvictDesc, prometheus.CounterValue, float64(st.Evictions[k]), k)
	}
	for k, v := range st.Evictions {
		if k != "dedup_keys" && k != "values" && k != "outbox_dead" && k != "remedy_dead" {
			ch <- prometheus.MustNewConstMetric(memEvictDesc, prometheus.CounterValue, float64(v), k)
		}
	}
	for _, k := range []string{"queue", "values", "outbox", "remedy"} {
		ch <- prometheus.MustNewConstMetric(memRefusalDesc, prometheus.CounterValue, float64(st.Refusals[k]), k)
	}
}
