package receiver

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// The profiles answer, and heap?gc=1 collects first: the bench relies on
// that to read the live heap.
func TestDebugProfiles(t *testing.T) {
	h := newHarness(t, nil, Settings{MaxRequestBytes: 1 << 20})
	get := func(p string) (int, []byte) {
		resp, err := http.Get(h.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, index := get("/debug/pprof/")
	if code != 200 || !strings.Contains(string(index), "goroutine") {
		t.Fatalf("index: %d %.200s", code, index)
	}
	before := numGC()
	code, prof := get("/debug/pprof/heap?gc=1")
	if code != 200 {
		t.Fatalf("heap: %d %.200s", code, prof)
	}
	if _, err := gzip.NewReader(bytes.NewReader(prof)); err != nil {
		t.Fatalf("heap profile is not gzipped protobuf: %v", err)
	}
	if numGC() == before {
		t.Error("heap?gc=1 ran no garbage collection")
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("goroutine: %d %.200s", code, body)
	}
	if code, _ := get("/debug/pprof/nosuch"); code != 404 {
		t.Errorf("unknown profile: %d, want 404", code)
	}
}

func numGC() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}
