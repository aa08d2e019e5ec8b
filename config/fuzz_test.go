package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any file either loads or yields Errors; it never panics, and a
// loaded configuration passes its own validation again.
func FuzzParse(f *testing.F) {
	f.Add(Example)
	// Alias bombs for the fuzzer to start from: a billion laughs of nine
	// levels of ten, alone and aliased into the route tree; an anchor that
	// aliases itself; and an ordinary merge key, which must keep loading.
	// testdata/alias_bomb.yml and alias_cycle.yml come in with the other
	// files below. Parse refuses each bomb before it expands an alias, so
	// none can hang the fuzz target.
	var laughs strings.Builder
	laughs.WriteString(`a: &a ["x","x","x","x","x","x","x","x","x","x"]` + "\n")
	for l := 'b'; l <= 'i'; l++ {
		fmt.Fprintf(&laughs, "%c: &%c [%s]\n", l, l, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*%c,", l-1), 10), ","))
	}
	f.Add([]byte(laughs.String()))
	f.Add([]byte(laughs.String() + "route: {receiver: r, routes: [*i]}\n"))
	f.Add([]byte("route: &r {receiver: r, routes: [*r]}\nreceivers: [{name: r}]\n"))
	f.Add([]byte("web:\n  auth: &a {bearer_token: t}\n  admin_auth:\n    <<: *a\n"))
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "")
		if err != nil {
			if _, ok := err.(Errors); !ok { //nolint:errorlint // Parse's contract: the error is Errors itself
				t.Fatalf("error %T %v is not config.Errors", err, err)
			}
			return
		}
		if c.Web.MaxAlerts <= 0 || c.Pipeline.Workers <= 0 || (c.Store.Type != StoreMemory && c.Store.Type != StoreRedis) {
			t.Fatalf("loaded an invalid configuration: %+v", c)
		}
	})
}
