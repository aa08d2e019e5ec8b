package slack

import (
	"encoding/json"
	"fmt"

	"github.com/alertmedic/alertmedic/notifiers"
)

// Render returns the JSON body Slack would get for nt from a Notifier with
// c: the incoming webhook's body as sent, or, with a token, the same
// fields as chat.postMessage takes them (slack-go posts them as a form, one
// value per field, attachments as this JSON). It calls nobody, and carries
// neither the webhook URL nor the token: the message holds neither. For
// the log integration and `alertmedic template render`.
func Render(c Config, nt *notifiers.Notification) ([]byte, error) {
	msg, err := New(c, nil, nil).message(nt)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	return b, nil
}
