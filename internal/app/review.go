package app

import (
	"context"
	"time"

	"github.com/fleetgate/fleetgate/internal/review"
)

// PublishScheduled publishes the approved versions due at now. The
// background loop calls it every --review-publish-interval; tests call it
// directly with the time they want, so a scheduled publication is checked
// at, before and after its time without sleeping.
func (a *App) PublishScheduled(ctx context.Context, now time.Time) ([]review.Outcome, error) {
	return a.reviews.Run(ctx, now)
}

// runScheduledPublications is the background loop. Each tick is bounded
// by the interval (and the publisher's batch size), so a slow store cannot
// stack ticks; failures are logged by the publisher and retried.
func (a *App) runScheduledPublications(ctx context.Context, every time.Duration) {
	defer close(a.reviewDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
			_, _ = a.reviews.Run(tctx, time.Now())
			cancel()
		}
	}
}
