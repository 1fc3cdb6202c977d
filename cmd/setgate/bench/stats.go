package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"time"
)

// Latency summarises request durations.
type Latency struct {
	P50, P90, P99, Max time.Duration
	// N is the number of samples.
	N int
}

// Summarize returns the percentiles of samples (nearest rank); it sorts
// samples in place.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	return Latency{
		P50: percentile(samples, 50), P90: percentile(samples, 90), P99: percentile(samples, 99),
		Max: samples[len(samples)-1], N: len(samples),
	}
}

// percentile is the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 · n), 1-based
	return sorted[max(rank, 1)-1]
}

// HTTPErrorKind names a non-202 answer: "http 503", or "http 400
// invalid_key" when the body carried an RFC 8935 err code.
func HTTPErrorKind(status int, code string) string {
	if code == "" {
		return fmt.Sprintf("http %d", status)
	}
	return fmt.Sprintf("http %d %s", status, code)
}

// TransportErrorKind names a request that got no answer.
func TransportErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "transport timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "transport connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport connection closed"
	default:
		return "transport other"
	}
}

// errCode is the err member of an RFC 8935 error body, or "".
func errCode(body []byte) string {
	var e struct {
		Err string `json:"err"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Err) > 64 {
		return ""
	}
	return e.Err
}
