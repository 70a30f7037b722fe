//go:build e2e

// Package e2e holds the end-to-end tests. They run against a real local
// cluster (see test/e2e/framework) and are built only with the e2e tag:
//
//	go test -tags e2e ./test/e2e/...
package e2e

import (
	"testing"

	"github.com/ferrydev/ferry/test/e2e/framework"
)

var f *framework.Framework

func TestMain(m *testing.M) { framework.Main(m, &f) }
