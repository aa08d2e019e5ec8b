package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any file either loads or yields Errors; it never panics, and a
// loaded configuration passes its own validation again.
func FuzzParse(f *testing.F) {
	f.Add(Example)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "")
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error %T %v is not config.Errors", err, err)
			}
			return
		}
		if c.Web.MaxAlerts <= 0 || c.Pipeline.Workers <= 0 || (c.Store.Type != StoreMemory && c.Store.Type != StoreRedis) {
			t.Fatalf("loaded an invalid configuration: %+v", c)
		}
	})
}
