package alert

import (
	"strconv"
	"unicode/utf8"
)

// MaxLogValue bounds a value that came in with an alert (a label, an
// annotation, a group key, a receiver name) when it goes into a log line.
// Such a value is data of any size: one 3 MB group key repeated on every
// alert's line made a 3.8 MB request write 300 MB of log.
const MaxLogValue = 512

// LogValue returns s whole when it is at most MaxLogValue bytes, or its
// first MaxLogValue bytes (cut before a rune) and a marker saying how long
// it was: "…[cut: 3145728 bytes]".
func LogValue(s string) string {
	if len(s) <= MaxLogValue {
		return s
	}
	cut := MaxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[cut: " + strconv.Itoa(len(s)) + " bytes]"
}
