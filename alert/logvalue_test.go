package alert

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLogValue(t *testing.T) {
	if got := LogValue("HighErrorRate"); got != "HighErrorRate" {
		t.Errorf("a short value changed: %q", got)
	}
	long := strings.Repeat("é", 3000) // 6,000 bytes, two per rune
	got := LogValue("x" + long)
	if !strings.HasSuffix(got, "…[cut: 6001 bytes]") || len(got) > MaxLogValue+len("…[cut: 6001 bytes]") || !utf8.ValidString(got) {
		t.Errorf("cut to %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got[len(got)-40:])
	}
}
