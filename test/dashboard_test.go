package test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/setgate/setgate/internal/transmitter"
)

// The monitoring assets of the Helm chart, and the chart test that holds the allow-list of
// metric families they may query.
const (
	dashboardFile  = "../charts/setgate/dashboards/setgate.json"
	ruleTemplate   = "../charts/setgate/templates/prometheusrule.yaml"
	chartTestFile  = "../charts/setgate/chart_test.go"
	allowListVar   = "exportedMetrics"
	gatewaySources = "../gateway"
)

var (
	setgateMetric   = regexp.MustCompile(`setgate_[a-z_]+`)
	histogramSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)
)

// referencedMetrics returns the metric families named in file, histogram series mapped to
// their family.
func referencedMetrics(t *testing.T, file string) []string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range setgateMetric.FindAllString(string(raw), -1) {
		n = histogramSuffix.ReplaceAllString(n, "")
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s names no setgate metric", file)
	}
	return out
}

// chartAllowList reads the string literals of the chart test's exportedMetrics variable.
func chartAllowList(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), chartTestFile, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != allowListVar || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: %s is not a composite literal", chartTestFile, allowListVar)
		}
		for _, e := range lit.Elts {
			bl, ok := e.(*ast.BasicLit)
			if !ok || bl.Kind != token.STRING {
				t.Fatalf("%s: %s holds a non-literal", chartTestFile, allowListVar)
			}
			s, err := strconv.Unquote(bl.Value)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, s)
		}
		return false
	})
	if len(names) == 0 {
		t.Fatalf("%s: no %s allow-list", chartTestFile, allowListVar)
	}
	return names
}

// declaredInSource reports whether a non-test Go file of the gateway package declares the
// metric name (as a quoted string, where prometheus.CounterOpts or NewDesc name it).
func declaredInSource(t *testing.T, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(gatewaySources, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go sources in %s: %v", gatewaySources, err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), strconv.Quote(name)) {
			return true
		}
	}
	return false
}

// sourceOnlyOK are families this test's gateway cannot show in a scrape: poll and SSF state
// appear only with a poll or SSF issuer, not-persisted SETs only with NATS down, payload
// warnings only with a lenient issuer. They must at least be declared in gateway/*.go.
func sourceOnlyOK(name string) bool {
	return strings.HasPrefix(name, "setgate_poll_") || strings.HasPrefix(name, "setgate_ssf_") ||
		name == "setgate_sets_not_persisted_total" || name == "setgate_sets_payload_warnings_total"
}

// TestDashboardMetricsExported: every metric family the chart's Grafana dashboard and
// PrometheusRule query, and every name in the chart test's allow-list, is exported by the
// real binary: present in a scrape of /metrics after traffic, or (for families that need a
// poll or SSF issuer, NATS down or a lenient issuer) declared in the gateway's sources.
func TestDashboardMetricsExported(t *testing.T) {
	allow := chartAllowList(t)
	want := map[string][]string{} // family -> where it is named
	for _, n := range allow {
		want[n] = append(want[n], "allow-list")
	}
	for _, file := range []string{dashboardFile, ruleTemplate} {
		for _, n := range referencedMetrics(t, file) {
			want[n] = append(want[n], filepath.Base(file))
			if !slices.Contains(allow, n) {
				t.Errorf("%s names %s, which is not in the chart test's %s", file, n, allowListVar)
			}
		}
	}

	g := startGateway(t, gwOptions{})
	// Counters with labels appear once used: accept one SET, accept it again (duplicate),
	// and reject one (wrong audience).
	jti, resp := g.pushAcme(t)
	if resp.Status != 202 {
		t.Fatalf("push: want 202, got %d %s", resp.Status, resp.Body)
	}
	_, set, err := g.acme.SET(transmitter.SessionRevoked, nil, "bob@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := g.pushAs(t, "acme", g.acmeToken, set); r.Status != 202 {
			t.Fatalf("push: want 202, got %d %s", r.Status, r.Body)
		}
	}
	bad := g.acme.Claims(transmitter.SessionRevoked, nil, "eve@acme.example")
	bad["aud"] = "https://elsewhere.example/"
	badSET, err := g.acme.Sign(bad)
	if err != nil {
		t.Fatal(err)
	}
	if r := g.pushAs(t, "acme", g.acmeToken, badSET); r.Status != 400 {
		t.Fatalf("push with a wrong audience: want 400, got %d %s", r.Status, r.Body)
	}
	t.Logf("pushed %s and three more SETs", jti)

	fams := scrape(t, g)
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	var scraped, sourceOnly []string
	for _, n := range names {
		if f, ok := fams[n]; ok && len(f.GetMetric()) > 0 {
			scraped = append(scraped, n)
			continue
		}
		switch {
		case !declaredInSource(t, n):
			t.Errorf("%s (named in %s) is neither in the scrape nor declared in %s", n, strings.Join(want[n], ", "), gatewaySources)
		case !sourceOnlyOK(n):
			t.Errorf("%s (named in %s) is declared in %s but missing from the scrape after traffic", n, strings.Join(want[n], ", "), gatewaySources)
		default:
			sourceOnly = append(sourceOnly, n)
		}
	}
	t.Logf("%d families checked: %d in the scrape, %d only declared in gateway/*.go (need a poll or SSF issuer, NATS down, or a lenient issuer): %v",
		len(names), len(scraped), len(sourceOnly), sourceOnly)
}
