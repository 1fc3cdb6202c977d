//go:build unix

// Package rusage reads this process's resource usage from getrusage(2):
// the CPU time that benchmarks and "setgate bench" divide by the SETs
// they handled, and the peak resident set.
package rusage

import (
	"runtime"
	"syscall"
	"time"
)

// CPU is the process's user + system CPU time so far.
func CPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MaxRSS is getrusage's peak resident set size in bytes (kilobytes on
// Linux, bytes on Darwin).
func MaxRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss)
	}
	return int64(ru.Maxrss) << 10
}
