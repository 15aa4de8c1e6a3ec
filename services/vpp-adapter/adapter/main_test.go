package adapter_test

import (
	"io"
	"log"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// govpp's mock adapter prints every reply with the standard logger.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}
