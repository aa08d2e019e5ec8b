package remediation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// dupKey walks one JSON value token by token and returns the first key an
// object holds twice ("" when none does). encoding/json's Unmarshal keeps
// the last of two and says nothing; strict parsers reject the line.
func dupKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return "", nil
	}
	seen := map[string]bool{}
	for dec.More() {
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return "", err
			}
			key := k.(string)
			if seen[key] {
				return key, nil
			}
			seen[key] = true
		}
		if dup, err := dupKey(dec); dup != "" || err != nil {
			return dup, err
		}
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

func TestDupKeyFindsRepeats(t *testing.T) {
	for line, want := range map[string]string{
		`{"a":1,"b":{"a":2},"c":[{"x":1,"y":2}]}`: "",
		`{"a":1,"b":2,"a":3}`:                     "a",
		`{"a":[{"x":1,"x":2}]}`:                   "x",
	} {
		if got, err := dupKey(json.NewDecoder(strings.NewReader(line))); err != nil || got != want {
			t.Errorf("dupKey(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
}

// flakyStore fails the operations fail picks.
type flakyStore struct {
	*mapStore
	mu   sync.Mutex
	fail func(op, key string) bool
}

func (s *flakyStore) failing(op, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail != nil && s.fail(op, key)
}

func (s *flakyStore) UpdateState(ctx context.Context, key string, ttl time.Duration, fn func([]byte) ([]byte, error)) ([]byte, error) {
	if s.failing("update", key) {
		return nil, errDown
	}
	return s.mapStore.UpdateState(ctx, key, ttl, fn)
}

func (s *flakyStore) Marked(ctx context.Context, index string, max float64) ([]string, error) {
	if s.failing("marked", index) {
		return nil, errDown
	}
	return s.mapStore.Marked(ctx, index, max)
}

// logScenarios drives every log line the engine writes: a run, a failed
// run, a pause and a resume, a lost audit record, a failed prune and a
// failed lock release. Label values carry marker.
func logScenarios(t *testing.T, w io.Writer, marker string) {
	t.Helper()
	r := newRig(t, mapOpen)
	r.api.setAnswer(func(req *http.Request, _ []byte) (int, string) {
		if req.Method == http.MethodDelete {
			return 404, "{}"
		}
		return 200, "{}"
	})
	st := &flakyStore{mapStore: newMapStore()}
	c := r.config(Rule{Name: "break", Action: ActionCircuitBreak, OnResolve: &ActionConfig{Action: ActionCircuitClose}})
	e, err := New(Options{
		Config:    c,
		Store:     st,
		Logger:    zerolog.New(w).Level(zerolog.DebugLevel).With().Str("component", "remediation").Logger(),
		Now:       r.clk.Now,
		ReplicaID: "a",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	a := firing(t0, "alertname", "ExternalAPIFailure"+marker, "api", "bright_data"+marker)
	e.Handle(t.Context(), a, false)                 // ran
	e.Handle(t.Context(), resolvedAt(a, t0), false) // failed: 404
	e.Handle(t.Context(), a, false)                 // skipped: cooldown
	_, _ = e.Pause(t.Context(), "alice"+marker)     // pause record
	_, _ = e.Resume(t.Context(), "alice"+marker)    // resume record
	st.fail = func(op, key string) bool { return op == "marked" }
	r.clk.Add(2 * pruneInterval)
	e.Handle(t.Context(), firing(r.clk.Now(), "api", "x"), false) // prune fails
	st.fail = func(op, key string) bool { return op == "update" && strings.HasPrefix(key, keyAudit) }
	r.clk.Add(time.Hour)
	e.Handle(t.Context(), firing(r.clk.Now(), "api", "y"), false) // audit write fails
	guardWrites := 0
	st.fail = func(op, key string) bool {
		if op == "update" && strings.HasPrefix(key, keyGuard) {
			guardWrites++
			return guardWrites > 1 // the release
		}
		return false
	}
	r.clk.Add(time.Hour)
	e.Handle(t.Context(), firing(r.clk.Now(), "api", "z"), false) // release fails
}

// The caller names the component (app does); a second "component" key
// makes the line invalid for strict JSON parsers.
func TestLogLinesHaveNoDuplicateKeys(t *testing.T) {
	var buf lockedBuffer
	logScenarios(t, &buf, "")
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	msgs := map[string]bool{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		dup, err := dupKey(json.NewDecoder(bytes.NewReader(line)))
		if err != nil || dup != "" {
			t.Errorf("key %q repeated (%v) in %s", dup, err, line)
		}
		var m map[string]any
		_ = json.Unmarshal(line, &m)
		if m["component"] != "remediation" {
			t.Errorf("component %v in %s", m["component"], line)
		}
		msgs[fmt.Sprint(m["message"])] = true
	}
	for _, want := range []string{"write remediation audit record failed", "prune remediation audit index failed", "release remediation lock failed; it expires by itself"} {
		if !msgs[want] {
			t.Errorf("no line %q among %d: %v", want, n, msgs)
		}
	}
}

// A log message is a constant: what a label holds goes into fields, which
// both formats quote, so a newline in a label cannot forge a line.
func TestLogMessagesAreConstant(t *testing.T) {
	const marker = "\n{\"level\":\"error\",\"message\":\"FORGED\"}\nFORGED"
	var buf lockedBuffer
	logScenarios(t, &buf, marker)
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sawDetail := false
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("not a JSON line: %q", sc.Text())
			continue
		}
		msg := fmt.Sprint(m["message"])
		if strings.Contains(msg, "FORGED") || strings.Contains(msg, "bright_data") {
			t.Errorf("message %q holds a label value", msg)
		}
		if d, _ := m["detail"].(string); strings.Contains(d, "bright_data"+marker) {
			sawDetail = true
		}
	}
	if !sawDetail {
		t.Errorf("no detail field holds the record's detail:\n%s", buf.String())
	}

	var con lockedBuffer
	logScenarios(t, zerolog.ConsoleWriter{Out: &con, NoColor: true}, marker)
	for _, line := range strings.Split(strings.TrimSuffix(con.String(), "\n"), "\n") {
		if strings.HasPrefix(line, "FORGED") || strings.HasPrefix(line, "{") {
			t.Errorf("a label forged the console line %q", line)
		}
	}
}
