package config

import (
	"strings"
	"testing"
)

func TestWebTrustedProxiesAndInflightBytes(t *testing.T) {
	c, err := Parse([]byte("web:\n  trusted_proxies: [10.0.0.0/8, 192.168.1.7, '::1']\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Web.MaxInflightBytes != 16<<20 || len(c.Web.TrustedProxies) != 3 {
		t.Errorf("web: %+v", c.Web)
	}
	// Parsed once, when the file is checked: a host is its /32 or /128.
	var got []string
	for _, p := range c.Web.TrustedPrefixes {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.168.1.7/32 ::1/128"; strings.Join(got, " ") != want {
		t.Errorf("trusted prefixes: got %v, want %s", got, want)
	}
	_, err = Parse([]byte("web:\n  max_request_bytes: 2048\n  max_inflight_bytes: 1024\n  trusted_proxies: [10.0.0.0/33, proxy.internal]\n"), "")
	for _, want := range []string{
		"web.max_inflight_bytes: must be at least web.max_request_bytes (2048)",
		`web.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or a CIDR prefix`,
		`web.trusted_proxies[1]: "proxy.internal" is not an IP address or a CIDR prefix`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}

// web.external_url is an http(s) URL with a host; its trailing slash goes.
func TestWebExternalURL(t *testing.T) {
	c, err := Parse([]byte("web:\n  external_url: https://alertmedic.example.com/oncall/\n"), "")
	if err != nil || c.Web.ExternalURL != "https://alertmedic.example.com/oncall" {
		t.Fatalf("%q %v", c.Web.ExternalURL, err)
	}
	for _, bad := range []string{"alertmedic.example.com", "ftp://x/", "https://u:p@x/", "https://x/?a=b"} {
		_, err := Parse([]byte("web:\n  external_url: "+bad+"\n"), "")
		if err == nil || !strings.Contains(err.Error(), "web.external_url: must be an http or https URL") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
