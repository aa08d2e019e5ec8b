package webhook

import (
	"encoding/json"
	"fmt"

	"github.com/alertmedic/alertmedic/notifiers"
)

// Render returns the JSON body a Notifier with c would POST for nt. It
// calls nobody; the URL and the bearer token travel outside the body, so
// it carries neither. For the log integration and `alertmedic template
// render`.
func Render(c Config, nt *notifiers.Notification) ([]byte, error) {
	n := New(c, nil)
	b, err := json.Marshal(NewMessage(nt, n.cfg.MaxAlerts))
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	return b, nil
}
