package pipeline

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/store"
)

// alertRecord is what the store keeps of one alert (under alert:<fp>),
// written in the same commit that acknowledges the entry that changed it:
// its last observation, how many observations of it were processed, the
// newest observation each target was given, and, when it flaps on its own
// (no flapping.by), its flap state.
type alertRecord struct {
	Status   string `json:"s"`
	StartsAt int64  `json:"a"` // unix ms
	EndsAt   int64  `json:"e,omitempty"`
	SeenAt   int64  `json:"t"`
	// N counts the observations processed: each entry's once.
	N int `json:"n"`
	// Sent maps a target key to the watermark of the newest observation
	// queued for it (delivered, or in the outbox or a digest): an
	// observation reaches a target at most once, and an older one arriving
	// late (a replay) never goes out after a newer one did.
	Sent map[string]int64 `json:"w,omitempty"`
	// Flap is the alert's flap state when it flaps on its own. A state
	// that never saw a change is not stored: it is the last observation
	// above (flapping.FromSeen), and most alerts never change, so most
	// records are a third of the size.
	Flap *flapRecord `json:"f,omitempty"`
	// Holds maps a target key to when (unix ms) the page held from it for
	// remediation goes out at the latest (hold.go).
	Holds map[string]int64 `json:"h,omitempty"`
	// Labels are the alert's labels; GroupKey its last Alertmanager group
	// (its Slack buttons' audit is kept under it). When its latest
	// observation's events are shared with other alerts of its request
	// (SharedLabels), the block of its latest reference event (timeline.go)
	// holds the group key and the labels they all have, and Labels only
	// the alert's own.
	Labels       map[string]string `json:"l,omitempty"`
	GroupKey     string            `json:"k,omitempty"`
	SharedLabels bool              `json:"ls,omitempty"`
	// Events are the decisions about its latest observations, oldest
	// first, at most maxEvents (timeline.go); Dropped counts those let go.
	Events  []event `json:"v,omitempty"`
	Dropped int     `json:"vd,omitempty"`

	// fresh counts the events at the end of Events noted by the plan
	// being decided (not stored).
	fresh int
}

// flapRecord is one flap key's state: under alert:<fp> within the alert's
// record, or alone under flap:<key> for alerts grouped by flapping.by.
type flapRecord struct {
	State flapping.State `json:"state"`
	// Config is the detection in effect at the last observation; kept only
	// while flapping, for the periodic check that ends it.
	Config   *flapping.Config `json:"config,omitempty"`
	Suppress bool             `json:"suppress,omitempty"`
	// Held are the latest observations of alerts whose notifications were
	// held back while flapping, by fingerprint: delivered when it stops,
	// so a resolve that came during the flap is never lost.
	Held map[string]heldAlert `json:"held,omitempty"`
}

type heldAlert struct {
	Alert       template.Alert `json:"alert"`
	GroupKey    string         `json:"groupKey,omitempty"`
	ExternalURL string         `json:"externalURL,omitempty"`
}

// maxHeld bounds the alerts held under one flap key; past it alerts are
// delivered as they come rather than held (never dropped).
const maxHeld = 1000

// Record keys in the store. A flap key is a fingerprint, or "by:..." for
// alerts grouped by flapping.by (flapping.Key).
func alertKey(fp string) string { return "alert:" + fp }

func flapKey(key string) string { return "flap:" + key }

// grouped says whether a flap key has its own record.
func grouped(key string) bool { return strings.HasPrefix(key, "by:") }

// recordKeyOf is the store key holding flap key's state.
func recordKeyOf(key string) string {
	if grouped(key) {
		return flapKey(key)
	}
	return alertKey(key)
}

func decodeRecord(fp string, b []byte) *alertRecord {
	r := &alertRecord{}
	if b != nil && json.Unmarshal(b, r) != nil {
		// A record we cannot read is started afresh rather than blocking
		// the alert's notifications.
		r = &alertRecord{}
	}
	if r.Flap == nil && r.N > 0 {
		r.Flap = &flapRecord{State: flapping.FromSeen(fp, r.seen(), r.N)}
	}
	return r
}

func (r *alertRecord) seen() flapping.Seen {
	return flapping.Seen{Status: r.Status, StartsAt: time.UnixMilli(r.StartsAt).UTC(), SeenAt: time.UnixMilli(r.SeenAt).UTC()}
}

// encode writes r, leaving out a flap state that its last observation
// rebuilds; plain says it did (or there was none).
func (r *alertRecord) encode(fp string) (b []byte, plain bool) {
	c := *r
	if f := c.Flap; f != nil && !f.pinned() && f.Config == nil {
		if pfp, seen, ok := f.State.Plain(); ok && pfp == fp && sameMillis(seen, r.seen()) {
			c.Flap = nil
		}
	}
	b, _ = json.Marshal(&c)
	return b, c.Flap == nil
}

func sameMillis(a, b flapping.Seen) bool {
	return a.Status == b.Status && a.StartsAt.UnixMilli() == b.StartsAt.UnixMilli() && a.SeenAt.UnixMilli() == b.SeenAt.UnixMilli()
}

func decodeFlap(b []byte) *flapRecord {
	f := &flapRecord{}
	if b != nil && json.Unmarshal(b, f) != nil {
		f = &flapRecord{}
	}
	return f
}

// observe takes an observation in, as flap detection sees it: a copy of an
// earlier episode arriving late changes only when the alert was last seen.
func (r *alertRecord) observe(a template.Alert, at time.Time) {
	r.N++
	r.SeenAt = max(r.SeenAt, at.UnixMilli())
	if starts := a.StartsAt.UnixMilli(); r.N > 1 && starts < r.StartsAt {
		return
	}
	r.Status, r.StartsAt = a.Status, a.StartsAt.UnixMilli()
	r.EndsAt = 0
	if a.Status == alert.StatusResolved {
		r.EndsAt = a.EndsAt.UnixMilli()
	}
}

// newer says whether a's observation is newer than what target was given.
func (r *alertRecord) newer(target string, a template.Alert) bool {
	w, ok := r.Sent[target]
	return !ok || alert.Watermark(a) > w
}

func (r *alertRecord) sent(target string, a template.Alert) {
	if r.Sent == nil {
		r.Sent = map[string]int64{}
	}
	r.Sent[target] = alert.Watermark(a)
}

// flapTTL is how long a flap state must outlive its last write.
func flapTTL(c flapping.Config) time.Duration {
	return 2*max(time.Duration(c.Window), time.Duration(c.StableFor)) + 24*time.Hour
}

func (f *flapRecord) pinned() bool { return len(f.Held) > 0 }

// markOf is a flap key's entry in the flapping index.
func markOf(key string) store.Mark { return store.Mark{Index: indexFlapping, Member: key} }
