package subscription_test

import (
	"github.com/ferrydev/ferry/internal/subscription"
	"github.com/ferrydev/ferry/internal/testenv"
)

// The action tests of the package itself share this package's test
// environment (started by TestMain).
func init() {
	subscription.SharedEnv = func() *testenv.Env { return env }
}
