package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one bench run measured; it is printed as text or
// encoded as one JSON object.
type Report struct {
	// Target is "in-process" or the push URL of a remote gateway.
	Target string `json:"target"`
	// Mode is push, poll or both.
	Mode          string `json:"mode"`
	Alg           string `json:"alg"`
	Issuers       int    `json:"issuers"`
	KeysPerIssuer int    `json:"keys_per_issuer"`
	EventsPerSET  int    `json:"events_per_set"`
	Concurrency   int    `json:"concurrency"`
	// GOMAXPROCS and NumCPU describe the machine; LoadAverage is read
	// before the run (Linux; empty elsewhere).
	GOMAXPROCS  int       `json:"gomaxprocs"`
	NumCPU      int       `json:"num_cpu"`
	LoadAverage []float64 `json:"load_average"`

	// PlainCeiling is ceiling (0): golang-jwt v5 jwt.Parse of the same
	// SETs against a fixed public key, all cores, in the bench process (so
	// also against a remote gateway, measured while it is idle).
	PlainCeiling *CeilingReport `json:"ceiling_plain_jwt,omitempty"`
	// VerifyCeiling is ceiling (a): verification only, all cores, no HTTP
	// and no NATS. PublishCeiling is ceiling (b): verification and
	// JetStream publish with PubAck, no HTTP. Nil against a remote gateway.
	VerifyCeiling  *CeilingReport `json:"ceiling_verify,omitempty"`
	PublishCeiling *CeilingReport `json:"ceiling_verify_publish,omitempty"`
	// Memory is what the in-process gateway took to start with the run's
	// issuers; nil against a remote gateway.
	Memory *MemoryReport `json:"memory,omitempty"`
	Push   *PushReport   `json:"push,omitempty"`
	// GatewayRSS is the gateway's resident set during the push run, read
	// from its /metrics (--metrics-url); nil when not asked for.
	GatewayRSS *RSSReport  `json:"gateway_rss,omitempty"`
	Poll       *PollReport `json:"poll,omitempty"`
	Ratios     Ratios      `json:"ratios"`

	// Check is the correctness check; nil when it was skipped, with the
	// reason in CheckSkipped.
	Check        *Verdict `json:"check,omitempty"`
	CheckSkipped string   `json:"check_skipped,omitempty"`
}

// MemoryReport is the memory of the in-process gateway right after it
// started with Issuers issuers (each issuer's verifier with its JWKS
// fetched, subjects, push credential), before any SET: the difference of
// two readings after a garbage collection, one before the start (the
// load generator's transmitters already running) and one after. It
// includes the gateway's fixed part (embedded NATS, HTTP servers,
// metrics), so the cost of one issuer is the slope between runs with
// different --issuers (README "Sizing").
type MemoryReport struct {
	Issuers      int     `json:"issuers"`
	HeapMB       float64 `json:"gateway_heap_mb"`
	RSSMB        float64 `json:"gateway_rss_mb"`
	HeapBeforeMB float64 `json:"heap_before_mb"`
	HeapAfterMB  float64 `json:"heap_after_mb"`
	RSSBeforeMB  float64 `json:"rss_before_mb"`
	RSSAfterMB   float64 `json:"rss_after_mb"`
	// HeapPerIssuerKB is HeapMB over Issuers, fixed part included.
	HeapPerIssuerKB float64 `json:"heap_per_issuer_kb"`
}

// NewMemoryReport reports the readings before and after a gateway started
// with issuers issuers.
func NewMemoryReport(issuers int, before, after Memory) *MemoryReport {
	heap := after.Heap - before.Heap
	return &MemoryReport{
		Issuers: issuers, HeapMB: MB(heap), RSSMB: MB(after.RSS - before.RSS),
		HeapBeforeMB: MB(before.Heap), HeapAfterMB: MB(after.Heap), RSSBeforeMB: MB(before.RSS), RSSAfterMB: MB(after.RSS),
		HeapPerIssuerKB: float64(heap) / 1024 / float64(max(issuers, 1)),
	}
}

// CeilingReport is one ceiling.
type CeilingReport struct {
	Goroutines int     `json:"goroutines"`
	SETs       int     `json:"sets"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	SETsPerSec float64 `json:"sets_per_sec"`
	// OtherCPUCores is the CPU other processes took meanwhile (see
	// [CPUWatch]).
	OtherCPUCores float64 `json:"other_cpu_cores"`
}

// NewCeilingReport reports c, measured with goroutines workers while
// other processes kept others CPUs busy.
func NewCeilingReport(c Ceiling, goroutines int, others float64) *CeilingReport {
	r := &CeilingReport{Goroutines: goroutines, SETs: c.OK, Errors: c.Failed, Seconds: c.Elapsed.Seconds(), SETsPerSec: c.Rate(), OtherCPUCores: others}
	if c.FirstErr != nil {
		r.FirstError = c.FirstErr.Error()
	}
	return r
}

// PushReport is the push run.
type PushReport struct {
	// SETs counts 202 answers, Sent every request answered or failed.
	SETs         int     `json:"sets"`
	Sent         int     `json:"sent"`
	Seconds      float64 `json:"seconds"`
	SETsPerSec   float64 `json:"sets_per_sec"`
	EventsPerSec float64 `json:"events_per_sec"`
	// OfferedRate is the open-loop pace asked for (SETs/s); zero: as fast
	// as the connections allow.
	OfferedRate float64 `json:"offered_rate,omitempty"`
	// PoolExhausted is true when the pre-signed SETs ran out before the
	// duration (the rate is still right; the run was shorter).
	PoolExhausted bool          `json:"pool_exhausted"`
	Latency       LatencyReport `json:"latency_ms"`
	// Lag, in an open-loop run, is how late the requests were written
	// after their due time; their latency includes it.
	Lag    *LatencyReport `json:"lag_ms,omitempty"`
	Errors map[string]int `json:"errors"`
	// UsageScope says whose CPU and memory these are.
	UsageScope string  `json:"usage_scope"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUCores   float64 `json:"cpu_cores"`
	CPUPerSET  float64 `json:"cpu_us_per_set"`
	// MachineCPUCores is how many CPUs the whole machine kept busy during
	// the run (Linux; 0 when unknown); OtherCPUCores the part not used by
	// this process: other programs competing with the measurement.
	MachineCPUCores float64 `json:"machine_cpu_cores"`
	OtherCPUCores   float64 `json:"other_cpu_cores"`
	// PeakRSSMB is the peak resident set during the run (since the start
	// of the process where it cannot be reset); RSSBeforeMB the resident
	// set when it started, holding the pre-signed SETs (PoolMB).
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	RSSBeforeMB float64 `json:"rss_before_mb"`
	PoolMB      float64 `json:"pool_mb"`
	// JWKSFetches counts JWKS requests during the run (-1: not known).
	JWKSFetches int64 `json:"jwks_fetches"`
}

// LatencyReport is a [Latency] in milliseconds.
type LatencyReport struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"samples"`
}

// NewLatencyReport converts l to milliseconds.
func NewLatencyReport(l Latency) LatencyReport {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return LatencyReport{P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max), N: l.N}
}

// PollReport is the poll run.
type PollReport struct {
	MaxEvents    int     `json:"max_events"`
	Queued       int     `json:"queued"`
	SETs         int     `json:"sets"`
	Reported     int     `json:"reported"`
	Seconds      float64 `json:"seconds"`
	SETsPerSec   float64 `json:"sets_per_sec"`
	EventsPerSec float64 `json:"events_per_sec"`
	// OtherCPUCores is the CPU other processes took meanwhile.
	OtherCPUCores float64 `json:"other_cpu_cores"`
	Error         string  `json:"error,omitempty"`
}

// Ratios compare the runs; each is nil when a side was not measured.
type Ratios struct {
	// PushToPlain is push over ceiling (0); VerifyToPlain ceiling (a)
	// over ceiling (0): setgate's verification against a plain JWT parse.
	PushToPlain   *float64 `json:"push_to_ceiling_plain_jwt,omitempty"`
	VerifyToPlain *float64 `json:"ceiling_verify_to_ceiling_plain_jwt,omitempty"`
	PushToVerify  *float64 `json:"push_to_ceiling_verify,omitempty"`
	PushToPublish *float64 `json:"push_to_ceiling_verify_publish,omitempty"`
	PollToPush    *float64 `json:"poll_to_push,omitempty"`
	PollToPublish *float64 `json:"poll_to_ceiling_verify_publish,omitempty"`
}

// Ratio is a/b, or nil when either is unknown.
func Ratio(a, b float64) *float64 {
	if a <= 0 || b <= 0 {
		return nil
	}
	r := a / b
	return &r
}

// MB converts bytes to megabytes (10⁶).
func MB(bytes int64) float64 { return float64(bytes) / 1e6 }

// WriteText prints r for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	load := "unknown"
	if len(r.LoadAverage) == 3 {
		load = fmt.Sprintf("%.2f %.2f %.2f", r.LoadAverage[0], r.LoadAverage[1], r.LoadAverage[2])
	}
	fmt.Fprintf(tw, "setgate bench\t%s, %d issuer(s) × %d key(s), %s, %d event(s) per SET, %d connections\n",
		r.Target, r.Issuers, r.KeysPerIssuer, r.Alg, r.EventsPerSET, r.Concurrency)
	fmt.Fprintf(tw, "machine\t%d CPUs (GOMAXPROCS %d), load average %s before the run\n", r.NumCPU, r.GOMAXPROCS, load)
	if m := r.Memory; m != nil {
		// The gateway's issuers are the push issuers of the header line,
		// plus the poll issuer when the poll path is measured.
		which := ""
		if m.Issuers > r.Issuers {
			which = fmt.Sprintf(" (%d push, %d poll)", r.Issuers, m.Issuers-r.Issuers)
		}
		fmt.Fprintf(tw, "memory\t%+.1f MB Go heap\t%+.1f MB RSS to start the gateway with %d issuer(s)%s (%.1f KB heap per issuer, fixed part included); process %.1f MB heap, %.1f MB RSS after\n",
			m.HeapMB, m.RSSMB, m.Issuers, which, m.HeapPerIssuerKB, m.HeapAfterMB, m.RSSAfterMB)
	}
	if c := r.PlainCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling (0)\t%8.0f SETs/s\tgolang-jwt v5 jwt.Parse, %s, fixed public key, %d goroutines, %.1f s, %d SETs%s%s\n", c.SETsPerSec, r.Alg, c.Goroutines, c.Seconds, c.SETs, othersNote(c.OtherCPUCores), errNote(c.Errors, c.FirstError))
	}
	if c := r.VerifyCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling (a)\t%8.0f SETs/s\tverify only, %d goroutines, %.1f s, %d SETs%s%s\n", c.SETsPerSec, c.Goroutines, c.Seconds, c.SETs, othersNote(c.OtherCPUCores), errNote(c.Errors, c.FirstError))
	}
	if c := r.PublishCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling (b)\t%8.0f SETs/s\tverify + JetStream publish with PubAck, %d goroutines, %.1f s, %d SETs%s%s\n", c.SETsPerSec, c.Goroutines, c.Seconds, c.SETs, othersNote(c.OtherCPUCores), errNote(c.Errors, c.FirstError))
	}
	if p := r.Push; p != nil {
		r.writePush(tw, p)
	}
	if g := r.GatewayRSS; g != nil {
		writeRSS(tw, g)
	}
	if p := r.Poll; p != nil {
		fmt.Fprintf(tw, "poll\t%8.0f SETs/s\t%d events/s, %d SETs acknowledged in %.1f s (maxEvents %d)%s", p.SETsPerSec, int(p.EventsPerSec+0.5), p.SETs, p.Seconds, p.MaxEvents, othersNote(p.OtherCPUCores))
		if p.Reported > 0 || p.Error != "" {
			fmt.Fprintf(tw, "; %d reported in setErrs %s", p.Reported, p.Error)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "ratios\t%s\n", r.Ratios.text())
	fmt.Fprintf(tw, "check\t%s\n", r.checkText())
	return tw.Flush()
}

// writePush prints the push run's lines.
func (r *Report) writePush(w io.Writer, p *PushReport) {
	note := ""
	if p.OfferedRate > 0 {
		note = fmt.Sprintf(", open loop at %.0f SETs/s", p.OfferedRate)
	}
	if p.PoolExhausted {
		note += " (the pre-signed SETs ran out before the duration)"
	}
	fmt.Fprintf(w, "push\t%8.0f SETs/s\t%d events/s, %d SETs accepted of %d sent in %.1f s%s\n",
		p.SETsPerSec, int(p.EventsPerSec+0.5), p.SETs, p.Sent, p.Seconds, note)
	l := p.Latency
	fmt.Fprintf(w, "  latency\tp50 %.2f ms\tp90 %.2f ms, p99 %.2f ms, max %.2f ms (%d answers 202)\n", l.P50, l.P90, l.P99, l.Max, l.N)
	if g := p.Lag; g != nil {
		fmt.Fprintf(w, "  lag\tp50 %.2f ms\tp90 %.2f ms, p99 %.2f ms, max %.2f ms: requests written after their due time (included in latency)\n", g.P50, g.P90, g.P99, g.Max)
	}
	fmt.Fprintf(w, "  errors\t%s\n", errorsText(p.Errors))
	fmt.Fprintf(w, "  CPU\t%.1f s\t%.2f cores, %.0f µs per SET (%s)\n", p.CPUSeconds, p.CPUCores, p.CPUPerSET, p.UsageScope)
	if p.MachineCPUCores > 0 {
		fmt.Fprintf(w, "  machine\t%.2f cores busy\tof %d, %.2f of them by other processes during the run\n", p.MachineCPUCores, r.NumCPU, p.OtherCPUCores)
	}
	fmt.Fprintf(w, "  memory\t%.0f MB peak RSS\tduring the run; %.0f MB before it, of which %.0f MB pre-signed SETs\n", p.PeakRSSMB, p.RSSBeforeMB, p.PoolMB)
	if p.JWKSFetches >= 0 {
		fmt.Fprintf(w, "  JWKS\t%d fetches\tduring the run\n", p.JWKSFetches)
	}
}

// writeRSS prints the gateway's resident set readings as a small table.
func writeRSS(w io.Writer, g *RSSReport) {
	fmt.Fprintf(w, "gateway RSS\t%.0f MB max\t%s from %s, every %s and at the end\n",
		g.MaxMB, rssMetric, g.URL, time.Duration(g.IntervalSeconds*float64(time.Second)))
	fmt.Fprintf(w, "  minute\tRSS MB\n")
	for _, x := range g.Samples {
		if x.Error != "" {
			fmt.Fprintf(w, "  %.1f\t—\t%s\n", x.Minute, x.Error)
			continue
		}
		fmt.Fprintf(w, "  %.1f\t%.1f\n", x.Minute, x.RSSMB)
	}
}

// text prints the known ratios.
func (r Ratios) text() string {
	var parts []string
	add := func(name string, v *float64) {
		if v != nil {
			parts = append(parts, fmt.Sprintf("%s %.2f", name, *v))
		}
	}
	add("push / ceiling (0)", r.PushToPlain)
	add("push / ceiling (a)", r.PushToVerify)
	add("push / ceiling (b)", r.PushToPublish)
	add("poll / push", r.PollToPush)
	add("poll / ceiling (b)", r.PollToPublish)
	add("ceiling (a) / ceiling (0)", r.VerifyToPlain)
	if len(parts) == 0 {
		return "none (nothing to compare)"
	}
	return strings.Join(parts, ", ")
}

// checkText is the check's verdict in one line.
func (r *Report) checkText() string {
	v := r.Check
	if v == nil {
		return "skipped: " + r.CheckSkipped
	}
	if v.Passed {
		s := fmt.Sprintf("PASS: the stream holds the %d acknowledged SETs once each (%d messages) and nothing else", v.Acked, v.Messages)
		if v.StoredUnknown > 0 {
			s += fmt.Sprintf("; %d SETs answered 5xx or not at all were stored too (allowed: a retry gets a duplicate 202)", v.StoredUnknown)
		}
		return s
	}
	return fmt.Sprintf("FAIL: %d acknowledged, %d messages; missing %d, duplicated %d, unexpected %d, foreign %d, others %d: %s",
		v.Acked, v.Messages, v.Missing, v.Duplicated, v.Unexpected, v.Foreign, v.Others, strings.Join(v.Problems, "; "))
}

// errorsText lists error counts by kind, most frequent first.
func errorsText(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	kinds := slices.SortedFunc(maps.Keys(errs), func(a, b string) int {
		if errs[a] != errs[b] {
			return errs[b] - errs[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k, errs[k])
	}
	return strings.Join(parts, ", ")
}

// othersNote mentions the CPU other processes took, when it matters.
func othersNote(cores float64) string {
	if cores < 0.05 {
		return ""
	}
	return fmt.Sprintf(" (other processes: %.2f cores)", cores)
}

// errNote mentions a ceiling's errors, if any.
func errNote(n int, first string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d errors (first: %s)", n, first)
}
