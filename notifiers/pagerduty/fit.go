package pagerduty

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	pd "github.com/PagerDuty/go-pagerduty"
	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
)

const (
	// minCutValue is as short as fit cuts a detail value: below it, the
	// values are many rather than large, and the details are dropped.
	minCutValue = 1024
	// maxFitRounds bounds fit's cuts; each re-encodes the event.
	maxFitRounds = 64
	// cutMargin is taken off with what the event is over by, for the
	// mark and the "truncated" entry the cut adds.
	cutMargin = 256
)

// fit keeps ev within PagerDuty's limit on an event by trimming its custom
// details first, largest value first: a label's or annotation's value is
// cut by what the event is over by (and marked "…"), details["truncated"]
// naming each cut value with its size before, until the event fits; only
// when the values are many and none large does it drop the details
// whole, as Alertmanager does. The summary (at most 1,024 characters) and
// the links are kept; a link goes, the longest first, only when the event
// is over the limit without any details (a runbook_url of half a
// megabyte). details holds labels and annotations as given, so they are
// copied before a cut.
func fit(ev *pd.V2Event, details map[string]any, labels, annotations template.KV) error {
	size, err := encodedSize(ev)
	if err != nil || size <= maxEventBytes {
		return err
	}
	ls, as := maps.Clone(labels), maps.Clone(annotations)
	details["labels"], details["annotations"] = ls, as
	truncated := map[string]int{}
	for range maxFitRounds {
		kv, key, name := largest(ls, as)
		if kv == nil || len(kv[key]) <= minCutValue {
			break
		}
		if _, ok := truncated[name]; !ok {
			truncated[name] = len(kv[key])
			details["truncated"] = truncated
		}
		keep := max(len(kv[key])-(size-maxEventBytes)-cutMargin, minCutValue)
		kv[key] = notifiers.Cut(kv[key], keep)
		if size, err = encodedSize(ev); err != nil || size <= maxEventBytes {
			return err
		}
	}
	ev.Payload.Details = map[string]any{
		"error": fmt.Sprintf("custom details removed: the event was %d bytes, over PagerDuty's limit of %d", size, maxEventBytes),
	}
	// Only a link as long as the limit is left: the longest go first.
	for len(ev.Links) > 0 {
		if size, err = encodedSize(ev); err != nil || size <= maxEventBytes {
			return err
		}
		longest := 0
		for i := range ev.Links {
			if hrefLen(ev.Links[i]) > hrefLen(ev.Links[longest]) {
				longest = i
			}
		}
		ev.Links = slices.Delete(ev.Links, longest, longest+1)
	}
	return nil
}

func hrefLen(v any) int {
	if l, ok := v.(link); ok {
		return len(l.Href)
	}
	return 0
}

// encodedSize is the event's size as go-pagerduty sends it.
func encodedSize(ev *pd.V2Event) (int, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode pagerduty event: %w", err)
	}
	return len(b), nil
}

// largest finds the longest value of labels and annotations (ties by
// name, for the same cut every time): the map holding it, its key and its
// name in details["truncated"].
func largest(labels, annotations template.KV) (template.KV, string, string) {
	var (
		best     template.KV
		bestKey  string
		bestName string
	)
	for _, m := range []struct {
		kv     template.KV
		prefix string
	}{{labels, "labels."}, {annotations, "annotations."}} {
		keys := make([]string, 0, len(m.kv))
		for k := range m.kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if best == nil || len(m.kv[k]) > len(best[bestKey]) {
				best, bestKey, bestName = m.kv, k, m.prefix+k
			}
		}
	}
	return best, bestKey, bestName
}
