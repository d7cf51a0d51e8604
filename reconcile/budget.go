package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/resumer/resumer/persona"
)

// SharedLimiter is the Persona rate limit every replica and role shares (state.RateLimiter),
// with a view of its current use.
type SharedLimiter interface {
	persona.Limiter
	// Usage returns the grants of the current window and the limit.
	Usage(ctx context.Context) (used, limit int, err error)
	// Window is the limiter's window.
	Window() time.Duration
}

// BudgetLimiter is the persona.Limiter of reconciliation's Persona client. Each request
// first takes a grant from Budget, a limiter of reconciliation's own whose limit is its
// share of the shared one (RESUMER_RECONCILE_BUDGET, 20 % by default), so reconciliation
// never uses more than that share. It then yields: while the shared window holds more than
// the limit minus that share (reminders and the resume API are busy), it waits. Only then
// does it take a grant from Shared, so its requests count against the limit everyone
// shares.
type BudgetLimiter struct {
	Budget persona.Limiter
	Shared SharedLimiter
	// Share is the budget as a fraction of the shared limit (0 < Share <= 1).
	Share float64
	// Poll is the wait between two looks at a busy shared window; the shared window divided
	// by its limit when zero.
	Poll time.Duration
}

var _ persona.Limiter = (*BudgetLimiter)(nil)

// Wait blocks until reconciliation may send one request. It returns ctx's error when ctx
// ends first, or the error of a limiter that failed (persona.Client then goes on unpaced,
// with Persona's 429s as the backstop).
func (b *BudgetLimiter) Wait(ctx context.Context) error {
	if err := b.Budget.Wait(ctx); err != nil {
		return fmt.Errorf("wait for reconciliation budget: %w", err)
	}
	for {
		used, limit, err := b.Shared.Usage(ctx)
		if err != nil {
			return err
		}
		reserve := int(float64(limit)*b.Share + 0.5)
		if used < limit-reserve || used == 0 {
			break
		}
		poll := b.Poll
		if poll <= 0 {
			poll = b.Shared.Window() / time.Duration(max(limit, 1))
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return b.Shared.Wait(ctx)
}

// Observe passes Persona's rate-limit headers to the shared limiter.
func (b *BudgetLimiter) Observe(ctx context.Context, remaining, limit int, reset time.Duration) {
	b.Shared.Observe(ctx, remaining, limit, reset)
}
