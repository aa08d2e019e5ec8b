package notifiers

import "testing"

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcdef", 5, "ab…"},
		{"ééé", 5, "é…"}, // é is two bytes: never half of one
		{"ab\xffcd", 10, "ab\uFFFDcd"},
		{"abcdef", 2, "…"},
	} {
		if got := Cut(tc.in, tc.limit); got != tc.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}
