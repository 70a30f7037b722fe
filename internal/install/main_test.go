package install_test

import (
	"testing"

	"github.com/ferrydev/ferry/internal/testenv"
)

var env *testenv.Env

// The API server reaches webhook Services through their endpoints, so that
// a webhook server run by a test behind a Service's Endpoints is called
// (see TestWebhooksCalledWithTheGeneratedCA).
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.WithAPIServerFlag("enable-aggregator-routing", "true"))
}
