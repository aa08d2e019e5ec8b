// Package store is the contract between alertmedic's state backends
// (store/memory, store/redis) and the packages that use them: the types
// both sides speak, the errors, and the list of every key a backend holds.
// The behaviour is pinned down by store/storetest, which both backends pass.
//
// A backend holds five kinds of state, each bounded by a cap or a TTL (most
// by both):
//
//   - the queue of accepted webhook entries (Enqueue, Dequeue, Ack), with
//     the dedup keys of the observations it has seen;
//   - values by key ("state"), read with Get or State and written atomically
//     with UpdateState or Commit;
//   - leased queues (Claim, Settle; Put, Collect and Move in a Commit):
//     the outbox of notifications, the remediation queue, the verification
//     waits (verify: an item per action that ran, due when its window
//     ends), digests. Due work is found through an index ordered by due
//     time, never by reading every item;
//   - indexes (Mark, Marked, Unmark): sorted sets of names;
//   - rate limits, one per group of a leased queue (a target), decided with
//     GCRA inside Claim so that every replica shares one limit.
//
// Keys. Every key of a backend is namespaced by its shard; with Redis the
// namespace is a hash tag ("{prefix}" for shard 0 of a one-shard store), so
// every key one script touches is in one Cluster slot. Within a shard:
//
//	queue                 the stream of webhook entries (Redis Stream, consumer group)
//	dedup:<obs key>       one per observation seen (alert.ObservationKey), TTL the dedup window
//	state:<key>           a value; the users' key families are:
//	    alert:<fp>          pipeline: an alert's record (last observation, per-target
//	                        watermark, flap state when it flaps on its own, labels, the
//	                        events of its timeline, holds), TTL history retention
//	    obs:<entry>.<n>     pipeline: the timeline events of one request decided alike for
//	                        several of its alerts, their group key and common labels (the
//	                        records refer to it), TTL twice the records'
//	    flap:<key>          pipeline: flap state of alerts grouped by flapping.by
//	    rem:guard:<r>:<fp>  remediation: lock and cooldowns of rule r for one alert
//	    rem:budget:<r>      remediation: run times of rule r in the last hour
//	    rem:pause           remediation: the kill switch (set by the API or the breaker)
//	    rem:fleet           remediation: run times of every action, all rules and replicas,
//	                        within max_actions.per (the fleet-wide breaker)
//	    rem:audit:<id>      remediation: one audit record, TTL audit retention
//	    rem:proposal:<id>   remediation: a rule's proposal (approval), its answer, and
//	                        whether it was carried; TTL its timeout + 48h
//	    rem:verdict:<r>:<fp>:<ran>  remediation: the verdict on rule r's run at <ran>
//	                        (unix ns) for one alert, and its rollback's lock and end; TTL 48h
//	    ref:<kind>:<hash>   notifiers: what a group's later messages need of its first
//	                        (Slack channel and ts, email thread root), by integration,
//	                        target and group, TTL a day; ref:clicks:<hash>, a group's
//	                        audited clicks (oncall), TTL a week
//	    ref:click:<id>      the replay guard of one Slack click, TTL an hour
//	notes:<key>           a hash written by Settlement.Notes; the pipeline's:
//	    dl:<target>:<day>   what became of each outbox item of a target settled that UTC
//	                        day (one field per item, a line per attempt), TTL history
//	                        retention + a day, set when the hash is created
//	index:<name>          a sorted set: flapping (flap keys flapping), rem:audit (audit ids by time)
//	q:<queue>             a leased queue's items, scored by due time (a claimed item by its lease's end)
//	q:<queue>:dead        its dead letters, scored by when they died, capped
//	q:<queue>:p           the payloads of items that wait (rate limited, busy), by id
//	q:<queue>:c:<id>      the alerts collected by item id (a digest), capped
//	q:<queue>:o:<id>      the fingerprints collected past that cap
//	q:<queue>:c:<id>:<b>  and :o:<id>:<b>: what batch b took when it claimed the item
//	q:<queue>:c:<id>:out  the batch that has the item out, while it is out
//	rl:<group>            a group's GCRA state (its theoretical arrival time)
package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

// Leased queues.
const (
	// QueueOutbox holds notifications until they are delivered; a group is
	// a target (its Key), a class the target's integration type.
	QueueOutbox = "outbox"
	// QueueRemedy holds the alert observations that a remediation rule
	// matches, until the remediation ran.
	QueueRemedy = "remedy"
	// QueueVerify holds, in an alert's shard, the wait for the outcome of
	// an action that ran (remediation.Verification): due at the end of the
	// rule's verify.within, when the alert's record decides it.
	QueueVerify = "verify"
	// QueueForward holds, in an alert's shard, outbox work bound for a
	// target in another shard, until it is put there (see Forward).
	QueueForward = "forward"
)

// Forward is outbox work for a target in another shard: committed with
// the alert's records in the alert's shard, then put in the target's by
// the pipeline's forwarder, once (a marker in the target's shard, kept
// MarkerTTL, says it was).
type Forward struct {
	Shard   int      `json:"shard"`
	Put     *Put     `json:"put,omitempty"`
	Collect *Collect `json:"collect,omitempty"`
}

// Value is a key with a value, as read by Get and written by Commit. A nil
// Value is an absent key (to Expect) or a delete (to Set).
type Value struct {
	Key   string
	Value []byte
	// TTL is how long a written value lives; required for a non-nil Value.
	TTL time.Duration
	// Pin says the value is still needed (it holds notifications a
	// flapping alert held back): a backend with a cap on values never
	// evicts it, and refuses new work instead when pinned values reach it.
	Pin bool
}

// Item is one piece of work in a leased queue.
type Item struct {
	// ID is unique within the queue. Putting an item whose ID (with the
	// same content) is already there changes nothing.
	ID string
	// Group: the due items of one group are claimed together, as one batch,
	// within the group's rate limit. Empty: the item is its own group.
	Group string
	// Class picks the limits in ClaimOptions.Classes.
	Class string
	// Alerts is how many alerts the payload carries: a class's MaxAlerts
	// bounds a batch by it.
	Alerts int
	// Due is when the item may be claimed.
	Due time.Time
	// Since is when the item first became due; a retry keeps it, so that a
	// deadline can count from it. Zero: Due.
	Since time.Time
	// Attempts and LastErr are the caller's account of failed tries.
	Attempts int
	LastErr  string
	Payload  []byte

	// Collects marks an item that collects fields (see Collect); it is
	// set by Collect.
	Collects bool

	// Batch is set by Claim: the batch the item was claimed in. A batch
	// whose lease lapsed (its claimer died) is claimed again as the same
	// batch, so that what it sends is the same message again.
	Batch string
	// Collected is, for an item that collects, what it had collected when
	// it was claimed: field → value. Claiming detaches it, so that what is
	// collected meanwhile waits for the next claim; a retry puts it back.
	Collected map[string][]byte
	// Overflow is how many distinct fields it had collected past its cap.
	Overflow int
	// Receipt names the item as claimed; Settle takes it back. Opaque.
	Receipt string
}

// Batch is the due items of one group, claimed together under one lease.
type Batch struct {
	ID    string
	Group string
	Items []Item
	// Reclaimed: an earlier claim of this batch let its lease lapse.
	Reclaimed bool
}

// RateLimit is the rate of each group of a class (a target of an
// integration type): Burst batches at once, then PerSecond on average
// (GCRA), shared by every replica through the store. PerSecond 0: no limit.
// It is the configuration's delivery.rate_limits as written.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// ClassLimit bounds the batches of one class.
type ClassLimit struct {
	RateLimit
	// MaxAlerts bounds the alerts of one batch (at least one item is
	// always taken); 0: no bound.
	MaxAlerts int
}

// ClaimOptions say what one Claim takes.
type ClaimOptions struct {
	Now time.Time
	// Lease is how long a claimed batch is the claimer's: after it, the
	// batch is due again and another claimer takes it over.
	Lease time.Duration
	// Max bounds the items one call takes, in all batches.
	Max     int
	Classes map[string]ClassLimit
	// Held are groups the caller holds back until a time: those a rate
	// limit held (from an earlier Claimed.Held), whose due items then wait
	// without the limit being asked again, and those it is busy sending
	// to. They come back in Claimed.Held.
	Held map[string]time.Time
}

// Claimed is what one Claim took.
type Claimed struct {
	Batches []Batch
	// Next is the earliest due time left in the queue after the claim
	// (leases included); zero when the queue is empty.
	Next time.Time
	// Limited counts the groups held back by their rate limit, and Held
	// says until when each of them is: a claimer may leave such a group
	// alone until then (the limit only ever moves later).
	Limited int
	Held    map[string]time.Time
}

// Settlement finishes claimed items, each named by its Receipt.
type Settlement struct {
	// Done items are removed, with what a collecting item was claimed
	// with; if it collected more meanwhile, it is due again at once.
	Done []Item
	// Retry items are put back with their Due, Attempts, LastErr, Payload
	// and Alerts as given, no longer claimed; a collecting item gets back
	// what it was claimed with, under what it collected since.
	Retry []Item
	// Dead items are removed and kept as dead letters (LastErr says why),
	// scored by Now; past the backend's cap the oldest go. A Dead item
	// without a Receipt is a dead letter of its own (a part of a batch
	// that failed for good while the rest went).
	Dead []Item
	Now  time.Time
	// Notes write a line each into a field of a record (the deliveries of
	// a target's day, one field per item, read with Field): whatever became
	// of the items. A settle's notes of one record cost one write, however
	// many: the record is a hash.
	Notes []Note
}

// Duplicates. An observation Enqueue drops as a duplicate (seen within the
// dedup window) is noted in the notes record of the day, DuplicatesKey:
// field the alert's fingerprint, the latest duplicate's DuplicateLine, so
// that the alert's timeline can say it came again, and from where. The
// record lives DuplicatesTTL past its creation, plus the dedup window.
const DuplicatesTTL = 72 * time.Hour

// DuplicatesKey is the notes record of the duplicates dropped on t's day.
func DuplicatesKey(t time.Time) string { return "rx:" + t.UTC().Format("20060102") }

// DuplicateRecord is what a DuplicateLine says.
type DuplicateRecord struct {
	At          int64  `json:"t"` // unix ms
	Request     string `json:"r"` // the entry's ID
	ExternalURL string `json:"u,omitempty"`
	Status      string `json:"s"`
}

// DuplicateLine notes one duplicate observation of a, in entry e, at t.
func DuplicateLine(e *alert.Entry, a template.Alert, t time.Time) []byte {
	d := DuplicateRecord{At: t.UnixMilli(), Request: e.ID, Status: a.Status}
	if e.Message != nil && e.Message.Data != nil {
		d.ExternalURL = e.Message.ExternalURL
	}
	b, _ := json.Marshal(d)
	return b
}

// Revived is the LastErr of a dead letter taken back into its queue (a
// person sent it again): the item says where it comes from.
const Revived = "sent again from the dead letters"

// Note is one line for field Field of the record Key (see
// Settlement.Notes): the field's value, or, with Append, added after what
// it holds. The record gets TTL when it is created; later notes do not
// extend it, so a record of one day's deliveries ends its TTL after it.
type Note struct {
	Key, Field string
	Line       []byte
	Append     bool
	TTL        time.Duration
}

// Settled says what a Settle did besides what it was asked.
type Settled struct {
	// Evicted counts dead letters dropped at the cap.
	Evicted int
}

// Dead is a dead letter: an item that failed for good, and when.
type Dead struct {
	Item Item
	At   time.Time
}

// DeadPage selects a queue's dead letters across every shard of a
// backend, newest first (dead letters of one millisecond: shard by shard,
// in each shard's own order). The zero Before starts at the newest; a
// page's Next continues where it ended, unaffected by dead letters added
// since (they are newer) and by the oldest evicted at the cap (they are
// past it).
type DeadPage struct {
	// Before, when set, starts the page at the dead letters that died at or
	// before it (to the millisecond)...
	Before time.Time
	// ...past, in each shard i, the first Skip[i] of those that died exactly
	// then, which the pages before showed (a shard past the end of Skip:
	// none).
	Skip  []int
	Limit int
}

// SkipIn is Skip[shard], 0 past the end of Skip.
func (p DeadPage) SkipIn(shard int) int {
	if shard < 0 || shard >= len(p.Skip) {
		return 0
	}
	return p.Skip[shard]
}

// InShards is ErrBadCursor when p counts skips in a shard that a backend
// of n shards does not have (a cursor made while there were more).
func (p DeadPage) InShards(n int) error {
	if len(p.Skip) > n {
		return ErrBadCursor
	}
	return nil
}

// Cursor is the page as an opaque token for an API's next_cursor.
func (p DeadPage) Cursor() string {
	b := append(strconv.AppendInt(nil, p.Before.UnixMilli(), 10), '.')
	for i, n := range p.Skip {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ShardOf is the shard of n that key (an alert's shard key, a target's
// key) belongs to: FNV-1a, so that every replica and every process picks
// the same.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// ErrBadCursor is a cursor that Cursor did not make (alert.ErrBadCursor:
// the receiver, which imports only alert, answers 400 for it).
var ErrBadCursor = alert.ErrBadCursor

// maxCursor bounds a decoded cursor: a skip for each of a thousand
// shards.
const maxCursor = 8 << 10

// ParseDeadCursor reads a token Cursor made, "" as the first page; limit
// is the page's size.
func ParseDeadCursor(cursor string, limit int) (DeadPage, error) {
	if cursor == "" {
		return DeadPage{Limit: limit}, nil
	}
	bad := ErrBadCursor
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) > maxCursor {
		return DeadPage{}, bad
	}
	ms, skips, ok := strings.Cut(string(b), ".")
	if !ok {
		return DeadPage{}, bad
	}
	at, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || at <= 0 {
		return DeadPage{}, bad
	}
	p := DeadPage{Before: time.UnixMilli(at), Limit: limit}
	if skips == "" {
		return p, nil
	}
	for f := range strings.SplitSeq(skips, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return DeadPage{}, bad
		}
		p.Skip = append(p.Skip, n)
	}
	return p, nil
}

// DeadList is one page of dead letters.
type DeadList struct {
	Dead []Dead
	// Next selects the page after this one; nil when this one is the last.
	Next *DeadPage
	// Total counts every dead letter kept, in every shard.
	Total int
}

// MergeDead makes the page that page selects out of what each shard of a
// backend holds of it: got[i] is shard i's, newest first, the dead letters
// page selects there (at or before Before, past SkipIn(i)), up to
// page.Limit+1 of them. It returns at most page.Limit of them, newest
// first across the shards, and the page after them (nil when there is
// none). A page of Limit ≤ 0 lists none.
func MergeDead(page DeadPage, got [][]Dead) ([]Dead, *DeadPage) {
	if page.Limit <= 0 {
		return nil, nil
	}
	at := make([]int, len(got))
	var out []Dead
	var from []int // the shard of each of out
	for {
		best := -1
		for i, g := range got {
			if at[i] < len(g) && (best < 0 || g[at[i]].At.UnixMilli() > got[best][at[best]].At.UnixMilli()) {
				best = i
			}
		}
		if best < 0 {
			return out, nil
		}
		if len(out) == page.Limit {
			break
		}
		out, from = append(out, got[best][at[best]]), append(from, best)
		at[best]++
	}
	// More to come: the next page starts at the last one's millisecond,
	// past those of it this page showed, counted shard by shard, and past
	// those the pages before showed when that is Before's millisecond.
	last := out[len(out)-1].At.UnixMilli()
	skip := make([]int, len(got))
	for j := len(out) - 1; j >= 0 && out[j].At.UnixMilli() == last; j-- {
		skip[from[j]]++
	}
	if !page.Before.IsZero() && page.Before.UnixMilli() == last {
		for i := range skip {
			skip[i] += page.SkipIn(i)
		}
	}
	for len(skip) > 0 && skip[len(skip)-1] == 0 {
		skip = skip[:len(skip)-1]
	}
	return out, &DeadPage{Before: time.UnixMilli(last), Skip: skip, Limit: page.Limit}
}

// Put adds an item to a leased queue, within a Commit.
type Put struct {
	Queue string
	Item  Item
}

// Collect adds fields to a collecting item within a Commit: an item whose
// payload is fixed (Item, put if absent) and whose alerts accumulate, one
// field per alert, the latest value of a field winning. At most Cap fields
// are kept; past it a field counts (Item.Overflow) unless it is Keep (a
// resolve: never dropped), which is always kept.
type Collect struct {
	Queue  string
	Item   Item
	Fields []Field
	Cap    int
	// TTL bounds the collection's life past its item's due time.
	TTL time.Duration
}

// Move changes an item that waits in a leased queue, within a Commit: its
// due time, or, with Drop, the item itself goes, with its payload and, for
// a collecting item, what it collected. The due index changes with it, so
// an item moved earlier is the next Claim's to take. An item that is out
// (claimed, under a lease or past a lapsed one: a Move never takes one
// back) or absent is left alone: too late, or already gone. A Move acts
// on what the Txn's Put and Collect left, in order; CommitMoves reports
// which moves applied.
//
// The due index is by time, not by ID: a backend may find the item with a
// pass over the queue (Redis scans its members inside the commit), so a
// Move is for now and then (a verdict), not for every item of a queue.
type Move struct {
	Queue string
	ID    string
	// Due is the item's new due time; zero: now. An item that was not yet
	// due (its Since is after now) first becomes due then: its Since
	// follows, so that a deadline counts from it, not from the time it was
	// moved away from.
	Due  time.Time
	Drop bool
	// Payload, when not nil, replaces the moved item's payload (a held
	// page released with what was tried).
	Payload []byte
}

// Field is one collected value.
type Field struct {
	Name  string
	Value []byte
	Keep  bool
}

// Mark is one index member.
type Mark struct {
	Index  string
	Member string
	Score  float64
}

// Txn is one atomic commit: either all of it happens or none.
type Txn struct {
	// Ack is the Receipt of a queue entry to acknowledge. When another
	// consumer acknowledged it already, nothing is written and Commit
	// returns ErrAcked.
	Ack string
	// Expect holds values as the caller read them; when any key holds
	// something else, nothing is written and Commit returns a *Conflict.
	Expect []Value
	Set    []Value
	Put    []Put
	// Collect adds to collecting items (digests).
	Collect []Collect
	// Move moves or drops waiting items by ID (see Move); CommitMoves
	// says which applied, Commit and CommitAll apply them all the same.
	Move   []Move
	Mark   []Mark
	Unmark []Mark
}

// ErrAcked: the entry a Txn would acknowledge was acknowledged already.
var ErrAcked = errors.New("entry already acknowledged")

// Conflict is a Txn refused because a value it expected had changed: the
// current values of the keys that differ, for the caller to decide again.
type Conflict struct {
	Current []Value
}

func (c *Conflict) Error() string {
	return fmt.Sprintf("commit: %d expected values changed meanwhile", len(c.Current))
}

// ErrFull: a bound on state that is still needed (queued entries, unsent
// notifications, waiting remediations) is reached. It wraps
// alert.ErrQueueFull, so the webhook answers 503 and Alertmanager retries;
// nothing still needed is evicted to make room.
var ErrFull = fmt.Errorf("store holds as much unfinished work as it may: %w", alert.ErrQueueFull)
