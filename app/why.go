package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/config"
)

// Why asks a running alertmedic at base about one alert and writes its
// story (`alertmedic alert why`): args are its fingerprint, or label
// matchers as name=value (each an exact match) that select it. auth holds
// the read credentials (web.read_auth) to send. It returns the exit code:
// 0 told, 1 no such alert or several match (listed), 2 a usage or
// connection error.
func Why(ctx context.Context, base string, auth config.HTTPAuth, args []string, stdout, stderr io.Writer) int {
	c := whyClient{base: strings.TrimSuffix(base, "/"), auth: auth, http: &http.Client{Timeout: 15 * time.Second}}
	fp := ""
	if len(args) == 1 && alert.IsFingerprint(args[0]) {
		fp = args[0]
	} else {
		labels, err := ParseLabels(args)
		if err != nil {
			fmt.Fprintf(stderr, "alertmedic: %s\n", err)
			return 2
		}
		q := url.Values{}
		for name, value := range labels {
			q.Add("filter", name+"="+strconv.Quote(value))
		}
		var list api.Alerts
		if code, err := c.get(ctx, "/api/v1/alerts?"+q.Encode(), &list); err != nil {
			fmt.Fprintf(stderr, "alertmedic: %s\n", err)
			return code
		}
		switch len(list.Alerts) {
		case 0:
			fmt.Fprintln(stderr, "alertmedic: no alert alertmedic knows matches these labels (it may never have come, or its history_retention passed)")
			return 1
		case 1:
			fp = list.Alerts[0].Fingerprint
		default:
			fmt.Fprintf(stderr, "alertmedic: %d alerts match; name one by its fingerprint:\n", len(list.Alerts))
			for _, a := range list.Alerts {
				fmt.Fprintf(stderr, "  %s  %-8s %s\n", a.Fingerprint, a.Status, api.Timeline{Labels: a.Labels}.LabelText())
			}
			return 1
		}
	}
	var tl api.Timeline
	if code, err := c.get(ctx, "/api/v1/alerts/"+fp+"/timeline", &tl); err != nil {
		fmt.Fprintf(stderr, "alertmedic: %s\n", err)
		return code
	}
	fmt.Fprint(stdout, tl.Story())
	return 0
}

type whyClient struct {
	base string
	auth config.HTTPAuth
	http *http.Client
}

// get reads path into v; on failure, the exit code and the error.
func (c whyClient) get(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 2, fmt.Errorf("--url %q: %w", c.base, err)
	}
	switch {
	case c.auth.BasicAuth != nil:
		req.SetBasicAuth(c.auth.BasicAuth.Username, string(c.auth.BasicAuth.Password))
	case c.auth.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+string(c.auth.BearerToken))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 2, fmt.Errorf("ask %s: %w", c.base, scrubURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		code := 2
		if resp.StatusCode == http.StatusNotFound {
			code = 1
		}
		return code, fmt.Errorf("%s answered %d: %s", c.base, resp.StatusCode, e.Error)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 2, fmt.Errorf("read %s's answer: %w", c.base, err)
	}
	return 0, nil
}

// scrubURL keeps a URL's credentials out of an error.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			u.User = nil
			return fmt.Errorf("%s %s: %w", ue.Op, u.Redacted(), ue.Err)
		}
	}
	return err
}
