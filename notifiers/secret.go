package notifiers

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Secret is a credential in an integration's configuration (a webhook URL,
// a token, a routing key, a password). It prints and marshals as <secret>,
// so it cannot reach a log line, an error or an API answer by accident; code
// that needs the value converts it with string(s) on purpose.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// ReadSecret fills *s from file when file is set (relative to dir), as every
// *_file twin does. key names the setting in errors; the value never appears.
func ReadSecret(key string, s *Secret, file, dir string) error {
	if file == "" {
		return nil
	}
	if *s != "" {
		return fmt.Errorf("%s: set %s or %s_file, not both", key, lastKey(key), lastKey(key))
	}
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s_file: cannot read %s", key, file)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return fmt.Errorf("%s_file: %s is empty", key, file)
	}
	*s = Secret(v)
	return nil
}

func lastKey(k string) string { return k[strings.LastIndex(k, ".")+1:] }
