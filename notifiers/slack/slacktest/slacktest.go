// Package slacktest signs requests as Slack signs the interactions it posts
// to an app (v0: HMAC-SHA256 of "v0:{timestamp}:{body}" under the app's
// signing secret), for tests of the endpoint that checks them.
package slacktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Sign sets h's X-Slack-Request-Timestamp to at and X-Slack-Signature to
// the v0 signature of body under secret.
func Sign(h http.Header, secret, body string, at time.Time) {
	stamp := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}
