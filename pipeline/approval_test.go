package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/store/memory"
)

const approvalTimeout = 15 * time.Minute

// approving is a replica whose scale rule asks for approval by U0ALICE,
// paging PagerDuty (held) through pd.
func approving(t *testing.T, st sharedStore, clk *clock, orch *orchestrator, pd *pdStandIn, name string) *replica {
	t.Helper()
	nf := pagerduty.New(pagerduty.Config{RoutingKey: "routing-key-secret", URL: pd.URL + "/v2/enqueue"}, nil)
	return newReplicaWith(t, st, clk, orch, prometheus.NewRegistry(), name, heldRules(t), nf, func(r *remediation.Rule) {
		r.Approval = &remediation.ApprovalConfig{Timeout: model.Duration(approvalTimeout), Approvers: []string{"U0ALICE", "alice"}}
	})
}

// proposedID fires the overloaded alert on g and returns the proposal its
// rule made: nothing ran, ops was asked.
func proposedID(t *testing.T, g *replica, orch *orchestrator, pd *pdStandIn) string {
	t.Helper()
	g.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	g.remedies(t)
	wantSeen(t, orch.take())
	pd.none(t, "paged while the proposal waits")
	ns := g.notices()
	if len(ns) != 1 || !strings.HasPrefix(ns[0], "Approval needed: rule scale-extraction would scale company-extraction-api to 5 replicas because ExtractionServiceOverloaded fired. Approve or deny by 12:15 UTC") {
		t.Fatalf("notices %q", ns)
	}
	audit, err := g.eng.Audit(context.Background(), 1)
	if err != nil || len(audit) != 1 || audit[0].Result != remediation.ResultProposed || audit[0].Proposal == "" {
		t.Fatalf("audit %+v %v", audit, err)
	}
	return audit[0].Proposal
}

func answer(g *replica, id string, approve bool, who remediation.Approver) error {
	rec, err := g.eng.Decide(context.Background(), id, approve, who)
	if err == nil {
		g.p.Answered(context.Background(), id, rec.Notice)
	}
	return err
}

var alice = remediation.Approver{By: "slack:alice", IDs: []string{"U0ALICE", "alice"}}

// Approved by an approver, the action runs once, with its guards checked
// then, whichever replica carries it; a second answer is refused. Not
// helping, it pages once, saying it was approved and what it did.
func TestApprovalApprovedRunsOnce(t *testing.T) {
	st := memory.New(memory.Options{})
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	a := approving(t, st, clk, orch, pd, "r1")
	b := approving(t, st, clk, orch, pd, "r2")
	id := proposedID(t, a, orch, pd)

	if err := answer(b, id, true, remediation.Approver{By: "slack:mallory", IDs: []string{"U0MALLORY", "mallory"}}); !errors.Is(err, remediation.ErrNotApprover) {
		t.Fatalf("a non-approver's approval: %v", err)
	}
	clk.Add(2 * time.Minute)
	if err := answer(b, id, true, alice); err != nil {
		t.Fatal(err)
	}
	if err := answer(a, id, false, alice); !errors.Is(err, remediation.ErrDecided) || !strings.Contains(err.Error(), "approved by slack:alice") {
		t.Fatalf("a second answer: %v", err)
	}
	a.verify(t)
	b.verify(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")
	ns := append(a.notices(), b.notices()...)
	if len(ns) != 2 || !strings.HasPrefix(ns[0], "Proposal "+id+" approved by slack:alice") ||
		ns[1] != "scaled company-extraction-api from 2 to 5 replicas because ExtractionServiceOverloaded fired" {
		t.Errorf("notices %q", ns)
	}
	pd.none(t, "paged before the verdict")
	audit, err := a.eng.Audit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, r := range audit {
		steps = append(steps, r.Result+":"+r.ApprovedBy)
	}
	if strings.Join(steps, " ") != "ran:slack:alice approved:slack:alice proposed:" {
		t.Errorf("audit, newest first: %q", steps)
	}
	// Still firing at the end of its window: one page, with the action.
	clk.Add(verifyWithin)
	a.verify(t)
	b.verify(t)
	ev := pd.take()
	if len(ev) != 1 || !strings.Contains(ev[0].Remediation, "scaled company-extraction-api from 2 to 5 replicas; the alert was still firing at the end of the 10m window") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
	clk.Add(time.Hour)
	a.verify(t)
	b.flush(t)
	wantSeen(t, orch.take(), "POST /scale 2") // the rollback, nothing more
	pd.none(t, "paged again")
}

// Denied, the action never runs, and the held page goes at once, saying
// who denied it.
func TestApprovalDeniedNeverRuns(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := approving(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	id := proposedID(t, g, orch, pd)
	clk.Add(time.Minute)
	if err := answer(g, id, false, alice); err != nil {
		t.Fatal(err)
	}
	g.verify(t)
	wantSeen(t, orch.take())
	ev := pd.take()
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Remediation, "rule scale-extraction asked for approval: denied by slack:alice at 2026-11-26T12:01:00Z: scale company-extraction-api to 5 replicas") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
	if ns := g.notices(); len(ns) != 1 || !strings.HasPrefix(ns[0], "Proposal "+id+" denied by slack:alice") {
		t.Errorf("notices %q", ns)
	}
	// The firing repeats: no second proposal for this episode.
	clk.Add(5 * time.Minute)
	g.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	g.remedies(t)
	clk.Add(time.Hour)
	g.verify(t)
	wantSeen(t, orch.take())
	if ns := g.notices(); len(ns) != 0 {
		t.Errorf("notices %q", ns)
	}
	pd.none(t, "paged again")
}

// Unanswered at its timeout, the proposal expires: audited, announced,
// nothing run, and the held page goes then.
func TestApprovalExpiredPages(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := approving(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	id := proposedID(t, g, orch, pd)
	clk.Add(approvalTimeout - time.Second)
	g.verify(t)
	pd.none(t, "paged before the timeout")
	clk.Add(time.Second)
	g.verify(t)
	wantSeen(t, orch.take())
	ev := pd.take()
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Remediation, "rule scale-extraction asked for approval: no answer by 2026-11-26T12:15:00Z") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
	if ns := g.notices(); len(ns) != 1 || ns[0] != "Proposal "+id+" expired: nobody approved rule scale-extraction (scale company-extraction-api to 5 replicas) within 15m, so nothing was done." {
		t.Errorf("notices %q", ns)
	}
	if err := answer(g, id, true, alice); !errors.Is(err, remediation.ErrDecided) {
		t.Errorf("an approval after the timeout: %v", err)
	}
	g.verify(t)
	wantSeen(t, orch.take())
}
