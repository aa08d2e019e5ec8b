package notifiers

import "github.com/alertmedic/alertmedic/secret"

// Secret is a credential in an integration's configuration (a webhook URL,
// a token, a routing key, a password): the one type every credential in
// alertmedic has. It prints and marshals as <secret>, so it cannot reach a
// log line, an error or an API answer by accident; code that needs the
// value converts it with string(s) on purpose. The integrations read their
// *_file twins with secret.Fill, the one reader of secret files.
type Secret = secret.Secret
