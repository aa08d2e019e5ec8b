package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// ceilingMessage is Alertmanager's webhook message as alertmedic reads it:
// template.Data plus the version 4 envelope fields.
type ceilingMessage struct {
	template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// ceilingAnswer is about as long as alertmedic's, so both write the same
// amount back.
var ceilingAnswer = []byte(`{"status":"success","accepted":1,"duplicates":0}`)

// serveCeiling is the least a webhook receiver in Go can do: read the body,
// decode it with encoding/json, answer 200. It runs in its own process, as
// the daemon does, so that it competes with the load generator for the two
// cores in the same way.
func serveCeiling(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var m ceilingMessage
		if err := json.Unmarshal(body, &m); err != nil || len(m.Alerts) == 0 {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(ceilingAnswer)
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve ceiling: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down ceiling: %w", err)
	}
	return nil
}
