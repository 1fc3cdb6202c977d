package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssMetric is the Prometheus process collector's resident set gauge, in
// bytes, which setgate serves on its admin port's /metrics.
const rssMetric = "process_resident_memory_bytes"

// metricsReadLimit bounds one /metrics answer.
const metricsReadLimit = 4 << 20

// RSSReport is the gateway's resident set during the push run, read from
// its /metrics (the process collector's process_resident_memory_bytes)
// when the run started, every IntervalSeconds, and when it ended (unless
// a periodic reading was taken just then).
type RSSReport struct {
	URL             string      `json:"metrics_url"`
	IntervalSeconds float64     `json:"interval_seconds"`
	Samples         []RSSSample `json:"samples"`
	// MaxMB is the highest sample.
	MaxMB float64 `json:"max_mb"`
}

// RSSSample is one reading of the gateway's resident set.
type RSSSample struct {
	// Seconds is the time since the push run started; Minute the same in
	// minutes.
	Seconds float64 `json:"seconds"`
	Minute  float64 `json:"minute"`
	RSSMB   float64 `json:"rss_mb"`
	// Error is why the reading failed (RSSMB is then 0).
	Error string `json:"error,omitempty"`
}

// RSSSampler reads a gateway's resident set from its /metrics, now and
// every interval, until [RSSSampler.Stop].
type RSSSampler struct {
	url      string
	interval time.Duration
	client   *http.Client
	start    time.Time
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when the periodic readings ended

	mu      sync.Mutex
	samples []RSSSample
}

// StartRSSSampler takes the first reading of url's
// process_resident_memory_bytes at once, then one every interval, with
// client (each reading bounded by ctx and the client's timeout), until
// Stop or until ctx is done.
func StartRSSSampler(ctx context.Context, client *http.Client, url string, interval time.Duration) *RSSSampler {
	s := &RSSSampler{url: url, interval: interval, client: client, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	s.sample(ctx)
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
				s.sample(ctx)
			}
		}
	}()
	return s
}

// Stop ends the periodic readings (waiting for one in flight), takes a
// last one unless one was just taken (a run of whole intervals ends on a
// tick), and reports them all. Call it once.
func (s *RSSSampler) Stop(ctx context.Context) *RSSReport {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	last := s.samples[len(s.samples)-1]
	s.mu.Unlock()
	if time.Since(s.start).Seconds()-last.Seconds >= min(time.Second, s.interval/10).Seconds() {
		s.sample(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &RSSReport{URL: s.url, IntervalSeconds: s.interval.Seconds(), Samples: s.samples}
	for _, x := range s.samples {
		rep.MaxMB = max(rep.MaxMB, x.RSSMB)
	}
	return rep
}

// sample takes one reading.
func (s *RSSSampler) sample(ctx context.Context) {
	elapsed := time.Since(s.start)
	x := RSSSample{Seconds: elapsed.Seconds(), Minute: elapsed.Minutes()}
	if rss, err := ReadRSS(ctx, s.client, s.url); err != nil {
		x.Error = err.Error()
	} else {
		x.RSSMB = MB(rss)
	}
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
}

// ReadRSS reads process_resident_memory_bytes, in bytes, from the
// Prometheus text exposition at url.
func ReadRSS(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("bench: metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: metrics: %s answered %s", url, resp.Status)
	}
	return parseRSS(io.LimitReader(resp.Body, metricsReadLimit))
}

// parseRSS finds the unlabelled process_resident_memory_bytes sample in a
// Prometheus text exposition.
func parseRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), rssMetric+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if err != nil || !(v >= 0 && v < math.MaxInt64) { // NaN and ±Inf too
			return 0, fmt.Errorf("bench: metrics: %s %q is not a size", rssMetric, rest)
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("bench: metrics: %w", err)
	}
	return 0, fmt.Errorf("bench: metrics: no %s (is it setgate's admin /metrics?)", rssMetric)
}
