package remediation

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzHTTPURL: whatever the labels hold, the http action's URL is refused
// or goes to exactly the configured scheme, host and port, with each label
// in its own path segment (decoding to the label) and query value.
func FuzzHTTPURL(f *testing.F) {
	f.Add("x@127.0.0.1:18081/ssrf-target?", "a/../../admin?x=1#", "a&admin=1")
	f.Add("api", "..", "")
	f.Add("api", ".", "#frag")
	f.Add("", "", "")
	f.Add("API-1", "%2e%2e", "%zz")
	f.Add("x.evil", "a b/c", "é\x00\n")
	f.Add("x:80", "a;b,c", "q=1&r=2")
	c := DefaultConfig()
	c.Rules = []Rule{{Name: "hook", Action: ActionHTTP, Params: map[string]string{
		"url": "http://svc-{{ .Labels.service }}.internal:8080/restart/{{ .Labels.id }}/x-{{ .Labels.id }}?q={{ .Labels.q }}",
	}}}
	c.SetDefaults()
	cc, errs := compile(c)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	r := cc.rules[0]
	f.Fuzz(func(t *testing.T, service, id, q string) {
		a := firing(t0, "service", service, "id", id, "q", q)
		cl, _, err := (&Engine{}).prepare(cc, r, r.fire, a)
		if err != nil {
			return // refused
		}
		u, err := url.Parse(cl.url)
		if err != nil {
			t.Fatalf("built %q, which does not parse: %v", cl.url, err)
		}
		if u.Scheme != "http" || u.User != nil || u.Hostname() != "svc-"+service+".internal" || u.Port() != "8080" || u.Opaque != "" || u.Fragment != "" {
			t.Fatalf("built %q: scheme %q user %v host %q port %q", cl.url, u.Scheme, u.User, u.Hostname(), u.Port())
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 4 || segs[0] != "" || segs[1] != "restart" {
			t.Fatalf("built %q: path segments %q", cl.url, segs)
		}
		for i, w := range map[int]string{2: id, 3: "x-" + id} {
			if got, err := url.PathUnescape(segs[i]); err != nil || got != w {
				t.Fatalf("built %q: segment %d is %q (%v), want %q", cl.url, i, got, err, w)
			}
		}
		vs, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(vs) != 1 || len(vs["q"]) != 1 || vs.Get("q") != q {
			t.Fatalf("built %q: query %v (%v), want q=%q", cl.url, vs, err, q)
		}
	})
}
