package receiver

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every payload of testdata/malformed gets the status and message the corpus
// says, and the server keeps serving.
func TestMalformedCorpus(t *testing.T) {
	dir := filepath.Join("..", "testdata", "malformed")
	f, err := os.Open(filepath.Join(dir, "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newHarness(t, nil, Settings{})
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 {
			t.Fatalf("bad corpus line %q", line)
		}
		n++
		body, err := os.ReadFile(filepath.Join(dir, cols[0]))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.Atoi(cols[2])
		code, resp := h.post(t, "/webhook", cols[1], body)
		if code != want {
			t.Errorf("%s: status %d, want %d (%s)", cols[0], code, want, resp)
			continue
		}
		if want != http.StatusOK && !strings.Contains(errorOf(t, resp), cols[3]) {
			t.Errorf("%s: error %q does not say %q", cols[0], resp, cols[3])
		}
	}
	if n < 10 {
		t.Fatalf("only %d cases read", n)
	}
	if code, _ := h.post(t, "/webhook", "application/json", fixture(t, "resolved.json")); code != 200 {
		t.Errorf("server stopped serving after the corpus: %d", code)
	}
}
