//go:build unix

package rusage

import (
	"crypto/sha256"
	"testing"
)

// TestReadings: the CPU time only grows, and grows with work; the peak
// resident set covers memory the process touched.
func TestReadings(t *testing.T) {
	before := CPU()
	sum := sha256.Sum256(nil)
	for CPU() == before {
		sum = sha256.Sum256(sum[:])
	}
	if after := CPU(); after < before {
		t.Errorf("CPU went back: %v after %v", after, before)
	}
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if got := MaxRSS(); got < int64(len(buf)) {
		t.Errorf("MaxRSS %d, want at least the %d bytes just touched", got, len(buf))
	}
	_ = buf[len(buf)-1]
}
