package gateway

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/setgate/setgate/intake"
	"github.com/setgate/setgate/verify"
)

// Metrics counts what flows through setgate and exposes it, with the
// state reported by a [StateFunc], in the Prometheus format. Labels are
// bounded: issuer names, delivery, error codes and subject families come
// from configuration or closed sets, never from jti, sub or raw URIs.
type Metrics struct {
	reg *prometheus.Registry

	received    *prometheus.CounterVec
	accepted    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	unavailable *prometheus.CounterVec
	warnings    *prometheus.CounterVec
	events      *prometheus.CounterVec
	accept      *prometheus.HistogramVec
	publish     *prometheus.HistogramVec
	push        *prometheus.HistogramVec
	reloads     *prometheus.CounterVec

	mu     sync.Mutex
	counts map[string]*IssuerCounters
	series map[seriesKey]*issuerSeries // under mu

	// pushByCode caches push's histogram per status code.
	pushMu     sync.RWMutex
	pushByCode map[int]prometheus.Observer
}

// IssuerCounters are one issuer's totals since start, for /issuers.
type IssuerCounters struct {
	Received      map[intake.Delivery]uint64 `json:"received"`
	Accepted      map[intake.Delivery]uint64 `json:"accepted"`
	Duplicates    map[intake.Delivery]uint64 `json:"duplicates"`
	Rejected      map[verify.Code]uint64     `json:"rejected"`
	Unavailable   uint64                     `json:"not_persisted"`
	LastRejection *Rejection                 `json:"last_rejection,omitempty"`
}

// Rejection describes the last SET an issuer had refused.
type Rejection struct {
	Code        verify.Code     `json:"code"`
	Description string          `json:"description"`
	JTI         string          `json:"jti,omitempty"`
	Delivery    intake.Delivery `json:"delivery"`
	At          time.Time       `json:"at"`
}

// NewMetrics returns metrics registered with a fresh registry (with the Go
// and process collectors).
func NewMetrics() *Metrics {
	byIssuer := []string{"issuer", "delivery"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_received_total", Help: "SETs received, by issuer and delivery (push or poll).",
		}, byIssuer),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_accepted_total", Help: "SETs verified and stored in JetStream (duplicates included).",
		}, byIssuer),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_rejected_total", Help: "SETs rejected, by RFC 8935 error code.",
		}, []string{"issuer", "delivery", "code"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_duplicate_total", Help: "Accepted SETs that JetStream already held (not stored again).",
		}, byIssuer),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_not_persisted_total", Help: "Valid SETs that could not be stored (NATS down or slow): 503 or not acked.",
		}, byIssuer),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_sets_payload_warnings_total", Help: "Accepted SETs with payload faults tolerated by payload_validation: lenient (listed in the envelope's payload_warnings).",
		}, byIssuer),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_events_published_total", Help: "Events stored in JetStream, by issuer and subject family (caep, risc, ssf, ext, overrides).",
		}, []string{"issuer", "family"}),
		accept: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "setgate_accept_duration_seconds", Help: "Verify and publish of one SET, until every JetStream ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"delivery"}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "setgate_publish_duration_seconds", Help: "JetStream publish of one SET's events, until every ack.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"delivery"}),
		push: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "setgate_push_request_duration_seconds", Help: "Push requests, by HTTP status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setgate_config_reloads_total", Help: "Issuers file loads, by result (success or failure).",
		}, []string{"result"}),
		counts:     make(map[string]*IssuerCounters),
		series:     make(map[seriesKey]*issuerSeries),
		pushByCode: make(map[int]prometheus.Observer),
	}
	m.reg.MustRegister(m.received, m.accepted, m.rejected, m.duplicates, m.unavailable, m.warnings, m.events,
		m.accept, m.publish, m.push, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// Register adds a collector (such as [NewStateCollector]) to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Reload counts one load of the issuers file.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// Counters returns a copy of one issuer's totals.
func (m *Metrics) Counters(issuer string) IssuerCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counters(issuer)
	out := IssuerCounters{
		Received: cloneMap(c.Received), Accepted: cloneMap(c.Accepted), Duplicates: cloneMap(c.Duplicates),
		Rejected: cloneMap(c.Rejected), Unavailable: c.Unavailable,
	}
	if c.LastRejection != nil {
		r := *c.LastRejection
		out.LastRejection = &r
	}
	return out
}

func cloneMap[K comparable](m map[K]uint64) map[K]uint64 {
	out := make(map[K]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (m *Metrics) counters(issuer string) *IssuerCounters {
	c, ok := m.counts[issuer]
	if !ok {
		c = &IssuerCounters{
			Received: map[intake.Delivery]uint64{}, Accepted: map[intake.Delivery]uint64{},
			Duplicates: map[intake.Delivery]uint64{}, Rejected: map[verify.Code]uint64{},
		}
		m.counts[issuer] = c
	}
	return c
}

var _ intake.Observer = (*Metrics)(nil)

// Observe counts and times one SET the intake pipeline handled, pushed or
// polled, accepted or refused (before or during verification): the
// metrics are an [intake.Observer], so push and poll numbers come from
// one place.
func (m *Metrics) Observe(_ context.Context, ev intake.Event) {
	name, d := ev.Source.Name, ev.Delivery
	del := string(d)

	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.seriesLocked(name, d)
	counter(&s.received, m.received, name, del).Inc()
	c := m.counters(name)
	c.Received[d]++
	switch ev.Outcome {
	case intake.Accepted, intake.Duplicate:
		res := ev.Result
		counter(&s.accepted, m.accepted, name, del).Inc()
		if s.accept == nil {
			s.accept = m.accept.WithLabelValues(del)
			s.publish = m.publish.WithLabelValues(del)
		}
		s.accept.Observe(ev.Elapsed.Seconds())
		s.publish.Observe(res.PublishTime.Seconds())
		c.Accepted[d]++
		if res.SET != nil && len(res.SET.Warnings) > 0 {
			counter(&s.warnings, m.warnings, name, del).Inc()
		}
		if ev.Outcome == intake.Duplicate {
			counter(&s.duplicates, m.duplicates, name, del).Inc()
			c.Duplicates[d]++
			break
		}
		for _, subj := range res.Subjects {
			fam := family(subj)
			ctr, ok := s.events[fam]
			if !ok {
				ctr = m.events.WithLabelValues(name, fam)
				s.events[fam] = ctr
			}
			ctr.Inc()
		}
	case intake.Rejected:
		m.rejectedLocked(c, name, ev.Rejection, d, ev.ReceivedAt)
	default: // Unavailable, Failed: valid (or unverifiable) and not stored
		counter(&s.unavailable, m.unavailable, name, del).Inc()
		c.Unavailable++
	}
}

// seriesKey names the series of one issuer and delivery.
type seriesKey struct {
	issuer   string
	delivery intake.Delivery
}

// issuerSeries caches the series [Metrics.Observe] updates for one issuer
// and delivery, each looked up in its vector once, when first counted (so
// a series appears only once it has something to count, as before the
// cache).
type issuerSeries struct {
	received, accepted, duplicates, unavailable, warnings prometheus.Counter
	accept, publish                                       prometheus.Observer
	// events holds setgate_events_published_total by subject family
	// (the issuer's label is the key's).
	events map[string]prometheus.Counter
}

// seriesLocked returns the series cache of issuer and d; m.mu must be
// held.
func (m *Metrics) seriesLocked(issuer string, d intake.Delivery) *issuerSeries {
	k := seriesKey{issuer, d}
	s, ok := m.series[k]
	if !ok {
		s = &issuerSeries{events: make(map[string]prometheus.Counter)}
		m.series[k] = s
	}
	return s
}

// counter returns *c, first setting it to vec's series of issuer and
// delivery.
func counter(c *prometheus.Counter, vec *prometheus.CounterVec, issuer, delivery string) prometheus.Counter {
	if *c == nil {
		*c = vec.WithLabelValues(issuer, delivery)
	}
	return *c
}

// rejectedLocked counts one rejection of the issuer called name (whose
// counters are c), received at at, and remembers it as the last; m.mu
// must be held.
func (m *Metrics) rejectedLocked(c *IssuerCounters, name string, e *verify.Error, d intake.Delivery, at time.Time) {
	m.rejected.WithLabelValues(name, string(d), string(e.Code)).Inc()
	c.Rejected[e.Code]++
	c.LastRejection = &Rejection{Code: e.Code, Description: e.Description, JTI: e.JTI, Delivery: d, At: at}
}

// family is the second token of a subject (<prefix>.<family>.<event>.<issuer>).
func family(subject string) string {
	_, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return "unknown"
	}
	fam, _, _ := strings.Cut(rest, ".")
	return fam
}

// Instrument times every push request by its status code.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(&sw, r)
		m.pushObserver(sw.status).Observe(time.Since(start).Seconds())
	})
}

// pushObserver returns the push duration histogram of one status code,
// looked up once per code.
func (m *Metrics) pushObserver(status int) prometheus.Observer {
	m.pushMu.RLock()
	o, ok := m.pushByCode[status]
	m.pushMu.RUnlock()
	if ok {
		return o
	}
	o = m.push.WithLabelValues(strconv.Itoa(status))
	m.pushMu.Lock()
	m.pushByCode[status] = o
	m.pushMu.Unlock()
	return o
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// WriteString writes s without converting it to a []byte first when the
// wrapped writer can do that.
func (w *statusWriter) WriteString(s string) (int, error) {
	return io.WriteString(w.ResponseWriter, s)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StreamStats is the stream's fill level as the stream metrics show it
// (the bridge's stream monitor reads it from JetStream).
type StreamStats struct {
	// Bytes and Messages are what the stream holds now.
	Bytes, Messages uint64
	// MaxBytes is the stream's byte limit; -1 when it has none.
	MaxBytes int64
	// FirstAge is how old the oldest stored event is; 0 when the stream
	// is empty.
	FirstAge time.Duration
	// Discarded counts events removed before the stream's max age, seen
	// since the process started.
	Discarded uint64
}

// StreamStatsFunc reads the stream's fill level; setgate serve adapts the
// bridge's stream monitor to it.
type StreamStatsFunc func(context.Context) (StreamStats, error)

// streamCollector exposes the stream's fill level, read at scrape time.
type streamCollector struct {
	stats                                 StreamStatsFunc
	bytes, messages, maxBytes, age, discd *prometheus.Desc
}

// NewStreamCollector returns a collector of the stream metrics
// (setgate_stream_bytes, _messages, _max_bytes,
// _first_seq_age_seconds and setgate_stream_discarded_events_total),
// read from stats at scrape time. stats should be cheap and bounded (the
// bridge's stream monitor caches for a second and times out); when it
// fails, the scrape has none of these series.
func NewStreamCollector(stats StreamStatsFunc) prometheus.Collector {
	return &streamCollector{
		stats: stats,
		bytes: prometheus.NewDesc("setgate_stream_bytes",
			"Bytes the JetStream stream holds, as JetStream counts them (subject, headers, body, per-message overhead).", nil, nil),
		messages: prometheus.NewDesc("setgate_stream_messages",
			"Events the JetStream stream holds.", nil, nil),
		maxBytes: prometheus.NewDesc("setgate_stream_max_bytes",
			"The stream's byte limit (SETGATE_STREAM_MAX_BYTES); -1 when it has none.", nil, nil),
		age: prometheus.NewDesc("setgate_stream_first_seq_age_seconds",
			"Age of the oldest event in the stream; 0 when it is empty.", nil, nil),
		discd: prometheus.NewDesc("setgate_stream_discarded_events_total",
			"Events removed from the stream before its max age (discard old making room, or an operator's delete or purge), seen by this process since it started.",
			nil, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.messages
	ch <- c.maxBytes
	ch <- c.age
	ch <- c.discd
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.stats(context.Background())
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(st.Messages))
	ch <- prometheus.MustNewConstMetric(c.maxBytes, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, st.FirstAge.Seconds())
	ch <- prometheus.MustNewConstMetric(c.discd, prometheus.CounterValue, float64(st.Discarded))
}
