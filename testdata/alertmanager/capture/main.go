//go:build ignore

// Command capture is a throw-away HTTP sink used by ../capture.sh to record
// the exact bytes a real Alertmanager POSTs to a webhook receiver.
//
// Every POST body is written verbatim to <out>/NNN.body (NNN = arrival order,
// starting at 001) and the request line plus all request headers to
// <out>/NNN.headers. The sink always answers 200 with an empty body.
//
// It is excluded from the normal build by the ignore tag; run it with
//
//	go build -o /tmp/capture testdata/alertmanager/capture/main.go
//	/tmp/capture -addr 127.0.0.1:19095 -out /tmp/am-capture
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19095", "listen address (loopback only)")
	out := flag.String("out", "/tmp/am-capture", "directory to write captured requests to")
	flag.Parse()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	var (
		mu  sync.Mutex
		seq int
	)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			// Health probe from capture.sh.
			w.WriteHeader(http.StatusOK)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			log.Printf("read body: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}

		var hdr strings.Builder
		fmt.Fprintf(&hdr, "%s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
		fmt.Fprintf(&hdr, "Host: %s\n", r.Host)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&hdr, "%s: %s\n", k, v)
			}
		}

		// Write both files under one lock and the body last, so that a
		// NNN.body file existing implies its NNN.headers is complete.
		mu.Lock()
		defer mu.Unlock()
		seq++
		base := filepath.Join(*out, fmt.Sprintf("%03d", seq))
		if err := os.WriteFile(base+".headers", []byte(hdr.String()), 0o644); err != nil {
			log.Printf("write headers: %v", err)
		}
		if err := os.WriteFile(base+".body.tmp", body, 0o644); err != nil {
			log.Printf("write body: %v", err)
		}
		if err := os.Rename(base+".body.tmp", base+".body"); err != nil {
			log.Printf("rename body: %v", err)
		}
		log.Printf("%03d %s %s %d bytes", seq, r.Method, r.URL.Path, len(body))
		w.WriteHeader(http.StatusOK)
	})

	log.Printf("capture listening on %s, writing to %s", *addr, *out)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
