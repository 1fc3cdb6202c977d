//go:build !unix

// Package rusage reads this process's resource usage from getrusage(2):
// the CPU time that benchmarks and "setgate bench" divide by the SETs
// they handled, and the peak resident set.
package rusage

import "time"

// CPU is not measured on this platform: always 0.
func CPU() time.Duration { return 0 }

// MaxRSS is not measured on this platform: always 0.
func MaxRSS() int64 { return 0 }
