package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// within runs f and fails the test if it has not returned after limit. It is
// a guard against a hang only, not a measure: the limits are far above what
// the work takes.
func within[T any](t *testing.T, limit time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(limit):
		t.Fatalf("%s still running after %s", what, limit)
		panic("unreachable")
	}
}

// A file whose aliases would expand without end is refused before anything
// expands them: at startup, on /-/reload and in check-config alike.
func TestAliasesThatExpandTooFarAreRefused(t *testing.T) {
	cases := []struct {
		file string
		want string
	}{
		// Nine anchors of ten aliases each: 10^9 routes from 666 bytes.
		{"alias_bomb.yml", "x.f.routes[1]: alias *e expands the file past the 100000 nodes aliases may add (line 10)"},
		// An alias inside its own anchor's value is infinitely deep.
		{"alias_cycle.yml", "route.routes[0]: alias *r is inside the value it refers to (line 4)"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			err := within(t, 10*time.Second, "Load("+tc.file+")", func() error {
				_, err := Load("testdata/" + tc.file)
				return err
			})
			want := "load testdata/" + tc.file + ":\n" + tc.want
			if err == nil || err.Error() != want {
				t.Errorf("error\n got: %v\nwant: %s", err, want)
			}
		})
	}
}

// The key-path walk descends into an anchor's value once per Go type it is
// used as, however many aliases name it: its work is bounded by the file's
// own size, not by what the aliases would expand to.
func TestWalkVisitsEachAnchorOnce(t *testing.T) {
	b, err := readTestdata("alias_bomb.yml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	w := newWalker()
	within(t, 10*time.Second, "walk", func() bool {
		w.walk(root.Content[0], reflect.TypeOf(Config{}), "")
		return true
	})
	if n := literalNodes(&root); w.visits > n {
		t.Errorf("walk visited %d nodes of a file of %d", w.visits, n)
	}
}

func literalNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += literalNodes(k)
	}
	return c
}

// Ordinary anchors, aliases and merge keys still load, and a key the merged
// mapping should not have is still reported at its line.
func TestAnchorsAndMergeKeys(t *testing.T) {
	const file = `web:
  auth: &auth
    bearer_token: shared-token
  admin_auth: *auth
route:
  receiver: team-a
  routes:
    - &critical
      receiver: team-b
      matchers: ['severity="critical"']
      continue: true
    - <<: *critical
      receiver: team-a
receivers:
  - name: team-a
    integrations:
      - type: slack
        settings: &slack {channel: "#alerts", title: "{{ .Status }}"}
  - name: team-b
    integrations:
      - type: slack
        settings:
          <<: *slack
          channel: "#team-b"
`
	c, err := parseWithin(t, file)
	if err != nil {
		t.Fatalf("anchors and merge keys do not load: %v", err)
	}
	if string(c.Web.AdminAuth.BearerToken) != "shared-token" {
		t.Error("admin_auth: *auth not applied")
	}
	r := c.Route.Routes[1]
	if r.Receiver != "team-a" || !r.Continue || len(r.Matchers) != 1 || r.Matchers[0] != `severity="critical"` {
		t.Errorf("<<: *critical not merged: %+v", r)
	}
	s := c.Receivers[1].Integrations[0].Settings
	if s["channel"] != "#team-b" || s["title"] != "{{ .Status }}" {
		t.Errorf("<<: *slack not merged: %v", s)
	}

	// An anchor is checked as what each alias uses it as.
	_, err = parseWithin(t, "store:\n  memory: &m\n    queue_capacity: 5\n    max_items: 3\n  redis:\n    <<: *m\n")
	if want := "store.redis.max_items: unknown field (known: addrs, claim_idle, db, dial_timeout, key_prefix, key_ttl, master_name, max_dead_letters, password, password_file, queue_capacity, shards, timeout, url, url_file, username, wait_replicas) (line 4)"; err == nil || err.Error() != want {
		t.Errorf("unknown key in a merged anchor\n got: %v\nwant: %s", err, want)
	}
	_, err = parseWithin(t, "web:\n  auth:\n    <<: [1, 2]\n")
	if err == nil || err.Error() != "web.auth.<<: must be a mapping, an alias of one, or a list of them, to merge (line 3)" {
		t.Errorf("bad merge value: %v", err)
	}
}

func parseWithin(t *testing.T, file string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	r := within(t, 10*time.Second, "Parse", func() result {
		c, err := Parse([]byte(file), "")
		return result{c, err}
	})
	return r.c, r.err
}

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
