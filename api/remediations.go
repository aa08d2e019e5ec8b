package api

import "time"

// Remediations is the answer of GET /api/v1/remediations: whether
// remediation is paused, and the audit, newest first.
type Remediations struct {
	Paused  bool                `json:"paused"`
	Records []RemediationRecord `json:"records"`
}

// RemediationRecord is one decision about one action, as audited: ran,
// skipped and why, failed, dry run; or a pause or resume.
type RemediationRecord struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Rule string    `json:"rule,omitempty"`
	// Action is the action kind, or pause and resume for those records.
	Action string `json:"action"`
	// Status is the alert's state that triggered it: firing runs the rule's
	// action, resolved its on_resolve.
	Status string `json:"status,omitempty"`
	// Result is ran, failed, skipped or dry_run; on an outcome record
	// (reason verify), effective or ineffective.
	Result string `json:"result"`
	// Reason names the guard that stopped the action (see remediation's
	// Reason constants), dry_run, or why it failed.
	Reason string `json:"reason,omitempty"`
	// Detail says what was done, would have been done, or went wrong, in
	// words.
	Detail      string            `json:"detail,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Request summarises the action's call (the scale POST when a step
	// first reads the current count): never a header, a query or userinfo.
	Request         *RemediationRequest `json:"request,omitempty"`
	StatusCode      int                 `json:"status_code,omitempty"`
	DurationSeconds float64             `json:"duration_seconds"`
	Replica         string              `json:"replica"`
	// Attempts is how many times the last request was tried.
	Attempts int `json:"attempts,omitempty"`
	// PreviousReplicas is the replica count a scale read from the
	// orchestrator before it acted (a step scale, and a fixed one of a rule
	// that verifies): what a rollback scales back to.
	PreviousReplicas *int `json:"previous_replicas,omitempty"`
	// ActionID is, on an outcome record (result effective or ineffective,
	// reason verify) and a rollback's (reason rollback), the ID of the
	// action's record.
	ActionID string `json:"action_id,omitempty"`
	// Proposal is the ID of the proposal of a rule with approval: on the
	// proposal's record (result proposed), on its answer's (approved,
	// denied, expired) and on the run it led to. Approve it with POST
	// /api/v1/remediations/{proposal}/approve.
	Proposal string `json:"proposal,omitempty"`
	// ApprovedBy is who answered the proposal.
	ApprovedBy string `json:"approved_by,omitempty"`
}

// RemediationRequest summarises an HTTP call without anything secret in
// it.
type RemediationRequest struct {
	Method    string `json:"method"`
	URL       string `json:"url"` // scheme, host and path only
	BodyBytes int    `json:"body_bytes"`
}
