package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/outbound"
)

// call is one action made concrete for one alert: everything rendered,
// nothing sent yet.
type call struct {
	method, url string
	body        []byte
	auth        bool // send the bearer token: only to the orchestrator and the API
	headers     [][2]string
	summary     Request
	// subject names the action in a failure ("scale of X failed ..."),
	// would says what a dry run would have done, did what a run did.
	subject, would, did string
	// step, when set, makes the scale relative: read the current count
	// first, then ask for current+step within [min, max].
	step *stepScale
	// read, when set, makes a fixed scale read the current count first, to
	// keep it (verify.go): required when the rule rolls back.
	read *readScale
}

type readScale struct {
	service        string
	target         int
	required       bool
	getURL, getSum string
}

type stepScale struct {
	service       string
	step, lo, hi  int
	getURL        string
	getSummaryURL string
}

func (cl *call) requests() int {
	if cl.step != nil || cl.read != nil {
		return 2
	}
	return 1
}

// prepare renders an action's params over the alert and builds its call.
// It sends nothing, so a guard that stops the action later has cost
// nothing. reason is ReasonMissingLabel, ReasonInvalid or ReasonRefused
// when err is set.
func (e *Engine) prepare(c *compiled, r *compiledRule, act *compiledAction, a template.Alert) (*call, string, error) {
	render := func(k string) (string, error) { return act.render(k, a) }
	has := func(k string) bool { _, ok := act.params[k]; return ok }
	fail := func(err error) (*call, string, error) {
		var r refusal
		if errors.As(err, &r) {
			return nil, ReasonRefused, err
		}
		return nil, ReasonInvalid, err
	}
	cl := &call{}
	switch act.kind {
	case ActionScale:
		svc, err := render("service")
		if err != nil {
			return fail(err)
		}
		if svc == "" {
			return fail(errors.New("params.service rendered empty"))
		}
		cl.method, cl.url, cl.auth = http.MethodPost, c.orchURL+"/scale", true
		cl.subject = "scale of " + svc
		if has("step") {
			s, err := render("step")
			if err != nil {
				return fail(err)
			}
			n, err := strconv.Atoi(s)
			if err != nil || n == 0 {
				return fail(fmt.Errorf("params.step must be a non-zero integer, got %q", s))
			}
			lo := r.Min
			if lo == 0 {
				lo = DefaultStepMin
			}
			seg, err := pathSegment(svc)
			if err != nil {
				return fail(refusal("params.service " + err.Error()))
			}
			get := c.orchURL + "/services/" + seg
			cl.step = &stepScale{service: svc, step: n, lo: lo, hi: r.Max, getURL: get, getSummaryURL: summaryURL(get)}
			cl.would = fmt.Sprintf("scale %s by %+d replicas within [%d, %d] (the current count is not read in a dry run)", svc, n, lo, r.Max)
		} else {
			s, err := render("replicas")
			if err != nil {
				return fail(err)
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > maxReplicas {
				return fail(fmt.Errorf("params.replicas must be an integer from 0 to %d, got %q", maxReplicas, s))
			}
			// Bounds hold for templated counts too: a label cannot ask for
			// more than the rule allows.
			n = clamp(n, r.Min, r.Max)
			cl.body = scaleBody(svc, n)
			cl.would = fmt.Sprintf("scale %s to %d replicas", svc, n)
			cl.did = fmt.Sprintf("scaled %s to %d replicas", svc, n)
			if act == r.fire && r.Verify != nil {
				// A verified scale keeps the count it changes: its outcome
				// says what it was, and a rollback scales back to it.
				seg, err := pathSegment(svc)
				if err != nil {
					return fail(refusal("params.service " + err.Error()))
				}
				get := c.orchURL + "/services/" + seg
				cl.read = &readScale{service: svc, target: n, required: r.RollbackOn != "", getURL: get, getSum: summaryURL(get)}
			}
		}
	case ActionCacheWarm:
		s, err := render("companies")
		if err != nil {
			return fail(err)
		}
		companies := splitList(s)
		if len(companies) == 0 {
			return fail(errors.New("params.companies rendered to no company"))
		}
		cl.method, cl.url, cl.auth = http.MethodPost, c.apiURL+"/internal/cache/warm", true
		cl.body, _ = json.Marshal(map[string][]string{"companies": companies})
		noun := "companies"
		if len(companies) == 1 {
			noun = "company"
		}
		what := fmt.Sprintf("the cache for %d %s (%s)", len(companies), noun, strings.Join(companies, ", "))
		cl.subject, cl.would, cl.did = "cache warm", "warm "+what, "warmed "+what
	case ActionCircuitBreak, ActionCircuitClose:
		api, err := render("api")
		if err != nil {
			return fail(err)
		}
		if api == "" {
			if act.raw["api"] == DefaultAPIParam {
				return nil, ReasonMissingLabel, errors.New("the alert has no api label, which names the circuit breaker")
			}
			return nil, ReasonMissingLabel, errors.New("params.api rendered empty for this alert")
		}
		seg, err := pathSegment(api)
		if err != nil {
			return fail(refusal("params.api " + err.Error()))
		}
		cl.url, cl.auth = c.apiURL+"/internal/circuit-breaker/"+seg, true
		if act.kind == ActionCircuitClose {
			cl.method = http.MethodDelete
			cl.subject = "circuit close of " + api
			cl.would = "close the circuit breaker for " + api
			cl.did = "circuit breaker for " + api + " closed"
			break
		}
		s, err := render("ttl")
		if err != nil {
			return fail(err)
		}
		ttl, err := parseTTL(s)
		if err != nil {
			return fail(fmt.Errorf("params.ttl %w", err))
		}
		cl.method = http.MethodPost
		cl.body, _ = json.Marshal(map[string]int64{"ttl_seconds": int64(ttl / time.Second)})
		cl.subject = "circuit break of " + api
		cl.would = fmt.Sprintf("open the circuit breaker for %s for %s", api, model.Duration(ttl))
		cl.did = fmt.Sprintf("circuit breaker for %s opened for %s", api, model.Duration(ttl))
	case ActionHTTP:
		m, err := render("method")
		if err != nil {
			return fail(err)
		}
		m = strings.ToUpper(m)
		if !methodRE.MatchString(m) {
			return fail(fmt.Errorf("params.method rendered to %q, not an HTTP method", m))
		}
		u, err := act.url.render(a)
		if err != nil {
			return fail(err)
		}
		var body []byte
		if act.body != nil {
			v, err := act.body.value(a)
			if err != nil {
				return fail(err)
			}
			if body, err = json.Marshal(v); err != nil {
				return fail(fmt.Errorf("encode body: %w", err))
			}
		} else {
			s, err := render("body")
			if err != nil {
				return fail(err)
			}
			// Every value in it went through json (checked at load); what
			// the text around them makes must still be JSON.
			if s != "" && !json.Valid([]byte(s)) {
				return fail(errors.New("params.body rendered to text that is not valid JSON"))
			}
			body = []byte(s)
		}
		cl.method, cl.url, cl.body = m, u, body
		for _, k := range act.headerKeys {
			var b strings.Builder
			if err := act.headers[k].Execute(&b, a); err != nil {
				return fail(fmt.Errorf("render headers.%s: %w", k, err))
			}
			v := strings.TrimSpace(b.String())
			if strings.ContainsAny(v, "\r\n") {
				return fail(fmt.Errorf("headers.%s rendered to a value with a line break", k))
			}
			cl.headers = append(cl.headers, [2]string{k, v})
		}
		target := m + " " + summaryURL(u)
		cl.subject = "http action " + r.Name + " (" + target + ")"
		cl.would, cl.did = "call "+target, "called "+target
	default:
		return fail(fmt.Errorf("unknown action %q", act.kind))
	}
	cl.summary = Request{Method: cl.method, URL: summaryURL(cl.url), BodyBytes: len(cl.body)}
	return cl, "", nil
}

func scaleBody(service string, replicas int) []byte {
	b, _ := json.Marshal(struct {
		Service  string `json:"service"`
		Replicas int    `json:"replicas"`
	}{service, replicas})
	return b
}

// clamp bounds n to [lo, hi], where 0 leaves a side open.
func clamp(n, lo, hi int) int {
	if lo > 0 && n < lo {
		n = lo
	}
	if hi > 0 && n > hi {
		n = hi
	}
	return n
}

// summaryURL is what a record, a log line or an error may show of a URL:
// scheme, host and path; a query or userinfo may carry a credential.
func summaryURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// outcome is what running a call did.
type outcome struct {
	status, attempts int
	err              error
	reason           string // for err
	did              string
	noChange         string
	summary          *Request // replaces the prepared summary (a step's body is known only now)
	previous         *int     // the replica count a scale read before it acted
}

// replicas is a replica count read from the orchestrator.
type replicas struct{ n, status, attempts int }

// readReplicas reads a service's current replica count (GET
// {orchestrator_url}/services/{name}, answered {"replicas": N}); failed is
// the outcome of a read that did not give one.
func (e *Engine) readReplicas(ctx context.Context, c *compiled, getURL, summary string) (replicas, *outcome) {
	status, attempts, body, err := e.send(ctx, c, http.MethodGet, getURL, nil, true, nil, "")
	if err != nil {
		return replicas{}, &outcome{status: status, attempts: attempts, err: fmt.Errorf("read current replicas: %w", err), reason: ReasonCall,
			summary: &Request{Method: http.MethodGet, URL: summary}}
	}
	var cur struct {
		Replicas *int `json:"replicas"`
	}
	if err := json.Unmarshal(body, &cur); err != nil || cur.Replicas == nil || *cur.Replicas < 0 {
		return replicas{}, &outcome{status: status, attempts: attempts, err: errors.New(`read current replicas: the answer is not {"replicas": N}`), reason: ReasonInvalid,
			summary: &Request{Method: http.MethodGet, URL: summary}}
	}
	return replicas{n: *cur.Replicas, status: status, attempts: attempts}, nil
}

// execute runs a prepared call: for a step scale, read the current count,
// then ask for the new one.
func (e *Engine) execute(ctx context.Context, c *compiled, cl *call, idemKey string) outcome {
	var previous *int
	if s := cl.step; s != nil {
		cur, failed := e.readReplicas(ctx, c, s.getURL, s.getSummaryURL)
		if failed != nil {
			return *failed
		}
		target := clamp(cur.n+s.step, s.lo, s.hi)
		if target == cur.n {
			return outcome{status: cur.status, attempts: cur.attempts,
				noChange: fmt.Sprintf("%s has %d replicas, already at the bound of [%d, %d]", s.service, target, s.lo, s.hi)}
		}
		cl.body = scaleBody(s.service, target)
		cl.did = fmt.Sprintf("scaled %s from %d to %d replicas", s.service, cur.n, target)
		previous = &cur.n
	}
	if s := cl.read; s != nil {
		cur, failed := e.readReplicas(ctx, c, s.getURL, s.getSum)
		switch {
		case failed == nil:
			cl.did = fmt.Sprintf("scaled %s from %d to %d replicas", s.service, cur.n, s.target)
			previous = &cur.n
		case s.required:
			// A scale that could not be undone is not the one the rule
			// asked for.
			failed.err = fmt.Errorf("%w (rollback_on needs it)", failed.err)
			return *failed
		}
	}
	sum := Request{Method: cl.method, URL: summaryURL(cl.url), BodyBytes: len(cl.body)}
	status, attempts, _, err := e.send(ctx, c, cl.method, cl.url, cl.body, cl.auth, cl.headers, idemKey)
	o := outcome{status: status, attempts: attempts, err: err, did: cl.did, summary: &sum, previous: previous}
	if err != nil {
		o.reason = ReasonCall
	}
	return o
}

// maxAnswer bounds how much of an answer is read: a replica count is tiny,
// and anything else is only drained so the connection can be reused.
const maxAnswer = 64 << 10

// send makes one request, retrying what outbound.CheckStatus says is worth
// it (5xx, 429) and network errors up to Retries times with a short
// jittered backoff, each attempt bounded by Timeout. The error never holds
// the token, a header, a query or userinfo.
func (e *Engine) send(ctx context.Context, c *compiled, method, rawURL string, body []byte, auth bool, headers [][2]string, idemKey string) (status, attempts int, answer []byte, err error) {
	safe := summaryURL(rawURL)
	for attempts = 1; ; attempts++ {
		var retry bool
		status, answer, retry, err = e.attempt(ctx, c, method, rawURL, safe, body, auth, headers, idemKey)
		if err == nil {
			return status, attempts, answer, nil
		}
		if !retry || attempts > c.cfg.Retries || ctx.Err() != nil {
			return status, attempts, nil, err
		}
		// Full jitter spreads replicas that failed together.
		d := min(maxBackoff, minBackoff<<(attempts-1))
		d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
		// A Retry-After is honoured as far as maxBackoff, which runBound
		// (and so the lock) allows for each wait.
		if after, ok := outbound.RetryAfter(err); ok {
			d = max(d, min(after, maxBackoff))
		}
		if e.sleep(ctx, d) != nil {
			return status, attempts, nil, err
		}
	}
}

func (e *Engine) attempt(ctx context.Context, c *compiled, method, rawURL, safe string, body []byte, auth bool, headers [][2]string, idemKey string) (status int, answer []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return 0, nil, false, fmt.Errorf("build request %s %s: %w", method, safe, outbound.RedactURL(err, safe))
	}
	req.Header.Set("User-Agent", "alertmedic-remediation")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	if auth && c.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+string(c.cfg.BearerToken))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, true, outbound.RedactURL(err, safe)
	}
	defer resp.Body.Close()
	answer, _ = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	// CheckStatus, not CheckResponse: the answer's body is not quoted, as it
	// may echo the request.
	if retry, err = outbound.CheckStatus(resp); err != nil {
		return resp.StatusCode, nil, retry, err
	}
	return resp.StatusCode, answer, false, nil
}

// jsonString is the json template function: a value as JSON, so a label
// can go into a JSON body whatever characters it holds.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
