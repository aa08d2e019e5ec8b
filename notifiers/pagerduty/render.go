package pagerduty

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/alertmedic/alertmedic/notifiers"
)

// RenderedKey stands in for the routing key in what Render returns.
const RenderedKey = "<routing key>"

var escapedKey = []byte(`"\u003crouting key\u003e"`)

// Render returns the Events API v2 events a Notifier with c would post for
// nt, one line of JSON per event (each line is one request's body), with
// RenderedKey in place of the routing key. Notices send nothing, so
// render nothing. It calls nobody. For the log integration and
// `alertmedic template render`.
func Render(c Config, nt *notifiers.Notification) ([]byte, error) {
	switch nt.Kind {
	case notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation:
		return nil, nil
	}
	c.RoutingKey = ""
	n := New(c, nil)
	var buf bytes.Buffer
	for _, a := range nt.Alerts {
		ev, err := n.event(nt, a)
		if err != nil {
			return nil, err
		}
		ev.RoutingKey = RenderedKey
		// Encoded as go-pagerduty does, which escapes < and >: the
		// stand-in reads better unescaped, and is valid JSON either way.
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode pagerduty event: %w", err)
		}
		buf.Write(bytes.Replace(b, escapedKey, []byte(`"`+RenderedKey+`"`), 1))
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}
