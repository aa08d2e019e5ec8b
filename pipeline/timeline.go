package pipeline

// Timelines. Every decision the pipeline makes about an alert observation
// (received, flapping, the routes, and per target: queued, muted, deferred,
// held, suppressed, already sent) is an event in the alert's record
// (alert:<fp>), written in the commit that made it, so it costs no store
// command of its own; the latest maxEvents are kept, as long as the record.
// What becomes of an outbox item is written, one line per attempt, into
// the field of the item's ID of its target's record of the day,
// dl:<target>:<yyyymmdd>, in the target's shard, when it is settled
// (store.Note: one hash write per settle, however many items it settles),
// kept for history_retention past that day. A timeline is the record's
// events with, after each queued item, what the delivery records say.
//
// The alerts of one request mostly go the same way: the same status, the
// same routes, the same decision on each target. Events a plan noted alike
// for two alerts or more are written once, as a shared block (obs:<id>,
// sharedBlock) with the group key and the labels those alerts have in
// common; each record keeps a reference event to it and its own labels
// only. In an alert storm, where a request carries hundreds of alerts, a
// record is then about the size it was before it had a timeline.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store"
)

// maxEvents bounds the events an alert's record keeps.
const maxEvents = 48

// event is one decision in an alert's record; short names keep records
// small.
type event struct {
	T int64  `json:"t,omitempty"` // unix ms; 0: the event before's
	S string `json:"s"`           // api.Stage*
	G string `json:"g,omitempty"` // target key
	D string `json:"d,omitempty"` // detail
	I string `json:"i,omitempty"` // outbox item; a received event's entry
	U string `json:"u,omitempty"` // a received event's Alertmanager, when it changed
	W int64  `json:"w,omitempty"` // a deferred event's end of mute (unix ms): when its digest is due
}

// deferred notes an alert deferred on target into its digest (item) until
// the mute (interval) ends.
func (r *alertRecord) deferred(at time.Time, target, interval string, until time.Time, item string) {
	r.note(at, api.StageDeferred, target, interval, item)
	r.Events[len(r.Events)-1].W = until.UnixMilli()
}

// Short forms of the commonest events, expanded when read (expand): an
// alert's record is read and written by every decision, and most alerts
// have a received, a routed and a notify per target.
const (
	codeBypass       = "b:" // + intervals: notify although muted, bypass_mute_matchers
	codeMutedResolve = "m:" // + interval: a resolve sent although muted
)

// Stages as the record spells them: the commonest in one letter.
var (
	stageCodes = map[string]string{api.StageReceived: "r", api.StageRouted: "o", api.StageNotify: "n", api.StageAlready: "a"}
	stageNames = map[string]string{"r": api.StageReceived, "o": api.StageRouted, "n": api.StageNotify, "a": api.StageAlready}
)

// codeShared is the stage of a reference event: its I names the shared
// block holding the events, all of its time T.
const codeShared = "@"

// sharedBlock is the events one plan noted alike for several alerts of
// an entry (their times are the reference's), with the group key and the
// labels the alerts have in common.
type sharedBlock struct {
	K string            `json:"k,omitempty"`
	L map[string]string `json:"l,omitempty"`
	V []event           `json:"v"`
}

func sharedKey(id string) string { return "obs:" + id }

// blockLife is how long a shared block lives, given the longest life a
// plan gives a record: twice that, since a record the block's plan wrote
// may be written once more without an entry (when it stops flapping, at
// most that life later) and then live as long again, still referring to
// the block for its labels.
func blockLife(recordLife time.Duration) time.Duration { return 2 * recordLife }

// received notes an observation: its status in D, its entry (request) in
// I, and its Alertmanager in U when it is not the one of the previous
// observation kept.
func (r *alertRecord) received(at time.Time, status, entry, externalURL string) {
	last := ""
	for i := len(r.Events) - 1; i >= 0; i-- {
		e := r.Events[i]
		if e.S == codeShared {
			break // in a block, which may go first: say it again
		}
		if e.S == stageCodes[api.StageReceived] && e.U != "" {
			last = e.U
			break
		}
	}
	r.note(at, api.StageReceived, "", status, entry)
	if externalURL != last {
		r.Events[len(r.Events)-1].U = externalURL
	}
}

// routed notes the routes an observation matched, as path=receiver with
// the path's "route" prefix left out.
func (r *alertRecord) routed(at time.Time, routes []routing.MatchedRoute) {
	parts := make([]string, len(routes))
	for i, m := range routes {
		parts[i] = strings.TrimPrefix(m.Path, "route") + "=" + m.Receiver
	}
	r.note(at, api.StageRouted, "", strings.Join(parts, ";"), "")
}

// expand gives the events their stage, time, full detail and item: a
// notify without an item queued the entry of the observation before it.
// A reference is replaced by its block's events (blocks, by ID); one whose
// block is gone by a received event saying so.
func expand(evs []event, blocks map[string]*sharedBlock) []event {
	out := make([]event, 0, len(evs))
	entry, url := "", ""
	var at int64
	var shared []event  // the block being expanded
	afterBlock := false // a reference since the last received event
	for i := 0; i < len(evs) || len(shared) > 0; {
		var e event
		inBlock := len(shared) > 0
		if inBlock {
			e, shared = shared[0], shared[1:]
			e.T = at
		} else {
			e = evs[i]
			i++
			if e.S == codeShared {
				at, afterBlock = e.T, true
				if b := blocks[e.I]; b != nil {
					shared = b.V
					continue
				}
				out = append(out, event{T: e.T, S: api.StageReceived, D: "an observation decided alike for several alerts of one request; what was decided is no longer kept"})
				continue
			}
		}
		if name, ok := stageNames[e.S]; ok {
			e.S = name
		}
		if e.T == 0 {
			e.T = at // the time of the event before
		}
		at = e.T
		switch e.S {
		case api.StageRouted:
			parts := strings.Split(e.D, ";")
			for j, p := range parts {
				path, receiver, _ := strings.Cut(p, "=")
				parts[j] = "route" + path + " -> " + receiver
			}
			e.D = strings.Join(parts, "; ")
		case api.StageReceived:
			entry = e.I
			// A received event says its Alertmanager when it differs from
			// the one before, and always in a block or after one.
			if e.U != "" || inBlock || afterBlock {
				url = e.U
			}
			afterBlock = afterBlock && inBlock
			from := url
			if from == "" {
				from = "an Alertmanager without an external URL"
			}
			e.D, e.I = fmt.Sprintf("%s, in request %s from %s", e.D, entry, from), ""
		case api.StageNotify:
			if e.I == "" && entry != "" {
				e.I = "e:" + entry + ":" + e.G
			}
			switch {
			case strings.HasPrefix(e.D, codeBypass):
				e.D = "bypass_mute_matchers: never muted by " + strings.TrimPrefix(e.D, codeBypass)
			case strings.HasPrefix(e.D, codeMutedResolve):
				e.D = "a resolve: sent although muted by " + strings.TrimPrefix(e.D, codeMutedResolve)
			}
		case api.StageDeferred:
			if e.W != 0 {
				e.D = fmt.Sprintf("muted by %s until %s: in its digest then", e.D, time.UnixMilli(e.W).UTC().Format(time.RFC3339))
			}
		case api.StageAlready:
			if e.D == "" {
				e.D = "this observation, or a newer one, went to it already"
			}
		}
		out = append(out, e)
	}
	return out
}

// note adds an event, letting the oldest go past maxEvents. An event of
// the same millisecond as the one before keeps no time of its own (T 0):
// a decision writes several at once.
func (r *alertRecord) note(at time.Time, stage, target, detail, item string) {
	if c, ok := stageCodes[stage]; ok {
		stage = c
	}
	t := at.UnixMilli()
	if last := r.lastTime(); last == t {
		t = 0
	}
	r.Events = append(r.Events, event{T: t, S: stage, G: target, D: detail, I: item})
	r.fresh++
	if over := len(r.Events) - maxEvents; over > 0 {
		first := r.timeAt(over) // the new first event gets its time back
		r.Events = append(r.Events[:0:0], r.Events[over:]...)
		r.Events[0].T = first
		r.Dropped += over
		r.fresh = min(r.fresh, len(r.Events))
	}
}

// freshShared is the events the plan noted, as a block holds them (no
// time; every received event saying its Alertmanager, url), when they are
// all of the instant at (unix ms); ok is false otherwise.
func (r *alertRecord) freshShared(at int64, url string) (v []event, ok bool) {
	if r.fresh == 0 {
		return nil, false
	}
	first := len(r.Events) - r.fresh
	if r.timeAt(first) != at {
		return nil, false
	}
	v = make([]event, r.fresh)
	for i, e := range r.Events[first:] {
		if i > 0 && e.T != 0 && e.T != at {
			return nil, false
		}
		e.T = 0
		if e.S == stageCodes[api.StageReceived] {
			e.U = url
		}
		v[i] = e
	}
	return v, true
}

// share writes the events the plan noted alike for two alerts or more of
// its entry once, as a block of its own (in the plan's shard, with the
// records), each record keeping a reference to it. The blocks' IDs are
// the entry's and a number: an entry's decision is committed once, so an
// ID is never given to two blocks that both reach the store.
func (pl *plan) share(recordLife time.Duration) {
	fresh := 0
	for _, r := range pl.records {
		if r.fresh > 0 {
			fresh++
		}
	}
	if pl.entry == "" || fresh < 2 {
		return // nothing to share (a single-alert request, a check)
	}
	at := pl.now.UnixMilli()
	type kin struct {
		b    sharedBlock
		recs []*alertRecord
	}
	var kins []*kin
	bySig := map[string]*kin{}
	for _, k := range pl.order {
		r := pl.records[k]
		if r == nil {
			continue
		}
		v, ok := r.freshShared(at, pl.url)
		if !ok {
			continue
		}
		sig, _ := json.Marshal(sharedBlock{K: r.GroupKey, V: v})
		g := bySig[string(sig)]
		if g == nil {
			g = &kin{b: sharedBlock{K: r.GroupKey, V: v}}
			bySig[string(sig)] = g
			kins = append(kins, g)
		}
		g.recs = append(g.recs, r)
	}
	n := 0
	for _, g := range kins {
		if len(g.recs) < 2 {
			continue
		}
		common := maps.Clone(g.recs[0].Labels)
		for _, r := range g.recs[1:] {
			for name, v := range common {
				if w, ok := r.Labels[name]; !ok || w != v {
					delete(common, name)
				}
			}
		}
		g.b.L = common
		id := fmt.Sprintf("%s.%d", pl.entry, n)
		n++
		b, _ := json.Marshal(&g.b)
		pl.txn.Set = append(pl.txn.Set, store.Value{Key: sharedKey(id), Value: b, TTL: blockLife(recordLife)})
		for _, r := range g.recs {
			r.Events = append(r.Events[:len(r.Events)-r.fresh], event{T: at, S: codeShared, I: id})
			own := map[string]string{}
			for name, v := range r.Labels {
				if _, ok := common[name]; !ok {
					own[name] = v
				}
			}
			r.Labels, r.GroupKey, r.SharedLabels, r.fresh = own, "", true, 0
		}
	}
}

// blocks reads the shared blocks recs (nil ones skipped) refer to, by ID;
// a block gone is absent.
func (p *Pipeline) blocks(ctx context.Context, shard int, recs ...*alertRecord) (map[string]*sharedBlock, error) {
	out := map[string]*sharedBlock{}
	seen := map[string]bool{}
	var ids []string
	for _, r := range recs {
		if r == nil {
			continue
		}
		for _, e := range r.Events {
			if e.S == codeShared && !seen[e.I] {
				seen[e.I] = true
				ids = append(ids, e.I)
			}
		}
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = sharedKey(id)
		}
		vals, err := p.o.Store.Get(ctx, shard, keys...)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			b := &sharedBlock{}
			if v != nil && json.Unmarshal(v, b) == nil {
				out[chunk[i]] = b
			}
		}
	}
	return out, nil
}

// sharedWith is the block holding the rest of the alert's labels and its
// group key; nil when the record holds them (or the block is gone).
func (r *alertRecord) sharedWith(blocks map[string]*sharedBlock) *sharedBlock {
	if !r.SharedLabels {
		return nil
	}
	for i := len(r.Events) - 1; i >= 0; i-- {
		if e := r.Events[i]; e.S == codeShared {
			return blocks[e.I]
		}
	}
	return nil
}

// labels are the alert's labels: its own and those its block holds.
func (r *alertRecord) labels(blocks map[string]*sharedBlock) map[string]string {
	b := r.sharedWith(blocks)
	if b == nil {
		return r.Labels
	}
	all := maps.Clone(b.L)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, r.Labels)
	return all
}

// groupKey is the alert's last Alertmanager group.
func (r *alertRecord) groupKey(blocks map[string]*sharedBlock) string {
	if b := r.sharedWith(blocks); b != nil {
		return b.K
	}
	return r.GroupKey
}

// lastTime is the time of the latest event, 0 when none.
func (r *alertRecord) lastTime() int64 { return r.timeAt(len(r.Events) - 1) }

// timeAt is event i's time: its own, or that of the latest before it that
// has one.
func (r *alertRecord) timeAt(i int) int64 {
	for ; i >= 0; i-- {
		if t := r.Events[i].T; t != 0 {
			return t
		}
	}
	return 0
}

// deliveryKey is the record of a target's deliveries settled on day's
// UTC date.
func deliveryKey(target string, day time.Time) string {
	return "dl:" + target + ":" + day.UTC().Format("20060102")
}

// deliveryDays bounds how many days after it was queued (or due, for a
// digest) an item's delivery is looked for.
const deliveryDays = 3

// deliveryLine is one line of a delivery record.
type deliveryLine struct {
	T       int64  `json:"t"`
	Result  string `json:"r"` // api.StageDelivered, StageAttempt, StageFailed
	Attempt int    `json:"a,omitempty"`
	Err     string `json:"e,omitempty"`
	Next    int64  `json:"n,omitempty"` // the retry's due time, unix ms
	Rest    string `json:"rest,omitempty"`
	// Messages are the keys of the messages (notifiers.Notification.Key)
	// that carried the item's alerts, of a delivery.
	Messages []string `json:"m,omitempty"`
}

// carried is what a batch's settle tells its items' delivery records.
type carried struct {
	in   map[string][]string // item ID: the keys of the messages sent with its alerts
	rest map[string]string   // item ID: the item its unsent alerts were put back as
}

func (l deliveryLine) encode() []byte {
	b, _ := json.Marshal(l)
	return append(b, '\n')
}

// deliveryNotes are the settlement's lines for each item it settles.
func (p *Pipeline) deliveryNotes(st *store.Settlement, target string, retryErr error, c *carried) {
	// The day's record lives history_retention past the day's end.
	ttl := max(p.o.RecordTTL, time.Hour) + 24*time.Hour
	key := deliveryKey(target, st.Now)
	now := st.Now.UnixMilli()
	add := func(id string, earlier bool, l deliveryLine) {
		l.T = now
		st.Notes = append(st.Notes, store.Note{Key: key, Field: id, Line: l.encode(), Append: earlier, TTL: ttl})
	}
	for _, it := range st.Done {
		l := deliveryLine{Result: api.StageDelivered, Attempt: it.Attempts + 1, Messages: c.in[it.ID]}
		if rest, ok := c.rest[it.ID]; ok {
			l.Rest = rest
		}
		add(it.ID, it.Attempts > 0 || it.LastErr == store.Revived, l)
	}
	for _, it := range st.Retry {
		if retryErr == nil {
			continue // not sent yet (a rate limit let part of its batch go): no attempt
		}
		add(it.ID, it.Attempts > 1, deliveryLine{Result: api.StageAttempt, Attempt: it.Attempts, Err: notifiers.Cut(it.LastErr, maxErrLen), Next: it.Due.UnixMilli()})
	}
	for _, it := range st.Dead {
		if it.Receipt == "" {
			continue // a part of a batch: its item's line says so
		}
		add(it.ID, it.Attempts > 1, deliveryLine{Result: api.StageFailed, Attempt: it.Attempts, Err: notifiers.Cut(it.LastErr, maxErrLen)})
	}
}

// maxErrLen bounds an attempt's error in a delivery record.
const maxErrLen = 300

// Timeline is what the pipeline knows of one alert: its record's events
// and, after each queued item, its delivery. The record is looked for in
// every shard (a fingerprint does not say which); ErrNoAlert when none
// holds it.
func (p *Pipeline) Timeline(ctx context.Context, fp string) (api.Timeline, error) {
	var rec *alertRecord
	shard := 0
	for ; shard < p.o.Store.Shards(); shard++ {
		vals, err := p.o.Store.Get(ctx, shard, alertKey(fp))
		if err != nil {
			return api.Timeline{}, err
		}
		if vals[0] != nil {
			rec = decodeRecord(fp, vals[0])
			break
		}
	}
	if rec == nil {
		return api.Timeline{}, api.ErrNoAlert
	}
	blocks, err := p.blocks(ctx, shard, rec)
	if err != nil {
		return api.Timeline{}, err
	}
	tl := api.Timeline{Fingerprint: fp, Labels: rec.labels(blocks), Status: rec.Status, StartsAt: time.UnixMilli(rec.StartsAt).UTC(), Dropped: rec.Dropped,
		GroupKey: rec.groupKey(blocks), Events: []api.TimelineEvent{}}
	if rec.EndsAt > 0 {
		tl.EndsAt = time.UnixMilli(rec.EndsAt).UTC()
	}
	for _, e := range expand(rec.Events, blocks) {
		tl.Events = append(tl.Events, api.TimelineEvent{At: time.UnixMilli(e.T).UTC(), Stage: e.S, Target: e.G, Detail: e.D, Item: e.I})
		if e.I == "" || e.G == "" {
			continue
		}
		from := time.UnixMilli(e.T)
		if e.W != 0 {
			from = time.UnixMilli(e.W) // a digest goes when the mute ends
		}
		lines, err := p.deliveries(ctx, e.G, e.I, from)
		if err != nil {
			return api.Timeline{}, err
		}
		tl.Events = append(tl.Events, lines...)
	}
	dups, err := p.duplicates(ctx, shard, fp, rec)
	if err != nil {
		return api.Timeline{}, err
	}
	tl.Events = append(tl.Events, dups...)
	sort.SliceStable(tl.Events, func(i, j int) bool { return tl.Events[i].At.Before(tl.Events[j].At) })
	return tl, nil
}

// duplicates are the observations of the alert the webhook dropped as
// duplicates (the store notes the latest of each day), from the day of its
// oldest event kept.
func (p *Pipeline) duplicates(ctx context.Context, shard int, fp string, rec *alertRecord) ([]api.TimelineEvent, error) {
	now := p.o.Now()
	from := now
	if len(rec.Events) > 0 {
		from = time.UnixMilli(rec.Events[0].T)
	}
	// A week at most: the records live three days.
	from = maxTime(from, now.Add(-7*24*time.Hour))
	var out []api.TimelineEvent
	for day := from; !day.After(now.Add(24 * time.Hour)); day = day.Add(24 * time.Hour) {
		vals, err := p.o.Store.Fields(ctx, shard, store.DuplicatesKey(day), fp)
		if err != nil {
			return nil, err
		}
		var d store.DuplicateRecord
		if vals[0] == nil || json.Unmarshal(vals[0], &d) != nil {
			continue
		}
		from := d.ExternalURL
		if from == "" {
			from = "an Alertmanager without an external URL"
		}
		out = append(out, api.TimelineEvent{At: time.UnixMilli(d.At).UTC(), Stage: api.StageReceived,
			Detail: fmt.Sprintf("%s again, in request %s from %s: a duplicate, dropped (the latest of that day)", d.Status, d.Request, from)})
	}
	return out, nil
}

// deliveries reads what the delivery records of the days from from on say
// of an item, following a partial delivery's rest (a few hops at most).
func (p *Pipeline) deliveries(ctx context.Context, target, item string, from time.Time) ([]api.TimelineEvent, error) {
	var out []api.TimelineEvent
	now := p.o.Now()
	for hop := 0; hop < 4 && item != ""; hop++ {
		var all []byte
		for d := 0; d < deliveryDays; d++ {
			day := from.Add(time.Duration(d) * 24 * time.Hour)
			if day.After(now) && d > 0 {
				break
			}
			bs, err := p.o.Store.Fields(ctx, p.targetShard(target), deliveryKey(target, day), item)
			if err != nil {
				return nil, err
			}
			all = append(all, bs[0]...)
		}
		next := ""
		for _, raw := range bytes.Split(all, []byte("\n")) {
			var l deliveryLine
			if len(raw) == 0 || json.Unmarshal(raw, &l) != nil {
				continue
			}
			out = append(out, api.TimelineEvent{At: time.UnixMilli(l.T).UTC(), Stage: l.Result, Target: target, Detail: l.detail(item), Item: item, Messages: l.Messages})
			if l.Rest != "" {
				next = l.Rest
			}
		}
		item = next
	}
	return out, nil
}

func (l deliveryLine) detail(item string) string {
	switch l.Result {
	case api.StageDelivered:
		s := fmt.Sprintf("delivered at attempt %d", l.Attempt)
		switch {
		case strings.HasPrefix(item, "digest:"):
			s = fmt.Sprintf("delivered in the digest at attempt %d", l.Attempt)
		case strings.HasPrefix(item, "hold:"):
			s = fmt.Sprintf("the page held for remediation delivered at attempt %d", l.Attempt)
		}
		if l.Rest != "" {
			s += "; part of it went, the rest is retried"
		}
		return s
	case api.StageAttempt:
		return fmt.Sprintf("attempt %d failed: %s; retried at %s", l.Attempt, l.Err, time.UnixMilli(l.Next).UTC().Format(time.RFC3339))
	}
	if e := strings.TrimSpace(l.Err); strings.HasPrefix(e, "failed for good") || strings.HasPrefix(e, "gave up") {
		return e // the dispatcher's own words say how many attempts
	}
	return fmt.Sprintf("failed for good after %d attempts: %s", l.Attempt, strings.TrimSpace(l.Err))
}

// maxListed bounds the records a listing reads, whatever its limit.
const maxListed = 10000

// Alerts lists the alerts the store holds a record of (firing, or resolved
// within history_retention), firing first, newest first, each with its
// state now and the last thing that happened on each target.
func (p *Pipeline) Alerts(ctx context.Context, q api.AlertQuery) (api.Alerts, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var ms []*labels.Matcher
	for _, f := range q.Filter {
		m, err := labels.ParseMatchers(f)
		if err != nil {
			return api.Alerts{}, fmt.Errorf("filter %q: %w", f, err)
		}
		ms = append(ms, m...)
	}
	now := p.o.Now()
	out := api.Alerts{Alerts: []api.AlertSummary{}}
	type pending struct {
		sum   *api.AlertSummary
		items map[string]string // target → its last queued item
	}
	var found []pending
	for shard := 0; shard < p.o.Store.Shards(); shard++ {
		keys, more, err := p.o.Store.Keys(ctx, shard, "alert:", maxListed)
		if err != nil {
			return api.Alerts{}, err
		}
		out.Truncated = out.Truncated || more
		for i := 0; i < len(keys); i += 500 {
			chunk := keys[i:min(i+500, len(keys))]
			vals, err := p.o.Store.Get(ctx, shard, chunk...)
			if err != nil {
				return api.Alerts{}, err
			}
			recs := make([]*alertRecord, len(vals))
			for j, b := range vals {
				if b != nil {
					recs[j] = decodeRecord(strings.TrimPrefix(chunk[j], "alert:"), b)
				}
			}
			blocks, err := p.blocks(ctx, shard, recs...)
			if err != nil {
				return api.Alerts{}, err
			}
			for j, rec := range recs {
				if rec == nil {
					continue
				}
				fp := strings.TrimPrefix(chunk[j], "alert:")
				if sum, items, ok := summarize(fp, rec, blocks, now, ms, q); ok {
					found = append(found, pending{&sum, items})
				}
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].sum, found[j].sum
		if (a.Status == alert.StatusFiring) != (b.Status == alert.StatusFiring) {
			return a.Status == alert.StatusFiring
		}
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.After(b.StartsAt)
		}
		return a.Fingerprint < b.Fingerprint
	})
	if len(found) > q.Limit {
		found, out.Truncated = found[:q.Limit], true
	}
	// The last delivery of each target, from its records of today and
	// the day before: one read per target and day.
	type ref struct {
		sum  *api.AlertSummary
		item string
	}
	byTarget := map[string][]ref{}
	for _, f := range found {
		for target, item := range f.items {
			byTarget[target] = append(byTarget[target], ref{f.sum, item})
		}
	}
	for target, refs := range byTarget {
		items := make([]string, len(refs))
		for i, r := range refs {
			items[i] = r.item
		}
		for _, day := range []time.Time{now.Add(-24 * time.Hour), now} {
			bs, err := p.o.Store.Fields(ctx, p.targetShard(target), deliveryKey(target, day), items...)
			if err != nil {
				return api.Alerts{}, err
			}
			for i, b := range bs {
				lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
				var l deliveryLine
				if len(b) > 0 && json.Unmarshal(lines[len(lines)-1], &l) == nil {
					refs[i].sum.LastDelivery[target] = l.Result
				}
			}
		}
	}
	for _, f := range found {
		out.Alerts = append(out.Alerts, *f.sum)
	}
	return out, nil
}

// summarize is an alert's state now from its record, and the last item
// queued for each target; ok is false when q does not select it.
func summarize(fp string, rec *alertRecord, blocks map[string]*sharedBlock, now time.Time, ms []*labels.Matcher, q api.AlertQuery) (api.AlertSummary, map[string]string, bool) {
	ls := rec.labels(blocks)
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return api.AlertSummary{}, nil, false
		}
	}
	sum := api.AlertSummary{Fingerprint: fp, Labels: ls, Status: rec.Status, StartsAt: time.UnixMilli(rec.StartsAt).UTC(),
		SeenAt: time.UnixMilli(rec.SeenAt).UTC(), Flapping: rec.Flap != nil && rec.Flap.State.Flapping, LastDelivery: map[string]string{}}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	if rec.EndsAt > 0 {
		sum.EndsAt = time.UnixMilli(rec.EndsAt).UTC()
	}
	items := map[string]string{}
	receivers := map[string]bool{}
	for _, e := range expand(rec.Events, blocks) {
		if e.G == "" {
			continue
		}
		receivers[strings.SplitN(e.G, "/", 2)[0]] = true
		if e.S == api.StageAlready {
			continue // nothing new went: the delivery before is the last
		}
		sum.LastDelivery[e.G] = e.S
		if e.I != "" {
			items[e.G] = e.I
		} else {
			delete(items, e.G)
		}
		if e.S == api.StageDeferred {
			if until := time.UnixMilli(e.W).UTC(); e.W != 0 && until.After(now) {
				if sum.MutedUntil == nil {
					sum.MutedUntil = map[string]time.Time{}
				}
				sum.MutedUntil[e.G] = until
			}
		}
	}
	for target, until := range rec.Holds {
		if t := time.UnixMilli(until).UTC(); t.After(now) {
			if sum.HeldUntil == nil {
				sum.HeldUntil = map[string]time.Time{}
			}
			sum.HeldUntil[target] = t
		}
	}
	for r := range receivers {
		sum.Receivers = append(sum.Receivers, r)
	}
	sort.Strings(sum.Receivers)
	switch q.State {
	case "", alert.StatusFiring, alert.StatusResolved:
		if q.State != "" && sum.Status != q.State {
			return sum, nil, false
		}
	case "flapping":
		if !sum.Flapping {
			return sum, nil, false
		}
	case "muted":
		if len(sum.MutedUntil) == 0 {
			return sum, nil, false
		}
	case "held":
		if len(sum.HeldUntil) == 0 {
			return sum, nil, false
		}
	}
	if q.Receiver != "" && !receivers[q.Receiver] {
		return sum, nil, false
	}
	return sum, items, true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
