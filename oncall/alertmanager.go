package oncall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/secret"
)

// Alertmanager is the API v2 of one Alertmanager: where a Silence button
// creates its silence.
type Alertmanager struct {
	// URL is the Alertmanager's own address (its --web.external-url, as
	// it sends in every webhook).
	URL string
	// BearerToken or Username and Password authenticate the calls; they
	// are set only for the configured alertmanager.url.
	BearerToken secret.Secret
	Username    string
	Password    secret.Secret
	Client      *http.Client
	Timeout     time.Duration
}

// Matcher is one matcher of a silence, as API v2 spells it.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence is what POST /api/v2/silences takes (a postableSilence).
type Silence struct {
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
}

// maxAnswer bounds what is read of Alertmanager's answer.
const maxAnswer = 64 << 10

// CreateSilence posts s and returns the new silence's ID. Errors never
// carry the credentials.
func (am *Alertmanager) CreateSilence(ctx context.Context, s Silence) (string, error) {
	secrets := outbound.NewSecrets(string(am.BearerToken), string(am.Password))
	base, err := url.Parse(am.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("create silence: %q is not an http or https Alertmanager URL", am.URL)
	}
	endpoint := base.JoinPath("api", "v2", "silences")
	body, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("create silence: %w", err)
	}
	timeout := am.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("create silence: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "alertmedic")
	switch {
	case am.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+string(am.BearerToken))
	case am.Username != "":
		req.SetBasicAuth(am.Username, string(am.Password))
	}
	client := am.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", secrets.Scrub(fmt.Errorf("create silence at %s: %w", base.Redacted(), outbound.RedactURL(err, base.Redacted())))
	}
	defer resp.Body.Close()
	if _, err := outbound.CheckResponse(resp); err != nil {
		return "", secrets.Scrub(fmt.Errorf("create silence at %s: %w", base.Redacted(), err))
	}
	var ans struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&ans); err != nil || ans.SilenceID == "" {
		return "", fmt.Errorf("create silence at %s: the answer names no silenceID", base.Redacted())
	}
	return ans.SilenceID, nil
}

// errNoCommonLabel: a silence of no matcher would silence everything, and
// Alertmanager refuses it anyway.
var errNoCommonLabel = errors.New("the group's alerts have no label in common to silence them by")

// matchers are the labels every one of the alerts has, with the same value:
// for one alert, its labels.
func matchers(labelSets []map[string]string) ([]Matcher, error) {
	if len(labelSets) == 0 {
		return nil, errNoCommonLabel
	}
	common := map[string]string{}
	for k, v := range labelSets[0] {
		common[k] = v
	}
	for _, ls := range labelSets[1:] {
		for k, v := range common {
			if ls[k] != v {
				delete(common, k)
			}
		}
	}
	out := make([]Matcher, 0, len(common))
	for k, v := range common {
		if v == "" {
			continue
		}
		out = append(out, Matcher{Name: k, Value: v, IsEqual: true})
	}
	if len(out) == 0 {
		return nil, errNoCommonLabel
	}
	slices.SortFunc(out, func(a, b Matcher) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
