package config

import (
	"strings"
	"testing"
)

func TestAlertmanagerBlock(t *testing.T) {
	c, err := Parse([]byte("alertmanager:\n  url: http://am.internal:9093\n  http_config:\n    bearer_token: s3cr3t-am-tok\n"), "")
	if err != nil || c.Alertmanager.URL != "http://am.internal:9093" || c.Alertmanager.HTTPConfig.BearerToken != "s3cr3t-am-tok" {
		t.Fatalf("got %+v, %v", c, err)
	}
	for yaml, want := range map[string]string{
		"alertmanager:\n  url: ftp://am\n":                                                 "alertmanager.url: must be an http or https URL",
		"alertmanager:\n  url: http://u:pw@am:9093\n":                                      "alertmanager.url: must be an http or https URL",
		"alertmanager:\n  http_config:\n    bearer_token: s3cr3t-am-tok\n":                 "alertmanager.http_config: needs alertmanager.url",
		"alertmanager:\n  url: http://am\n  http_config:\n    basic_auth: {username: a}\n": "alertmanager.http_config.basic_auth.password: is required",
	} {
		_, err := Parse([]byte(yaml), "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", yaml, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr3t-am-tok") || strings.Contains(err.Error(), ":pw@")) {
			t.Errorf("%q: the error shows a secret: %v", yaml, err)
		}
	}
}
