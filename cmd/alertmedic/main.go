// Command alertmedic is a webhook receiver for Prometheus Alertmanager: it
// queues every alert durably, then routes, notifies and remediates.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/app"
	"github.com/alertmedic/alertmedic/config"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// exit carries kingpin's exit code (after --help or --version) out of Parse,
// so that run returns it instead of the process exiting inside a library.
type exit int

func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if v := recover(); v != nil {
			c, ok := v.(exit)
			if !ok {
				panic(v)
			}
			code = int(c)
		}
	}()
	a := kingpin.New("alertmedic", "A webhook receiver for Prometheus Alertmanager: flap detection, quiet-hours routing, notifications and guarded remediation.")
	a.Version(fmt.Sprintf("alertmedic, version %s (revision %s)", app.Version, app.Revision))
	a.HelpFlag.Short('h')
	a.UsageWriter(stdout)
	a.ErrorWriter(stderr)
	a.Terminate(func(c int) { panic(exit(c)) })

	serve := a.Command("serve", "Run the daemon (the default).").Default()
	configFile := serve.Flag("config.file", "alertmedic configuration file; without it the embedded example configuration is used.").String()
	listen := serve.Flag("web.listen-address", "Address to listen on for the webhook, API and metrics.").Default(":9095").String()
	logLevel := a.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").Default("info").Enum("debug", "info", "warn", "error")
	logFormat := a.Flag("log.format", "Output format of log messages. One of: [json, console]").Default("json").Enum("json", "console")

	check := a.Command("check-config", "Check configuration files and print every error found.")
	checkFiles := check.Arg("file", "Configuration files to check.").Required().ExistingFiles()

	routes := a.Command("routes", "Inspect the route tree.")
	routesTest := routes.Command("test", "Show where an alert with the given labels goes, and what quiet hours do to it.")
	rtConfig := routesTest.Flag("config.file", "alertmedic configuration file; without it the embedded example is used.").String()
	rtAt := routesTest.Flag("at", "The instant to route at (RFC 3339); default now.").String()
	rtVerify := routesTest.Flag("verify.receivers", "Exit 1 unless the receivers notified (not muted) are exactly these, comma-separated.").String()
	rtJSON := routesTest.Flag("json", "Print the answer as JSON, as GET /api/v1/routes/test does.").Bool()
	rtLabels := routesTest.Arg("labels", "Labels of the alert, as name=value.").Required().Strings()

	alertCmd := a.Command("alert", "Ask a running alertmedic about its alerts.")
	why := alertCmd.Command("why", "Tell an alert's story, oldest first: received, routed, muted or held, delivered or retried, remediated, clicked. Why was I (not) paged?")
	whyConfig := why.Flag("config.file", "alertmedic configuration file: the daemon's web.read_auth credentials are sent.").String()
	whyURL := why.Flag("url", "The daemon's address.").Default("http://127.0.0.1:9095").String()
	whyArgs := why.Arg("alert", "The alert's fingerprint, or labels as name=value that select it.").Required().Strings()

	tmpl := a.Command("template", "Render what the integrations would send.")
	tmplRender := tmpl.Command("render", "Print the message each integration of a receiver would send for an Alertmanager webhook payload, as amtool template render does. Nothing is sent; routes, mutes and flapping do not apply.")
	trConfig := tmplRender.Flag("config.file", "alertmedic configuration file; without it the embedded example is used.").String()
	trReceiver := tmplRender.Flag("receiver", "The receiver whose integrations render.").Required().String()
	trFile := tmplRender.Arg("file", "An Alertmanager webhook payload (JSON), as Alertmanager posts it.").Required().ExistingFile()

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	switch cmd {
	case check.FullCommand():
		return checkConfig(*checkFiles, stdout, stderr)
	case routesTest.FullCommand():
		return routeTest(*rtConfig, *rtAt, *rtVerify, *rtJSON, *rtLabels, stdout, stderr)
	case tmplRender.FullCommand():
		return templateRender(*trConfig, *trReceiver, *trFile, stdout, stderr)
	case why.FullCommand():
		var auth config.HTTPAuth
		if *whyConfig != "" {
			cfg, err := loadConfig(*whyConfig)
			if err != nil {
				fmt.Fprintf(stderr, "alertmedic: %s\n", err)
				return 2
			}
			auth = cfg.Web.ReadAuth
		}
		return app.Why(context.Background(), *whyURL, auth, *whyArgs, stdout, stderr)
	}

	logger := newLogger(stderr, *logLevel, *logFormat)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()

	if err := app.Run(ctx, app.Options{
		ConfigFile:    *configFile,
		ListenAddress: *listen,
		Logger:        logger,
		Reload:        reload,
	}); err != nil {
		logger.Error().Err(err).Msg("alertmedic failed")
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if format == "console" {
		w = consoleWriter(w)
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// checkConfig prints every problem of every file and fails if any has one,
// as promtool check config does.
func checkConfig(files []string, stdout, stderr io.Writer) int {
	failed := false
	for _, f := range files {
		fmt.Fprintf(stdout, "Checking %s\n", f)
		if _, err := config.Load(f); err != nil {
			failed = true
			fmt.Fprintf(stderr, "  FAILED: %s\n\n", indent(err.Error()))
			continue
		}
		fmt.Fprintf(stdout, "  SUCCESS\n\n")
	}
	if failed {
		return 1
	}
	return 0
}

func indent(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, "    "...)
		}
	}
	return string(out)
}

// routeTest answers "where does this alert go?", as amtool config routes
// test does for Alertmanager, with alertmedic's quiet hours on top.
func routeTest(file, at, verify string, asJSON bool, labelArgs []string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	when := time.Now()
	if at != "" {
		if when, err = time.Parse(time.RFC3339, at); err != nil {
			fmt.Fprintf(stderr, "alertmedic: --at %q is not an RFC 3339 time (like 2026-11-26T23:30:00Z)\n", at)
			return 2
		}
	}
	labels, err := app.ParseLabels(labelArgs)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	tree, err := app.CompileRoutes(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	res, err := app.RouteTest(cfg, tree, labels, when)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	if asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprint(stdout, res.Explanation)
	}
	if verify != "" {
		want := strings.Split(verify, ",")
		got := res.Notified
		sort.Strings(want)
		if strings.Join(want, ",") != strings.Join(got, ",") {
			fmt.Fprintf(stderr, "WRONG: notified receivers %v, want %v\n", got, want)
			return 1
		}
	}
	return 0
}

// loadConfig loads file, or the embedded example when file is "".
func loadConfig(file string) (*config.Config, error) {
	if file == "" {
		return config.Parse(config.Example, "")
	}
	return config.Load(file)
}

// templateRender prints what each integration of receiver would send for
// the Alertmanager payload in file, as amtool template render does.
func templateRender(file, receiver, payload string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 2
	}
	body, err := os.ReadFile(payload)
	if err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 1
	}
	if err := app.TemplateRender(stdout, cfg, receiver, body); err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return 1
	}
	return 0
}

// consoleWriter is zerolog's human-readable writer, with every message and
// field name escaped as a Go string is when it holds a control character
// or a quote: a value that came in with an alert can never end a line or
// forge another. (zerolog quotes such field values already; messages are
// constant strings, but a console is where a forged line would fool a
// person, so it does not rely on that.)
func consoleWriter(out io.Writer) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{
		Out:        out,
		TimeFormat: time.RFC3339,
		FormatMessage: func(i any) string {
			if i == nil {
				return ""
			}
			return escapeControl(fmt.Sprint(i))
		},
		FormatFieldName: func(i any) string { return escapeControl(fmt.Sprint(i)) + "=" },
	}
}

// escapeControl quotes s (strconv.Quote) when it holds a control
// character (a newline, a carriage return, an escape sequence) and leaves
// it as it is otherwise.
func escapeControl(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) {
		return strconv.Quote(s)
	}
	return s
}
