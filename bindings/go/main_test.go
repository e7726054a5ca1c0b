package resman

import (
	"testing"

	"go.uber.org/goleak"
)

// No test may leave a goroutine behind (the binding itself starts none).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
