// Package secret holds the one type every credential in alertmedic's
// configuration has, and the one reader of the *_file twins that hold them.
package secret

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Secret is a credential (a webhook URL, a token, a routing key, a
// password). It prints and marshals as <secret>, so it cannot reach a log
// line, an error or an API answer by accident; code that needs the value
// converts it with string(s) on purpose.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v too.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MaxFileSize is the largest *_file alertmedic reads. A credential is a few
// hundred bytes; a certificate bundle a few kilobytes.
const MaxFileSize = 1 << 20

// ReadFile returns the content of a secret file, trimmed of surrounding
// white space. It reads only a regular file (a symbolic link to one, as
// Kubernetes mounts secrets, is fine) of at most MaxFileSize bytes: a FIFO,
// a device such as /dev/zero, a directory or a socket is refused before a
// byte is read, so loading a configuration never blocks and never reads
// without end. The error names the file and the reason, never the content.
func ReadFile(name string) (string, error) {
	b, err := ReadRegular(name, MaxFileSize)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return v, nil
}

// ReadRegular reads a regular file (or a symbolic link to one) of at most
// max bytes, as ReadFile does, for any file alertmedic reads at load: a
// FIFO, a device, a directory or a socket is refused before a byte is read.
func ReadRegular(name string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer. The type is then checked on the opened file itself, so a file
	// swapped between a check and the open cannot get past it.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %s: not a regular file (%s)", name, kind(st.Mode()))
	}
	if st.Size() > max {
		return nil, fmt.Errorf("cannot read %s: %d bytes, more than the %d bytes it may have", name, st.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("cannot read %s: more than the %d bytes it may have", name, max)
	}
	return b, nil
}

// Fill sets *s from file when file is set, as every *_file twin does; a
// relative file is taken from dir (the configuration file's directory).
// key names the setting in errors ("store.redis.password"); an error's text
// starts with the setting it is about.
func Fill(key string, s *Secret, file, dir string) error {
	if file == "" {
		return nil
	}
	last := key[strings.LastIndex(key, ".")+1:]
	if *s != "" {
		return fmt.Errorf("%s: set %s or %s_file, not both", key, last, last)
	}
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	v, err := ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s_file: %w", key, err)
	}
	*s = Secret(v)
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// unwrapPath drops a PathError's operation and path (the message names
// the file already), keeping the cause, so errors.Is(err, fs.ErrNotExist)
// still holds.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
