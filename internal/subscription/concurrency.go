package subscription

import "fmt"

// DefaultMaxConcurrentReconciles is how many Subscriptions the installer
// reconciles at once unless WithMaxConcurrentReconciles says otherwise.
// A reconcile mostly waits on the API server (server-side apply, access
// reviews, reads of what it owns), so several overlap on one core; one at
// a time made 1,000 Subscriptions wait in line behind each other
// (docs/scale.md).
const DefaultMaxConcurrentReconciles = 8

// MaxConcurrentReconcilesLimit bounds WithMaxConcurrentReconciles: each
// worker holds a Subscription's rendered objects, so the bound is one on
// memory as much as on the API server's load.
const MaxConcurrentReconcilesLimit = 256

// ValidateMaxConcurrentReconciles reports whether n Subscriptions may be
// reconciled at once.
func ValidateMaxConcurrentReconciles(n int) error {
	if n < 1 || n > MaxConcurrentReconcilesLimit {
		return fmt.Errorf("%d concurrent reconciles: must be 1 to %d", n, MaxConcurrentReconcilesLimit)
	}
	return nil
}

// WithMaxConcurrentReconciles sets how many Subscriptions are reconciled
// at once; DefaultMaxConcurrentReconciles when n is not positive. Two
// reconciles never handle the same Subscription at once, whatever n.
func WithMaxConcurrentReconciles(n int) SetupOption {
	return func(o *setupOptions) {
		if n > 0 {
			o.workers = min(n, MaxConcurrentReconcilesLimit)
		}
	}
}
