//go:build !unix

package bench

// mapAnon falls back to the Go heap.
func mapAnon(n int) ([]byte, error) { return make([]byte, n), nil }

// unmapAnon leaves the memory to the garbage collector.
func unmapAnon([]byte) error { return nil }
