package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setgate/setgate/poller"
	"github.com/setgate/setgate/poller/ssf"
	"github.com/setgate/setgate/verify"
)

// State is what setgate knows about itself at one moment: the issuers
// file it runs on, NATS, and each issuer (configuration without secrets,
// JWKS cache, poll loop, counters). /issuers serves it as JSON and the
// state collector turns it into metrics.
type State struct {
	Config  ConfigState   `json:"config"`
	NATS    NATSState     `json:"nats"`
	Issuers []IssuerState `json:"issuers"`
}

// ConfigState is the result of the last load of the issuers file.
type ConfigState struct {
	File string `json:"file"`
	// Hash is the SHA-256 of the file in force (hex, first 16 digits).
	Hash     string    `json:"hash"`
	LoadedAt time.Time `json:"loaded_at"`
	// LastAttemptAt and LastError describe the last load; a failed load
	// leaves the previous configuration in force.
	LastAttemptAt time.Time `json:"last_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
}

// NATSState is the connection to NATS.
type NATSState struct {
	Connected bool   `json:"connected"`
	URL       string `json:"url"`
	Stream    string `json:"stream"`
}

// IssuerState is one issuer as it runs.
type IssuerState struct {
	Name              string         `json:"name"`
	Issuer            string         `json:"issuer"`
	Audience          []string       `json:"audience"`
	JWKSURI           string         `json:"jwks_uri"`
	Algorithms        []string       `json:"algorithms"`
	Profile           verify.Profile `json:"profile"`
	PayloadValidation string         `json:"payload_validation"`
	Push              bool           `json:"push"`
	// DiscoveryError is the last failure to read the issuer's SSF
	// metadata; while the issuer has never read it, its pushes get 503.
	DiscoveryError string           `json:"discovery_error,omitempty"`
	JWKS           verify.KeyStatus `json:"jwks"`
	// Poll is the issuer's poll loop, nil when it does not poll.
	Poll     *poller.Status `json:"poll,omitempty"`
	Stream   *StreamState   `json:"stream,omitempty"`
	Counters IssuerCounters `json:"counters"`
}

// StreamState is an issuer's OpenID Shared Signals stream as setgate
// manages it.
type StreamState struct {
	// Healthy is false while the stream is not set up, is paused or
	// disabled, or a requested verification event did not arrive in time.
	Healthy bool `json:"healthy"`
	// Status is the transmitter's stream status: enabled, paused, disabled.
	Status string `json:"status,omitempty"`
	// Detail is the stream manager's full status (stream_id, delivery,
	// verification, events delivered and missing, last error).
	Detail ssf.ManagerStatus `json:"detail"`
}

// StateFunc reports the current State.
type StateFunc func(ctx context.Context) State

func (s *Server) handleIssuers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.cfg.State(r.Context()))
}

// stateCollector exports the State as metrics at each scrape.
type stateCollector struct {
	state StateFunc

	jwksFetches, jwksFailures, jwksKeys, jwksLast                                 *prometheus.Desc
	jwksSkipped                                                                   *prometheus.Desc
	pollRequests, pollReceived, pollAcked, pollSetErrs, pollFailures, pollBackoff *prometheus.Desc
	pollLastSuccess, pollLease, natsConnected, configInfo, configOK, configLoaded *prometheus.Desc
	streamHealthy, streamStatus                                                   *prometheus.Desc
}

// NewStateCollector returns a collector that reports JWKS caches, poll
// loops, the NATS connection and the issuers file from state.
func NewStateCollector(state StateFunc) prometheus.Collector {
	issuer := []string{"issuer"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &stateCollector{
		state:           state,
		jwksFetches:     d("setgate_jwks_fetches_total", "JWKS fetches (start, periodic, unknown kid).", issuer),
		jwksFailures:    d("setgate_jwks_fetch_failures_total", "JWKS fetches that failed (network, status, size, parse).", issuer),
		jwksKeys:        d("setgate_jwks_keys", "Keys in the issuer's JWKS cache.", issuer),
		jwksLast:        d("setgate_jwks_last_fetch_timestamp_seconds", "When the JWKS was last fetched (Unix time).", issuer),
		jwksSkipped:     d("setgate_jwks_keys_skipped_total", "JWKS keys not used, by reason (private_member, symmetric, unparsable, weak, unsupported), counted per response.", []string{"issuer", "reason"}),
		pollRequests:    d("setgate_poll_requests_total", "Poll requests answered with 200.", issuer),
		pollReceived:    d("setgate_poll_sets_received_total", "SETs returned by poll requests.", issuer),
		pollAcked:       d("setgate_poll_acked_total", "jtis acknowledged to the transmitter.", issuer),
		pollSetErrs:     d("setgate_poll_set_errs_total", "jtis reported in setErrs.", issuer),
		pollFailures:    d("setgate_poll_consecutive_failures", "Failed polls since the last success.", issuer),
		pollBackoff:     d("setgate_poll_backoff_seconds", "Time until the next poll while backing off (0 when not).", issuer),
		pollLastSuccess: d("setgate_poll_last_success_timestamp_seconds", "When the last poll was answered (Unix time); time() minus this is the poll lag.", issuer),
		pollLease:       d("setgate_poll_lease_held", "1 when this replica holds the issuer's poll lease.", issuer),
		natsConnected:   d("setgate_nats_connected", "1 when the NATS connection is up.", nil),
		configInfo:      d("setgate_config_info", "The issuers file in force (value 1), by hash.", []string{"hash"}),
		configOK:        d("setgate_config_last_load_success", "1 when the last load of the issuers file succeeded.", nil),
		configLoaded:    d("setgate_config_loaded_timestamp_seconds", "When the configuration in force was loaded (Unix time).", nil),
		streamHealthy:   d("setgate_ssf_stream_healthy", "1 when the issuer's SSF stream is set up, enabled and verified in time.", issuer),
		streamStatus:    d("setgate_ssf_stream_status", "The SSF stream status reported by the transmitter (value 1).", []string{"issuer", "status"}),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jwksFetches, c.jwksFailures, c.jwksKeys, c.jwksLast, c.jwksSkipped, c.pollRequests,
		c.pollReceived, c.pollAcked, c.pollSetErrs, c.pollFailures, c.pollBackoff, c.pollLastSuccess, c.pollLease,
		c.natsConnected, c.configInfo, c.configOK, c.configLoaded, c.streamHealthy, c.streamStatus} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := c.state(ctx)
	now := time.Now()
	put := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	for _, is := range st.Issuers {
		put(c.jwksFetches, prometheus.CounterValue, float64(is.JWKS.Fetches), is.Name)
		put(c.jwksFailures, prometheus.CounterValue, float64(is.JWKS.Failures), is.Name)
		put(c.jwksKeys, prometheus.GaugeValue, float64(is.JWKS.Keys), is.Name)
		put(c.jwksLast, prometheus.GaugeValue, unix(is.JWKS.LastFetch), is.Name)
		for _, r := range verify.SkipReasons() {
			put(c.jwksSkipped, prometheus.CounterValue, float64(is.JWKS.SkippedTotal[r]), is.Name, string(r))
		}
		if p := is.Poll; p != nil {
			put(c.pollRequests, prometheus.CounterValue, float64(p.Polls), is.Name)
			put(c.pollReceived, prometheus.CounterValue, float64(p.Received), is.Name)
			put(c.pollAcked, prometheus.CounterValue, float64(p.Acked), is.Name)
			put(c.pollSetErrs, prometheus.CounterValue, float64(p.SetErrs), is.Name)
			put(c.pollFailures, prometheus.GaugeValue, float64(p.ConsecutiveFailures), is.Name)
			put(c.pollBackoff, prometheus.GaugeValue, max(0, p.NextAttempt.Sub(now).Seconds()), is.Name)
			put(c.pollLastSuccess, prometheus.GaugeValue, unix(p.LastPoll), is.Name)
			put(c.pollLease, prometheus.GaugeValue, boolValue(p.LeaseHeld), is.Name)
		}
		if st := is.Stream; st != nil {
			put(c.streamHealthy, prometheus.GaugeValue, boolValue(st.Healthy), is.Name)
			if st.Status != "" {
				put(c.streamStatus, prometheus.GaugeValue, 1, is.Name, st.Status)
			}
		}
	}
	put(c.natsConnected, prometheus.GaugeValue, boolValue(st.NATS.Connected))
	put(c.configInfo, prometheus.GaugeValue, 1, st.Config.Hash)
	put(c.configOK, prometheus.GaugeValue, boolValue(st.Config.LastError == ""))
	put(c.configLoaded, prometheus.GaugeValue, unix(st.Config.LoadedAt))
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
