package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/setgate/setgate/internal/transmitter"
)

// scrape reads the gateway's /metrics and parses the exposition format.
func scrape(t testing.TB, g *gatewayProc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include
// want (counter, gauge, or a histogram's sample count); -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetricsCountTheMix pushes a scripted mix and checks the scraped
// counters equal it exactly.
func TestMetricsCountTheMix(t *testing.T) {
	g := startGateway(t, gwOptions{})
	rogue := newTransmitter(t, "ES256")

	var sets []string
	for i := range 3 {
		_, tok, err := g.acme.SET(transmitter.SessionRevoked, nil, fmt.Sprintf("u%d@acme.example", i))
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, tok)
	}
	_, risc, err := g.acme.SET(transmitter.AccountDisabled, map[string]any{"reason": "hijacking"}, "r@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	wrongAud := g.acme.Claims(transmitter.SessionRevoked, nil, "x@acme.example")
	wrongAud["aud"] = "https://elsewhere.example/"
	badAud, _ := g.acme.Sign(wrongAud)
	var rogueSETs []string
	for range 2 {
		c := rogue.Claims(transmitter.SessionRevoked, nil, "y@acme.example")
		c["iss"] = g.acme.Issuer()
		tok, _ := rogue.Sign(c)
		rogueSETs = append(rogueSETs, tok)
	}

	want202 := append(append(append([]string{}, sets...), risc), sets[0], sets[1]) // 4 new + 2 retries
	for _, set := range want202 {
		if r := g.pushAs(t, "acme", g.acmeToken, set); r.Status != 202 {
			t.Fatalf("want 202, got %d %s", r.Status, r.Body)
		}
	}
	for _, set := range append([]string{badAud}, rogueSETs...) {
		if r := g.pushAs(t, "acme", g.acmeToken, set); r.Status != 400 {
			t.Fatalf("want 400, got %d %s", r.Status, r.Body)
		}
	}
	if r := g.pushAs(t, "acme", "wrong", sets[2]); r.Status != 401 {
		t.Fatalf("want 401, got %d", r.Status)
	}

	fams := scrape(t, g)
	acme := map[string]string{"issuer": "acme", "delivery": "push"}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"setgate_sets_received_total", acme, 9},
		{"setgate_sets_accepted_total", acme, 6},
		{"setgate_sets_duplicate_total", acme, 2},
		{"setgate_sets_not_persisted_total", acme, -1},
		{"setgate_sets_rejected_total", map[string]string{"issuer": "acme", "code": "invalid_audience"}, 1},
		{"setgate_sets_rejected_total", map[string]string{"issuer": "acme", "code": "invalid_key"}, 2},
		{"setgate_events_published_total", map[string]string{"issuer": "acme", "family": "caep"}, 3},
		{"setgate_events_published_total", map[string]string{"issuer": "acme", "family": "risc"}, 1},
		{"setgate_accept_duration_seconds", map[string]string{"delivery": "push"}, 6},
		{"setgate_push_request_duration_seconds", map[string]string{"code": "202"}, 6},
		{"setgate_push_request_duration_seconds", map[string]string{"code": "400"}, 3},
		{"setgate_push_request_duration_seconds", map[string]string{"code": "401"}, 1},
		{"setgate_jwks_keys", map[string]string{"issuer": "acme"}, 1},
		{"setgate_nats_connected", nil, 1},
		{"setgate_config_last_load_success", nil, 1},
		{"setgate_config_reloads_total", map[string]string{"result": "failure"}, 0},
	} {
		if got := value(fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v: want %v, got %v", tt.name, tt.labels, tt.want, got)
		}
	}
	if got := value(fams, "setgate_jwks_fetches_total", map[string]string{"issuer": "acme"}); got < 1 {
		t.Errorf("setgate_jwks_fetches_total{acme}: want >= 1, got %v", got)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go collector missing")
	}

	// /issuers shows the same counts and the last rejection, and no secret.
	body := getBody(t, "http://"+g.admin+"/issuers")
	if strings.Contains(body, g.acmeToken) || strings.Contains(body, g.globexToken) {
		t.Fatal("/issuers leaks a bearer token")
	}
	var st struct {
		Config  struct{ Hash, LastError string } `json:"config"`
		Issuers []struct {
			Name     string
			Counters struct {
				Accepted      map[string]int         `json:"accepted"`
				Rejected      map[string]int         `json:"rejected"`
				LastRejection *struct{ Code string } `json:"last_rejection"`
			}
			JWKS struct{ Keys int }
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/issuers: %v\n%s", err, body)
	}
	if st.Config.Hash == "" || st.Config.LastError != "" || len(st.Issuers) != 2 || st.Issuers[0].Name != "acme" {
		t.Fatalf("/issuers: unexpected %s", body)
	}
	a := st.Issuers[0]
	if a.Counters.Accepted["push"] != 6 || a.Counters.Rejected["invalid_key"] != 2 || a.Counters.LastRejection == nil ||
		a.Counters.LastRejection.Code != "invalid_key" || a.JWKS.Keys != 1 {
		t.Fatalf("/issuers acme: unexpected %s", body)
	}
}

func getBody(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHotReload changes the issuers file under a running gateway: the
// file is a ConfigMap-style symlink (issuers.yaml -> ..data/issuers.yaml,
// ..data -> a timestamped directory), swapped atomically each time.
func TestHotReload(t *testing.T) {
	is := newIssuers(t)
	original, err := os.ReadFile(is.file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	version := 0
	swap := func(content string) {
		t.Helper()
		version++
		ts := filepath.Join(dir, fmt.Sprintf("..v%d", version))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(ts, "issuers.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap(string(original))
	link := filepath.Join(dir, "issuers.yaml")
	if err := os.Symlink(filepath.Join("..data", "issuers.yaml"), link); err != nil {
		t.Fatal(err)
	}
	is.file = link
	g := startGateway(t, gwOptions{Issuers: is})

	// Add an issuer: its pushes are accepted without a restart.
	initech := newTransmitter(t, "ES256")
	tokFile := filepath.Join(t.TempDir(), "initech.token")
	writeFile(t, tokFile, "initech-token\n")
	added := string(original) + fmt.Sprintf(`  - name: initech
    issuer: %s
    audience: [%s]
    jwks_uri: %s
    algorithms: [ES256]
    push:
      bearer_token_file: %s
`, initech.Issuer(), audience, initech.JWKSURL(), tokFile)
	swap(added)
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, tok, _ := initech.SET(transmitter.SessionRevoked, nil, "i@initech.example")
		if r := g.pushAs(t, "initech", "initech-token", tok); r.Status != 202 {
			return fmt.Errorf("initech push: %d %s", r.Status, r.Body)
		}
		return nil
	})

	// Break the file: the old configuration keeps serving, /issuers shows
	// the error naming the issuer and key, the failure is counted.
	swap(strings.Replace(added, "    algorithms: [ES256]\n    push:\n      bearer_token_file: "+tokFile, "    algorithms: [ES256]\n    colour: blue\n    push:\n      bearer_token_file: "+tokFile, 1))
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if got := value(scrape(t, g), "setgate_config_reloads_total", map[string]string{"result": "failure"}); got != 1 {
			return fmt.Errorf("reload failures: %v", got)
		}
		return nil
	})
	body := getBody(t, "http://"+g.admin+"/issuers")
	if !strings.Contains(body, `issuer \"initech\": colour: unknown key`) {
		t.Fatalf("/issuers does not show the error naming issuer and key:\n%s", body)
	}
	if got := value(scrape(t, g), "setgate_config_last_load_success", nil); got != 0 {
		t.Fatalf("setgate_config_last_load_success: want 0, got %v", got)
	}
	_, tok, _ := initech.SET(transmitter.SessionRevoked, nil, "j@initech.example")
	if r := g.pushAs(t, "initech", "initech-token", tok); r.Status != 202 {
		t.Fatalf("old configuration should keep serving initech: %d %s", r.Status, r.Body)
	}

	// Remove globex (and fix the file): globex is 404, the others serve.
	without := strings.SplitN(string(original), "  - name: globex", 2)[0]
	swap(without)
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, tok, _ := g.globex.SET(transmitter.SessionRevoked, nil, "g@globex.example")
		if r := g.pushAs(t, "globex", g.globexToken, tok); r.Status != 404 {
			return fmt.Errorf("globex push: want 404, got %d", r.Status)
		}
		return nil
	})
	_, tok, _ = g.acme.SET(transmitter.SessionRevoked, nil, "a@acme.example")
	if r := g.pushAs(t, "acme", g.acmeToken, tok); r.Status != 202 {
		t.Fatalf("acme after reload: %d %s", r.Status, r.Body)
	}
	if got := value(scrape(t, g), "setgate_config_reloads_total", map[string]string{"result": "success"}); got != 2 {
		t.Fatalf("reload successes: want 2, got %v", got)
	}
	if got := value(scrape(t, g), "setgate_config_last_load_success", nil); got != 1 {
		t.Fatalf("setgate_config_last_load_success: want 1, got %v", got)
	}

	// SIGHUP reloads even an unchanged file.
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if got := value(scrape(t, g), "setgate_config_reloads_total", map[string]string{"result": "success"}); got != 3 {
			return fmt.Errorf("reload successes after SIGHUP: want 3, got %v", got)
		}
		return nil
	})
}
