package remediation

// Approval: a rule with approval: {timeout: 15m, approvers: [...]} does not
// run its firing action; it proposes it. When every guard up to the lock
// passes (enabled, not paused, not flapping, not stale, cooldown, budget),
// the engine writes a proposal under rem:proposal:<id>, one per rule and
// alert episode, so that a repeat of the firing alert, or the same alert
// on another replica, proposes nothing twice. The proposal is audited
// (result proposed, reason approval) and announced to notify_receiver,
// with Approve and Deny buttons in Slack app mode; the pipeline puts a wait
// for it in the store, due at its timeout.
//
// Decide records an approver's answer (a Slack click by one of approvers,
// or POST /api/v1/remediations/{id}/approve|deny with admin credentials):
// once, the first answer stands. The pipeline then takes the wait at once
// and calls Carry, which runs an approved action, with every guard checked
// again at that moment, under a mark that makes it run at most once
// whichever replica carries it; a proposal still pending at its timeout is
// expired. Every step is audited with who did it.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// ApprovalConfig is a rule's approval block.
type ApprovalConfig struct {
	// Timeout is how long a proposal waits for an answer before it
	// expires; it must be below max_age, or the approved action would be
	// stale when it runs.
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
	// Approvers may approve or deny from Slack: user IDs (U0123ABCD) or
	// user names. The HTTP API's admin credentials may always.
	Approvers []string `yaml:"approvers" json:"approvers"`
}

// Results and reason of the approval steps' records.
const (
	ResultProposed = "proposed"
	ResultApproved = "approved"
	ResultDenied   = "denied"
	ResultExpired  = "expired"
	ReasonApproval = "approval"
)

// Proposal states.
const (
	proposalPending  = "pending"
	proposalApproved = "approved"
	proposalDenied   = "denied"
	proposalExpired  = "expired"
)

// Carry's outcomes.
const (
	CarryPending = "pending" // not answered, not yet expired: look again at the timeout
	CarryRan     = "ran"     // approved: the action went through its guards now (see the records)
	CarryDenied  = "denied"
	CarryExpired = "expired"
	CarryDone    = "done" // carried already (by another replica), or gone
)

const (
	keyProposal    = "rem:proposal:" // + id
	maxApprovalTTL = 24 * time.Hour
	proposalMargin = 48 * time.Hour // a proposal outlives its timeout by this
)

// Errors of Decide, for the API's status codes.
var (
	ErrNoProposal  = errors.New("no such proposal")
	ErrNotApprover = errors.New("not an approver of this rule")
	ErrDecided     = errors.New("the proposal was answered already")
)

// proposalState is what rem:proposal:<id> keeps.
type proposalState struct {
	ID       string         `json:"id"`
	Rule     string         `json:"rule"`
	Action   string         `json:"action"`
	Alert    template.Alert `json:"alert"`
	Flapping bool           `json:"flapping,omitempty"`
	RecordID string         `json:"record_id"`
	Would    string         `json:"would"`
	Created  time.Time      `json:"created"`
	Expires  time.Time      `json:"expires"`
	State    string         `json:"state"`
	By       string         `json:"by,omitempty"`
	At       time.Time      `json:"at,omitzero"`
	// Carried marks the approved action taken to its run: at most once.
	Carried bool `json:"carried,omitempty"`
}

// Proposal is a waiting proposal as Handle's caller needs it: the wait it
// puts in the store, due at Expires.
type Proposal struct {
	ID      string    `json:"id"`
	Rule    string    `json:"rule"`
	Expires time.Time `json:"expires"`
}

// Approver is who answers a proposal. IDs are the Slack user's ID and
// name, checked against the rule's approvers; none (the HTTP API, behind
// the admin credentials) is always allowed.
type Approver struct {
	By  string
	IDs []string
}

// checkApproval checks a rule's approval block at rp.
func checkApproval(rp string, r *Rule, maxAge model.Duration, bad func(string, string, ...any)) {
	a := r.Approval
	if a == nil {
		return
	}
	if a.Timeout <= 0 || time.Duration(a.Timeout) > maxApprovalTTL {
		bad(rp+".approval.timeout", "must be a positive duration of at most %s, got %s", model.Duration(maxApprovalTTL), a.Timeout)
	} else if a.Timeout >= maxAge {
		bad(rp+".approval.timeout", "must be below max_age (%s): an action approved later would be a stale replay", maxAge)
	}
	if len(a.Approvers) == 0 {
		bad(rp+".approval.approvers", "name at least one Slack user (ID or name) who may approve")
	}
	for i, s := range a.Approvers {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n<>@") {
			bad(fmt.Sprintf("%s.approval.approvers[%d]", rp, i), "must be a Slack user ID or name, got %q", s)
		}
	}
}

// proposalID names the proposal of one rule for one episode of an alert.
func proposalID(rule, fp string, startsAt time.Time) string {
	h := sha256.Sum256([]byte(rule + "\x00" + fp + "\x00" + startsAt.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h[:12])
}

func decodeProposal(b []byte) (proposalState, bool) {
	var p proposalState
	if b == nil || json.Unmarshal(b, &p) != nil || p.ID == "" {
		return proposalState{}, false
	}
	return p, true
}

// propose writes r's proposal for a, unless this episode has one: it ends
// rec as proposed (or as skipped, naming the proposal there is).
func (e *Engine) propose(ctx context.Context, r *compiledRule, rec *Record, a template.Alert, flapping bool, would string, now time.Time) (string, error) {
	id := proposalID(r.Name, a.Fingerprint, a.StartsAt)
	expires := now.Add(time.Duration(r.Approval.Timeout))
	var existing *proposalState
	_, err := e.store.UpdateState(ctx, keyProposal+id, time.Duration(r.Approval.Timeout)+proposalMargin, func(old []byte) ([]byte, error) {
		if p, ok := decodeProposal(old); ok {
			existing = &p
			return old, nil
		}
		existing = nil
		return json.Marshal(proposalState{ID: id, Rule: r.Name, Action: rec.Action, Alert: a, Flapping: flapping, RecordID: rec.ID,
			Would: would, Created: now, Expires: expires, State: proposalPending})
	})
	if err != nil {
		return "", fmt.Errorf("record the proposal: %w", err)
	}
	rec.Proposal = id
	if existing != nil {
		rec.Result, rec.Reason = ResultSkipped, ReasonApproval
		switch existing.State {
		case proposalPending:
			rec.Detail = fmt.Sprintf("proposal %s awaits approval until %s", id, existing.Expires.UTC().Format(time.RFC3339))
		case proposalExpired:
			rec.Detail = fmt.Sprintf("proposal %s for this episode of the alert expired", id)
		default:
			rec.Detail = fmt.Sprintf("proposal %s for this episode of the alert was %s by %s", id, existing.State, existing.By)
		}
		return "", nil
	}
	rec.Result, rec.Reason = ResultProposed, ReasonApproval
	rec.Detail = fmt.Sprintf("would %s; awaiting approval by %s until %s", would, strings.Join(r.Approval.Approvers, ", "), expires.UTC().Format(time.RFC3339))
	rec.Proposed = &Proposal{ID: id, Rule: r.Name, Expires: expires}
	return fmt.Sprintf("Approval needed: rule %s would %s because %s fired. Approve or deny by %s (or POST /api/v1/remediations/%s/approve or /deny).",
		r.Name, would, alertName(a, r), expires.UTC().Format("15:04 MST"), id), nil
}

// Decide records an answer to proposal id: the first answer stands. The
// record (audited) carries the notice for notify_receiver.
func (e *Engine) Decide(ctx context.Context, id string, approve bool, who Approver) (Record, error) {
	c := e.cur.Load()
	now := e.now()
	var p proposalState
	var found bool
	var stop error
	_, err := e.store.UpdateState(ctx, keyProposal+id, proposalMargin, func(old []byte) ([]byte, error) {
		p, found = decodeProposal(old)
		stop = nil
		switch {
		case !found:
			stop = ErrNoProposal
			return old, nil
		case p.State == proposalPending && !now.Before(p.Expires):
			p.State = proposalExpired // answered too late: it expires now
			stop = fmt.Errorf("%w: it expired at %s", ErrDecided, p.Expires.UTC().Format(time.RFC3339))
		case p.State != proposalPending:
			stop = fmt.Errorf("%w: %s by %s at %s", ErrDecided, p.State, p.By, p.At.UTC().Format(time.RFC3339))
			return old, nil
		default:
			r := c.rule(p.Rule)
			if len(who.IDs) > 0 && (r == nil || r.Approval == nil || !slices.ContainsFunc(who.IDs, func(s string) bool { return s != "" && slices.Contains(r.Approval.Approvers, s) })) {
				stop = ErrNotApprover
				return old, nil
			}
			p.State, p.By, p.At = proposalDenied, who.By, now
			if approve {
				p.State = proposalApproved
			}
		}
		return json.Marshal(p)
	})
	if err == nil {
		err = stop
	}
	if !found && err == nil {
		err = ErrNoProposal
	}
	if err != nil {
		return Record{}, err
	}
	rec := e.proposalRecord(p, now, p.State, fmt.Sprintf("%s by %s: %s", p.State, who.By, p.Would))
	e.audit(ctx, c, &rec)
	e.actions.WithLabelValues(rec.Action, rec.Result).Inc()
	e.logRecord(&rec)
	rec.Notice = e.proposalNotice(rec, fmt.Sprintf("Proposal %s %s by %s: rule %s would %s.", id, p.State, who.By, p.Rule, p.Would))
	return rec, nil
}

// Carry takes proposal id on from where its answer left it (the pipeline
// calls it when the wait is due, or moved due by an answer): an approved
// action runs now, through every guard; a proposal unanswered at its
// timeout expires. It returns the records (their notices and the run's
// verification), what happened, and the proposal's rule.
func (e *Engine) Carry(ctx context.Context, id string) ([]Record, string, string, error) {
	c := e.cur.Load()
	now := e.now()
	var p proposalState
	var outcome string
	_, err := e.store.UpdateState(ctx, keyProposal+id, proposalMargin, func(old []byte) ([]byte, error) {
		var ok bool
		p, ok = decodeProposal(old)
		switch {
		case !ok || p.Carried:
			outcome = CarryDone
			return old, nil
		case p.State == proposalPending && now.Before(p.Expires):
			outcome = CarryPending
			return old, nil
		case p.State == proposalPending || p.State == proposalExpired:
			p.State, outcome = proposalExpired, CarryExpired
		case p.State == proposalDenied:
			outcome = CarryDenied
		default:
			outcome = CarryRan
		}
		p.Carried = true
		return json.Marshal(p)
	})
	if err != nil {
		return nil, "", "", fmt.Errorf("read the proposal: %w", err)
	}
	switch outcome {
	case CarryDenied:
		// Audited and announced when it was answered (Decide): this says
		// it again only to the caller, for the pages it held.
		return []Record{e.proposalRecord(p, now, ResultDenied, fmt.Sprintf("denied by %s at %s: %s", p.By, p.At.UTC().Format(time.RFC3339), p.Would))}, outcome, p.Rule, nil
	case CarryExpired:
		rec := e.proposalRecord(p, now, ResultExpired, fmt.Sprintf("no answer by %s: %s", p.Expires.UTC().Format(time.RFC3339), p.Would))
		e.audit(ctx, c, &rec)
		e.actions.WithLabelValues(rec.Action, rec.Result).Inc()
		e.logRecord(&rec)
		rec.Notice = e.proposalNotice(rec, fmt.Sprintf("Proposal %s expired: nobody approved rule %s (%s) within %s, so nothing was done.", id, p.Rule, p.Would, model.Duration(p.Expires.Sub(p.Created))))
		return []Record{rec}, outcome, p.Rule, nil
	case CarryRan:
		r := c.rule(p.Rule)
		if r == nil || r.fire == nil {
			rec := e.proposalRecord(p, now, ResultSkipped, "the rule is no longer configured")
			e.audit(ctx, c, &rec)
			e.logRecord(&rec)
			return []Record{rec}, outcome, p.Rule, nil
		}
		start := time.Now()
		rec, notice := e.run(ctx, c, r, r.fire, p.Alert, alert.StatusFiring, p.Flapping, &pauseCheck{e: e}, p.By)
		rec.DurationSeconds = time.Since(start).Seconds()
		rec.ApprovedBy, rec.Proposal = p.By, p.ID
		e.finish(ctx, c, &rec, notice, p.Alert)
		rec.Verify = e.verification(r, r.fire, &rec, p.Alert)
		return []Record{rec}, outcome, p.Rule, nil
	}
	return nil, outcome, p.Rule, nil
}

// proposalRecord starts a record of an approval step.
func (e *Engine) proposalRecord(p proposalState, now time.Time, result, detail string) Record {
	return Record{RemediationRecord: api.RemediationRecord{
		Time:        now,
		Rule:        p.Rule,
		Action:      p.Action,
		Status:      alert.StatusFiring,
		Result:      result,
		Reason:      ReasonApproval,
		Detail:      detail,
		Fingerprint: p.Alert.Fingerprint,
		Labels:      map[string]string(p.Alert.Labels),
		Replica:     e.replica,
		ActionID:    p.RecordID,
		Proposal:    p.ID,
		ApprovedBy:  p.By,
	}}
}

func (e *Engine) proposalNotice(rec Record, text string) *Notice {
	return &Notice{Text: text, Facts: map[string]string{
		"rule":        rec.Rule,
		"action":      rec.Action,
		"result":      rec.Result,
		"reason":      ReasonApproval,
		"alertname":   rec.Labels["alertname"],
		"fingerprint": rec.Fingerprint,
		"replica":     e.replica,
		"proposal":    rec.Proposal,
	}}
}
