package receiver

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/alertmedic/alertmedic/api"
)

// RemediationAPI is what the HTTP API needs of the remediation engine.
type RemediationAPI interface {
	Audit(ctx context.Context, limit int) ([]api.RemediationRecord, error)
	Pause(ctx context.Context, by string) error
	Resume(ctx context.Context, by string) error
	Paused(ctx context.Context) (bool, error)
	// Answer approves or denies a proposal (a rule with approval) for by:
	// ErrNoProposal, ErrNotApprover or ErrAnswered when it cannot.
	Answer(ctx context.Context, id string, approve bool, by string) (api.RemediationRecord, error)
}

// Errors of RemediationAPI.Answer; others mean the store failed.
var (
	ErrNoProposal = errors.New("no such proposal")
	ErrAnswered   = errors.New("the proposal was answered already, or expired")
)

var proposalIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// answerProposal approves or denies a proposal over HTTP, with the admin
// credentials: who holds them may answer any rule's proposal.
func (r *Receiver) answerProposal(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r.o.Remediation == nil {
			fail(c, http.StatusNotImplemented, "remediation is not configured")
			return
		}
		id := c.Param("id")
		if !proposalIDPattern.MatchString(id) {
			fail(c, http.StatusBadRequest, "a proposal ID is 24 hexadecimal digits (the record's proposal field)")
			return
		}
		rec, err := r.o.Remediation.Answer(c.Request.Context(), id, approve, r.who(c))
		switch {
		case errors.Is(err, ErrNoProposal):
			fail(c, http.StatusNotFound, "no such proposal (it may have expired long ago)")
		case errors.Is(err, ErrAnswered):
			fail(c, http.StatusConflict, err.Error())
		case err != nil:
			c.Header("Retry-After", "5")
			fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		default:
			c.JSON(http.StatusOK, rec)
		}
	}
}

// remediations lists the audit: every decision (ran, skipped and why,
// failed, dry run), newest first.
func (r *Receiver) remediations(c *gin.Context) {
	if r.o.Remediation == nil {
		c.JSON(http.StatusOK, api.Remediations{Records: []api.RemediationRecord{}})
		return
	}
	limit := 100
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			fail(c, http.StatusBadRequest, "limit must be a number from 1 to 10000")
			return
		}
		limit = n
	}
	recs, err := r.o.Remediation.Audit(c.Request.Context(), limit)
	if err != nil {
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	}
	paused, _ := r.o.Remediation.Paused(c.Request.Context())
	c.JSON(http.StatusOK, api.Remediations{Paused: paused, Records: recs})
}

// pauseRemediation is the kill switch over HTTP. It needs the admin
// credentials when auth is configured.
func (r *Receiver) pauseRemediation(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r.o.Remediation == nil {
			fail(c, http.StatusNotImplemented, "remediation is not configured")
			return
		}
		by := r.who(c)
		f := r.o.Remediation.Resume
		if pause {
			f = r.o.Remediation.Pause
		}
		if err := f(c.Request.Context(), by); err != nil {
			c.Header("Retry-After", "5")
			fail(c, http.StatusServiceUnavailable, "store unavailable; retry later")
			return
		}
		c.JSON(http.StatusOK, gin.H{"paused": pause})
	}
}
