package chart_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"
)

const (
	releaseName = "sg"
	namespace   = "secevents"
	fullname    = "sg-setgate"
	// kubeVersion is the cluster version the chart is rendered for. A helm built with
	// `go install` reports Kubernetes v1.20 for client-only rendering, below the chart's
	// kubeVersion constraint, so the tests (and .ci/chart-check) name one.
	kubeVersion = "v1.34.0"
)

// valueSet describes one values set the way the helm CLI takes it: -f files, then --set,
// --set-string and --set-json.
type valueSet struct {
	files     []string
	set       []string
	setString []string
	setJSON   []string
}

// rendered is one release rendered in client-only mode, every manifest decoded strictly.
type rendered struct {
	notes      string
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	pvcs       map[string]*corev1.PersistentVolumeClaim
	sa         *corev1.ServiceAccount
	ingress    *networkingv1.Ingress
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	pdb        *policyv1.PodDisruptionBudget
	netpol     *networkingv1.NetworkPolicy
	monitor    *serviceMonitor
	rule       *prometheusRule
	kinds      []string // "Kind/name" of every object, sorted
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor the chart renders;
// strict decoding rejects any field the chart renders that is not declared here.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the part of the Prometheus Operator's PrometheusRule the chart renders;
// strict decoding rejects any field the chart renders that is not declared here.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// wantAPIVersion is the apiVersion each kind the chart renders must have.
var wantAPIVersion = map[string]string{
	"ConfigMap":               "v1",
	"Secret":                  "v1",
	"Service":                 "v1",
	"ServiceAccount":          "v1",
	"PersistentVolumeClaim":   "v1",
	"Deployment":              "apps/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"Ingress":                 "networking.k8s.io/v1",
	"NetworkPolicy":           "networking.k8s.io/v1",
	"PodDisruptionBudget":     "policy/v1",
	"ServiceMonitor":          "monitoring.coreos.com/v1",
	"PrometheusRule":          "monitoring.coreos.com/v1",
}

// render installs the chart in client-only dry-run mode, as `helm install --dry-run=client`
// does: values are merged, checked against values.schema.json, and the templates rendered.
func render(t testing.TB, v valueSet) (*rendered, error) {
	t.Helper()
	chrt, err := loader.Load(".")
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	opts := values.Options{ValueFiles: v.files, Values: v.set, StringValues: v.setString, JSONValues: v.setJSON}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("merge values: %v", err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install.KubeVersion = kv
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	r := decodeManifests(t, rel.Manifest)
	r.notes = rel.Info.Notes
	return r, nil
}

// mustRender renders and fails the test on an error.
func mustRender(t testing.TB, v valueSet) *rendered {
	t.Helper()
	r, err := render(t, v)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decodeManifests splits the release manifest and decodes each object strictly: duplicate
// keys and fields unknown to the k8s.io/api type fail the test.
func decodeManifests(t testing.TB, manifest string) *rendered {
	t.Helper()
	r := &rendered{
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		pvcs:       map[string]*corev1.PersistentVolumeClaim{},
	}
	for _, doc := range docSeparator.Split(manifest, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		decodeStrictInto(t, doc, &tm, false)
		want, ok := wantAPIVersion[tm.Kind]
		if !ok {
			t.Fatalf("unexpected kind %q in:\n%s", tm.Kind, doc)
		}
		if tm.APIVersion != want {
			t.Errorf("%s: want apiVersion %q, got %q", tm.Kind, want, tm.APIVersion)
		}
		var meta metav1.ObjectMeta
		switch tm.Kind {
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			decodeStrictInto(t, doc, o, true)
			r.configMaps[o.Name], meta = o, o.ObjectMeta
		case "Secret":
			o := &corev1.Secret{}
			decodeStrictInto(t, doc, o, true)
			r.secrets[o.Name], meta = o, o.ObjectMeta
		case "PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			decodeStrictInto(t, doc, o, true)
			r.pvcs[o.Name], meta = o, o.ObjectMeta
		case "Service":
			r.service = once(t, r.service, &corev1.Service{}, doc)
			meta = r.service.ObjectMeta
		case "ServiceAccount":
			r.sa = once(t, r.sa, &corev1.ServiceAccount{}, doc)
			meta = r.sa.ObjectMeta
		case "Deployment":
			r.deployment = once(t, r.deployment, &appsv1.Deployment{}, doc)
			meta = r.deployment.ObjectMeta
		case "HorizontalPodAutoscaler":
			r.hpa = once(t, r.hpa, &autoscalingv2.HorizontalPodAutoscaler{}, doc)
			meta = r.hpa.ObjectMeta
		case "Ingress":
			r.ingress = once(t, r.ingress, &networkingv1.Ingress{}, doc)
			meta = r.ingress.ObjectMeta
		case "NetworkPolicy":
			r.netpol = once(t, r.netpol, &networkingv1.NetworkPolicy{}, doc)
			meta = r.netpol.ObjectMeta
		case "PodDisruptionBudget":
			r.pdb = once(t, r.pdb, &policyv1.PodDisruptionBudget{}, doc)
			meta = r.pdb.ObjectMeta
		case "ServiceMonitor":
			r.monitor = once(t, r.monitor, &serviceMonitor{}, doc)
			meta = r.monitor.ObjectMeta
		case "PrometheusRule":
			r.rule = once(t, r.rule, &prometheusRule{}, doc)
			meta = r.rule.ObjectMeta
		}
		checkMeta(t, tm.Kind, meta)
		r.kinds = append(r.kinds, tm.Kind+"/"+meta.Name)
	}
	sort.Strings(r.kinds)
	if r.deployment == nil || r.service == nil {
		t.Fatalf("no Deployment or Service rendered; got %v", r.kinds)
	}
	return r
}

// once decodes doc into o, failing if an object of that kind was already rendered.
func once[T any](t testing.TB, have *T, o *T, doc string) *T {
	t.Helper()
	if have != nil {
		t.Fatalf("two objects of one kind:\n%s", doc)
	}
	decodeStrictInto(t, doc, o, true)
	return o
}

// decodeStrictInto converts YAML to JSON (duplicate keys are errors) and decodes it into o;
// with strict, a field o does not have is an error too.
func decodeStrictInto(t testing.TB, doc string, o any, strict bool) {
	t.Helper()
	j, err := sigsyaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		t.Fatalf("yaml: %v\n%s", err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(o); err != nil {
		t.Fatalf("decode %T: %v\n%s", o, err, doc)
	}
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// checkMeta checks what the API server would: a DNS-1123 name in the release namespace,
// valid label keys and values, the chart's standard labels.
func checkMeta(t testing.TB, kind string, m metav1.ObjectMeta) {
	t.Helper()
	for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
		t.Errorf("%s name %q: %s", kind, m.Name, msg)
	}
	if m.Namespace != namespace {
		t.Errorf("%s/%s: want namespace %q, got %q", kind, m.Name, namespace, m.Namespace)
	}
	checkLabels(t, kind+"/"+m.Name, m.Labels)
	for k, want := range map[string]string{
		"app.kubernetes.io/name":       "setgate",
		"app.kubernetes.io/instance":   releaseName,
		"app.kubernetes.io/managed-by": "Helm",
	} {
		if got := m.Labels[k]; got != want {
			t.Errorf("%s/%s: want label %s=%q, got %q", kind, m.Name, k, want, got)
		}
	}
}

func checkLabels(t testing.TB, where string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, msg := range content.IsLabelKey(k) {
			t.Errorf("%s: label key %q: %s", where, k, msg)
		}
		for _, msg := range content.IsLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", where, k, v, msg)
		}
	}
}

// env returns the SETGATE_* settings of the env ConfigMap.
func (r *rendered) env(t testing.TB) map[string]string {
	t.Helper()
	cm, ok := r.configMaps[fullname+"-env"]
	if !ok {
		t.Fatalf("no ConfigMap %s-env; got %v", fullname, r.kinds)
	}
	return cm.Data
}

func (r *rendered) container(t testing.TB) corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "setgate" {
		t.Fatalf("want one container named setgate, got %d", len(cs))
	}
	return cs[0]
}

func (r *rendered) volume(name string) (corev1.Volume, bool) {
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

// fileSource tells which object provides the file at p inside the container: it finds the
// volume mounted over p and checks that the volume has the file. Files from Secrets the chart
// does not render (existingSecret) count as provided when they are listed by key or when the
// whole Secret is projected.
func (r *rendered) fileSource(t testing.TB, p string) (string, error) {
	t.Helper()
	var mount corev1.VolumeMount
	for _, m := range r.container(t).VolumeMounts {
		if strings.HasPrefix(p, m.MountPath+"/") && len(m.MountPath) > len(mount.MountPath) {
			mount = m
		}
	}
	if mount.Name == "" {
		return "", fmt.Errorf("no volume mounted over %s", p)
	}
	rel := strings.TrimPrefix(p, mount.MountPath+"/")
	vol, ok := r.volume(mount.Name)
	if !ok {
		return "", fmt.Errorf("mount %s names no volume", mount.Name)
	}
	switch {
	case vol.ConfigMap != nil:
		cm, ok := r.configMaps[vol.ConfigMap.Name]
		if !ok {
			return "", fmt.Errorf("volume %s: ConfigMap %s is not rendered", vol.Name, vol.ConfigMap.Name)
		}
		if _, ok := cm.Data[rel]; !ok {
			return "", fmt.Errorf("ConfigMap %s has no key %s", cm.Name, rel)
		}
		return "configmap/" + cm.Name, nil
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			if src.Secret == nil {
				continue
			}
			key, listed := rel, len(src.Secret.Items) == 0
			for _, it := range src.Secret.Items {
				if it.Path == rel {
					key, listed = it.Key, true
				}
			}
			if !listed {
				continue
			}
			if s, ours := r.secrets[src.Secret.Name]; ours {
				if _, ok := s.Data[key]; !ok {
					if len(src.Secret.Items) == 0 {
						continue // another source may project it
					}
					return "", fmt.Errorf("Secret %s has no key %s", s.Name, key)
				}
			}
			return "secret/" + src.Secret.Name + "/" + key, nil
		}
		return "", fmt.Errorf("no source of volume %s provides %s", vol.Name, rel)
	}
	return "", fmt.Errorf("volume %s mounted over %s is not a ConfigMap or Secret projection", vol.Name, p)
}

// issuerFiles returns every *_file path named in the rendered issuers file.
func (r *rendered) issuerFiles(t testing.TB) []string {
	t.Helper()
	cm, ok := r.configMaps[fullname+"-issuers"]
	if !ok {
		t.Fatalf("no ConfigMap %s-issuers", fullname)
	}
	var doc map[string]any
	if err := sigsyaml.UnmarshalStrict([]byte(cm.Data["issuers.yaml"]), &doc); err != nil {
		t.Fatalf("issuers.yaml: %v", err)
	}
	if _, ok := doc["issuers"].([]any); !ok {
		t.Fatalf("issuers.yaml: want a top-level issuers list, got %v", doc)
	}
	var files []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && strings.HasSuffix(k, "_file") {
					files = append(files, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	sort.Strings(files)
	return files
}

// checkInvariants holds for every values set the chart accepts.
func checkInvariants(t *testing.T, r *rendered) {
	t.Helper()
	d := r.deployment
	pod := d.Spec.Template
	c := r.container(t)

	t.Run("security context", func(t *testing.T) {
		psc := pod.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("pod: want runAsNonRoot true, got %+v", psc)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod: want seccomp RuntimeDefault")
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Fatal("container: no securityContext")
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Error("container: want runAsNonRoot true")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("container: want readOnlyRootFilesystem true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("container: want allowPrivilegeEscalation false")
		}
		if sc.Privileged == nil || *sc.Privileged {
			t.Error("container: want privileged false")
		}
		if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container: want capabilities drop [ALL] and no add, got %+v", sc.Capabilities)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("container: want seccomp RuntimeDefault")
		}
		if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
			t.Error("want enableServiceLinks false: Services named setgate would inject SETGATE_* variables")
		}
		if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
			t.Error("want automountServiceAccountToken false by default")
		}
	})

	t.Run("ports and probes", func(t *testing.T) {
		wantPorts := []corev1.ContainerPort{
			{Name: "push", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		}
		exposed := r.exposesEmbeddedNATS()
		if exposed {
			wantPorts = append(wantPorts, corev1.ContainerPort{Name: "nats", ContainerPort: 4222, Protocol: corev1.ProtocolTCP})
		}
		if !reflect.DeepEqual(c.Ports, wantPorts) {
			t.Errorf("container ports: want %+v, got %+v", wantPorts, c.Ports)
		}
		env := r.env(t)
		if env["SETGATE_HTTP_ADDR"] != ":8080" || env["SETGATE_ADMIN_ADDR"] != ":9090" {
			t.Errorf("listen addresses do not match the container ports: %q, %q", env["SETGATE_HTTP_ADDR"], env["SETGATE_ADMIN_ADDR"])
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"liveness", c.LivenessProbe, "/healthz"},
			{"readiness", c.ReadinessProbe, "/readyz"},
			{"startup", c.StartupProbe, "/healthz"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe: want an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "admin" {
				t.Errorf("%s probe: want %s on port admin, got %s on %s", p.name, p.path, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String())
			}
		}
		svcPorts := map[string]corev1.ServicePort{}
		for _, sp := range r.service.Spec.Ports {
			svcPorts[sp.Name] = sp
			for _, msg := range validation.IsValidPortName(sp.Name) {
				t.Errorf("service port name %q: %s", sp.Name, msg)
			}
		}
		want := []string{"push", "admin"}
		if exposed {
			want = append(want, "nats")
		}
		for _, name := range want {
			sp, ok := svcPorts[name]
			if !ok || sp.TargetPort.String() != name || sp.Protocol != corev1.ProtocolTCP {
				t.Errorf("service: want port %s targeting container port %s, got %+v", name, name, sp)
			}
		}
		if len(svcPorts) != len(want) {
			t.Errorf("service: want exactly ports %v, got %v", want, r.service.Spec.Ports)
		}
	})

	t.Run("mounts", func(t *testing.T) {
		vols := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			if vols[v.Name] {
				t.Errorf("volume %s defined twice", v.Name)
			}
			vols[v.Name] = true
		}
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("mount %s at %s names no volume", m.Name, m.MountPath)
			}
			if paths[m.MountPath] {
				t.Errorf("two mounts at %s", m.MountPath)
			}
			paths[m.MountPath] = true
			if m.SubPath != "" {
				t.Errorf("mount %s uses subPath: mounted ConfigMaps and Secrets would not be refreshed", m.Name)
			}
		}
		if v, ok := r.volume("tmp"); !ok || v.EmptyDir == nil || !paths["/tmp"] {
			t.Error("want an emptyDir mounted at /tmp (the root filesystem is read-only)")
		}
		env := r.env(t)
		if src, err := r.fileSource(t, env["SETGATE_ISSUERS_FILE"]); err != nil {
			t.Errorf("SETGATE_ISSUERS_FILE %q: %v", env["SETGATE_ISSUERS_FILE"], err)
		} else if src != "configmap/"+fullname+"-issuers" {
			t.Errorf("SETGATE_ISSUERS_FILE: want it from the issuers ConfigMap, got %s", src)
		}
		for k, p := range env {
			if !strings.HasSuffix(k, "_FILE") || k == "SETGATE_ISSUERS_FILE" {
				continue
			}
			if _, err := r.fileSource(t, p); err != nil {
				t.Errorf("%s=%s: %v", k, p, err)
			}
		}
		for _, p := range r.issuerFiles(t) {
			if _, err := r.fileSource(t, p); err != nil {
				t.Errorf("issuers file names %s: %v", p, err)
			}
		}
		for k := range env {
			for _, msg := range validation.IsEnvVarName(k) {
				t.Errorf("env %q: %s", k, msg)
			}
			if !strings.HasPrefix(k, "SETGATE_") {
				t.Errorf("env ConfigMap has %q: only SETGATE_* settings belong there", k)
			}
		}
	})

	t.Run("selectors match", func(t *testing.T) {
		podLabels := labels.Set(pod.Labels)
		checkLabels(t, "pod template", pod.Labels)
		matches := func(what string, sel *metav1.LabelSelector, target labels.Set) {
			t.Helper()
			if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
				t.Errorf("%s: empty selector would select everything", what)
				return
			}
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			if !s.Matches(target) {
				t.Errorf("%s: selector %s does not match %v", what, s, target)
			}
		}
		matches("deployment", d.Spec.Selector, podLabels)
		matches("service", &metav1.LabelSelector{MatchLabels: r.service.Spec.Selector}, podLabels)
		if r.pdb != nil {
			matches("pdb", r.pdb.Spec.Selector, podLabels)
		}
		if r.netpol != nil {
			matches("networkpolicy", &r.netpol.Spec.PodSelector, podLabels)
		}
		if r.monitor != nil {
			matches("servicemonitor", &r.monitor.Spec.Selector, labels.Set(r.service.Labels))
			if !slices.Equal(r.monitor.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
				t.Errorf("servicemonitor: want namespace %s, got %v", namespace, r.monitor.Spec.NamespaceSelector.MatchNames)
			}
			// Other releases of the chart in the namespace must not be selected.
			other := labels.Set{}
			for k, v := range r.service.Labels {
				other[k] = v
			}
			other["app.kubernetes.io/instance"] = "other"
			s, _ := metav1.LabelSelectorAsSelector(&r.monitor.Spec.Selector)
			if s.Matches(other) {
				t.Error("servicemonitor: selector also matches another release's Service")
			}
		}
		for _, tsc := range pod.Spec.TopologySpreadConstraints {
			matches("topologySpreadConstraint", tsc.LabelSelector, podLabels)
		}
	})

	t.Run("references", func(t *testing.T) {
		if r.sa != nil && pod.Spec.ServiceAccountName != r.sa.Name {
			t.Errorf("pod uses ServiceAccount %q, chart renders %q", pod.Spec.ServiceAccountName, r.sa.Name)
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				continue
			}
			if _, ok := r.configMaps[ef.ConfigMapRef.Name]; !ok {
				t.Errorf("envFrom ConfigMap %s is not rendered", ef.ConfigMapRef.Name)
			}
		}
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == fullname+"-data" {
				if _, ok := r.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("volume %s: PVC %s is not rendered", v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.Secret != nil && strings.HasPrefix(src.Secret.Name, fullname+"-") {
						if _, ok := r.secrets[src.Secret.Name]; !ok {
							t.Errorf("volume %s: Secret %s is not rendered", v.Name, src.Secret.Name)
						}
					}
				}
			}
		}
		if r.ingress != nil {
			for _, rule := range r.ingress.Spec.Rules {
				for _, p := range rule.HTTP.Paths {
					b := p.Backend.Service
					if b == nil || b.Name != r.service.Name || b.Port.Name != "push" {
						t.Errorf("ingress path %s: want backend %s port push, got %+v", p.Path, r.service.Name, b)
					}
				}
			}
		}
		if r.hpa != nil {
			ref := r.hpa.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
				t.Errorf("hpa: want target apps/v1 Deployment %s, got %+v", d.Name, ref)
			}
			if d.Spec.Replicas != nil {
				t.Error("deployment: replicas must be left to the HPA")
			}
		}
		if r.monitor != nil {
			if len(r.monitor.Spec.Endpoints) != 1 || r.monitor.Spec.Endpoints[0].Port != "admin" || r.monitor.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("servicemonitor: want one endpoint admin /metrics, got %+v", r.monitor.Spec.Endpoints)
			}
		}
		if r.netpol != nil {
			var ports []string
			for _, rule := range r.netpol.Spec.Ingress {
				for _, p := range rule.Ports {
					ports = append(ports, p.Port.String())
				}
			}
			want := []string{"push", "admin"}
			if r.exposesEmbeddedNATS() {
				want = append(want, "nats")
			}
			if !slices.Equal(ports, want) {
				t.Errorf("networkpolicy: want ingress to ports %v only, got %v", want, ports)
			}
		}
	})
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		values    valueSet
		wantKinds []string
		check     func(t *testing.T, r *rendered)
	}{
		{
			name: "defaults",
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PersistentVolumeClaim/sg-setgate-data", "PodDisruptionBudget/sg-setgate",
				"Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "sg-setgate-data")
				env := r.env(t)
				if got := r.container(t).Image; got != "ghcr.io/setgate/setgate:0.1.0" {
					t.Errorf("image: want the chart's appVersion as tag, got %q", got)
				}
				if *r.deployment.Spec.Replicas != 1 {
					t.Errorf("want 1 replica, got %d", *r.deployment.Spec.Replicas)
				}
				want := map[string]string{
					"SETGATE_STREAM": "SECEVENTS", "SETGATE_SUBJECT_PREFIX": "secevent", "SETGATE_STREAM_MANAGE": "true",
					"SETGATE_STREAM_REPLICAS": "1", "SETGATE_STREAM_MAX_AGE": "168h", "SETGATE_DUPLICATE_WINDOW": "90s",
					"SETGATE_MAX_BODY_BYTES": "65536", "SETGATE_LOG_LEVEL": "info", "SETGATE_LOG_FORMAT": "json",
					"SETGATE_SHUTDOWN_TIMEOUT": "20s", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:4222",
					"SETGATE_EMBEDDED_SYNC": "always",
				}
				for k, v := range want {
					if env[k] != v {
						t.Errorf("%s: want %q, got %q", k, v, env[k])
					}
				}
				if got := r.configMaps[fullname+"-issuers"].Data["issuers.yaml"]; strings.TrimSpace(got) != "issuers: []" {
					t.Errorf("issuers.yaml: want an empty list, got %q", got)
				}
				if !strings.Contains(r.notes, "WARNING: embedded NATS mode") {
					t.Errorf("NOTES: want the embedded-mode warning, got:\n%s", r.notes)
				}
				// The password file is generated on the data volume (the default path in
				// SETGATE_DATA_DIR), so it survives restarts.
				if p, ok := env["SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE"]; ok {
					t.Errorf("SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE: want the default in /data, got %q", p)
				}
				for _, want := range []string{"user consumer", "port-forward deploy/sg-setgate 4222:4222", "/data/consumer.password", "nats.embedded.consumerPassword.existingSecret"} {
					if !strings.Contains(r.notes, want) {
						t.Errorf("NOTES: want %q, got:\n%s", want, r.notes)
					}
				}
			},
		},
		{
			name: "embedded NATS exposed, consumer password from a Secret",
			values: valueSet{set: []string{
				"nats.embedded.expose=true", "nats.embedded.addr=0.0.0.0:4222", "nats.embedded.sync=interval",
				"nats.embedded.consumerPassword.existingSecret=setgate-consumer", "nats.embedded.consumerPassword.key=pw",
				"networkPolicy.enabled=true",
			}, setJSON: []string{`networkPolicy.embeddedNATSFrom=[{"namespaceSelector":{"matchLabels":{"team":"soc"}}}]`}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"NetworkPolicy/sg-setgate", "PersistentVolumeClaim/sg-setgate-data", "PodDisruptionBudget/sg-setgate",
				"Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "sg-setgate-data")
				env := r.env(t)
				if env["SETGATE_EMBEDDED_SYNC"] != "interval" || env["SETGATE_EMBEDDED_NATS_ADDR"] != "0.0.0.0:4222" {
					t.Errorf("env: want sync interval on 0.0.0.0:4222, got %q, %q", env["SETGATE_EMBEDDED_SYNC"], env["SETGATE_EMBEDDED_NATS_ADDR"])
				}
				p := env["SETGATE_EMBEDDED_NATS_CONSUMER_PASSWORD_FILE"]
				if src, err := r.fileSource(t, p); err != nil || src != "secret/setgate-consumer/pw" {
					t.Errorf("password file %q: want it from secret setgate-consumer key pw, got %q, %v", p, src, err)
				}
				if !r.exposesEmbeddedNATS() {
					t.Error("want container port nats")
				}
				var from []string
				for _, rule := range r.netpol.Spec.Ingress {
					if len(rule.Ports) == 1 && rule.Ports[0].Port.String() == "nats" {
						for _, peer := range rule.From {
							if peer.NamespaceSelector != nil {
								from = append(from, peer.NamespaceSelector.MatchLabels["team"])
							}
						}
					}
				}
				if !slices.Equal(from, []string{"soc"}) {
					t.Errorf("networkpolicy: want nats reachable from namespace team=soc only, got %v", from)
				}
				for _, want := range []string{"nats --server nats://sg-setgate." + namespace + ".svc:4222 --user consumer", "get secret setgate-consumer -o jsonpath='{.data.pw}'"} {
					if !strings.Contains(r.notes, want) {
						t.Errorf("NOTES: want %q, got:\n%s", want, r.notes)
					}
				}
			},
		},
		{
			name:   "embedded NATS without a listener",
			values: valueSet{set: []string{"nats.embedded.addr="}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PersistentVolumeClaim/sg-setgate-data", "PodDisruptionBudget/sg-setgate",
				"Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "sg-setgate-data")
				if v, ok := r.env(t)["SETGATE_EMBEDDED_NATS_ADDR"]; !ok || v != "" {
					t.Errorf("SETGATE_EMBEDDED_NATS_ADDR: want set and empty, got %q (set: %v)", v, ok)
				}
				if !strings.Contains(r.notes, "no listener") {
					t.Errorf("NOTES: want the no-listener note, got:\n%s", r.notes)
				}
			},
		},
		{
			name:   "external NATS with creds and TLS from existing secrets",
			values: valueSet{files: []string{"ci/external-nats-values.yaml"}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PodDisruptionBudget/sg-setgate", "Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkExternal(t, r)
				env := r.env(t)
				want := map[string]string{
					"SETGATE_NATS_URL":        "nats://nats.nats.svc.cluster.local:4222",
					"SETGATE_NATS_CREDS_FILE": "/etc/setgate/nats/nats.creds",
					"SETGATE_NATS_CA_FILE":    "/etc/setgate/nats/ca.crt",
					"SETGATE_NATS_CERT_FILE":  "/etc/setgate/nats/tls.crt",
					"SETGATE_NATS_KEY_FILE":   "/etc/setgate/nats/tls.key",
					"SETGATE_STREAM_REPLICAS": "3",
					"SETGATE_STREAM_MAX_AGE":  "336h",
					"SETGATE_PUBLIC_URL":      "https://setgate.example.com",
				}
				for k, v := range want {
					if env[k] != v {
						t.Errorf("%s: want %q, got %q", k, v, env[k])
					}
				}
				if _, ok := env["SETGATE_NATS_NKEY_FILE"]; ok {
					t.Error("SETGATE_NATS_NKEY_FILE set without an nkey")
				}
				srcs := map[string]string{}
				for _, k := range []string{"SETGATE_NATS_CREDS_FILE", "SETGATE_NATS_CA_FILE", "SETGATE_NATS_KEY_FILE"} {
					srcs[k], _ = r.fileSource(t, env[k])
				}
				wantSrcs := map[string]string{
					"SETGATE_NATS_CREDS_FILE": "secret/setgate-nats-creds/setgate.creds",
					"SETGATE_NATS_CA_FILE":    "secret/setgate-nats-tls/ca.crt",
					"SETGATE_NATS_KEY_FILE":   "secret/setgate-nats-tls/tls.key",
				}
				if !reflect.DeepEqual(srcs, wantSrcs) {
					t.Errorf("NATS files: want %v, got %v", wantSrcs, srcs)
				}
				files := r.issuerFiles(t)
				if want := []string{"/run/secrets/acme-push-token", "/run/secrets/globex-poll-token"}; !slices.Equal(files, want) {
					t.Errorf("issuer files: want %v, got %v", want, files)
				}
				if src, _ := r.fileSource(t, files[0]); src != "secret/setgate-issuer-tokens/acme-push-token" {
					t.Errorf("acme token: want it from the existing Secret, got %q", src)
				}
				if *r.deployment.Spec.Replicas != 3 {
					t.Errorf("want 3 replicas, got %d", *r.deployment.Spec.Replicas)
				}
				if strings.Contains(r.notes, "WARNING") {
					t.Errorf("NOTES: no warning expected with a NATS cluster, got:\n%s", r.notes)
				}
			},
		},
		{
			name:   "ingress, HPA, ServiceMonitor, PrometheusRule, dashboard, NetworkPolicy and inline secrets",
			values: valueSet{files: []string{"ci/full-values.yaml"}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-dashboard", "ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"HorizontalPodAutoscaler/sg-setgate", "Ingress/sg-setgate", "NetworkPolicy/sg-setgate",
				"PodDisruptionBudget/sg-setgate", "PrometheusRule/sg-setgate", "Secret/sg-setgate-files", "Secret/sg-setgate-nats",
				"Service/sg-setgate", "ServiceAccount/sg-setgate", "ServiceMonitor/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkExternal(t, r)
				env := r.env(t)
				if src, err := r.fileSource(t, env["SETGATE_NATS_NKEY_FILE"]); err != nil || src != "secret/sg-setgate-nats/nkey.seed" {
					t.Errorf("nkey: want it from the chart's Secret, got %q, %v", src, err)
				}
				if got := string(r.secrets[fullname+"-files"].Data["acme-push-token"]); got != "example-acme-token" {
					t.Errorf("acme-push-token: want the inline value, got %q", got)
				}
				for _, k := range []string{"SETGATE_TLS_CERT_FILE", "SETGATE_TLS_KEY_FILE", "SETGATE_TLS_CLIENT_CA_FILE"} {
					if src, err := r.fileSource(t, env[k]); err != nil || !strings.HasPrefix(src, "secret/setgate-push-") {
						t.Errorf("%s: want it from the push TLS Secrets, got %q, %v", k, src, err)
					}
				}
				hpa := r.hpa.Spec
				if *hpa.MinReplicas != 3 || hpa.MaxReplicas != 12 || len(hpa.Metrics) != 2 {
					t.Errorf("hpa: want 3..12 on cpu and memory, got %d..%d, %d metrics", *hpa.MinReplicas, hpa.MaxReplicas, len(hpa.Metrics))
				}
				if got := r.pdb.Spec.MinAvailable; got == nil || got.IntValue() != 2 || r.pdb.Spec.MaxUnavailable != nil {
					t.Errorf("pdb: want minAvailable 2 only, got %+v", r.pdb.Spec)
				}
				if r.monitor.Labels["release"] != "kube-prometheus-stack" {
					t.Errorf("servicemonitor: want the extra label, got %v", r.monitor.Labels)
				}
				if r.rule.Labels["release"] != "kube-prometheus-stack" {
					t.Errorf("prometheusrule: want the extra label, got %v", r.rule.Labels)
				}
				if got := r.configMaps[fullname+"-dashboard"].Annotations["grafana_folder"]; got != "Security" {
					t.Errorf("dashboard: want the grafana_folder annotation, got %q", got)
				}
				np := r.netpol.Spec
				if !slices.Equal(np.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
					t.Errorf("networkpolicy: want Ingress and Egress, got %v", np.PolicyTypes)
				}
				var egressPorts []string
				for _, e := range np.Egress {
					for _, p := range e.Ports {
						egressPorts = append(egressPorts, fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol))
					}
				}
				if want := []string{"53/UDP", "53/TCP", "4222/TCP", "443/TCP"}; !slices.Equal(egressPorts, want) {
					t.Errorf("networkpolicy egress: want %v, got %v", want, egressPorts)
				}
				if len(np.Ingress[0].From) != 1 || len(np.Ingress[1].From) != 1 || len(np.Egress[1].To) != 1 {
					t.Error("networkpolicy: want the configured peers for push, admin and NATS")
				}
				ing := r.ingress.Spec
				if *ing.IngressClassName != "nginx" || len(ing.TLS) != 1 || ing.Rules[0].Host != "setgate.example.com" {
					t.Errorf("ingress: got %+v", ing)
				}
				if got := r.deployment.Spec.Template.Annotations["example.com/team"]; got != "security" {
					t.Errorf("podAnnotations: want example.com/team=security, got %q", got)
				}
			},
		},
		{
			name:   "embedded NATS with a PVC",
			values: valueSet{files: []string{"ci/embedded-values.yaml"}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PersistentVolumeClaim/sg-setgate-data", "PodDisruptionBudget/sg-setgate",
				"Secret/sg-setgate-files", "Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "sg-setgate-data")
				pvc := r.pvcs[fullname+"-data"]
				if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "2Gi" {
					t.Errorf("pvc: want 2Gi, got %s", got.String())
				}
				if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
					t.Errorf("pvc: want storageClassName standard, got %v", pvc.Spec.StorageClassName)
				}
				if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Errorf("pvc: want the keep annotation, got %v", pvc.Annotations)
				}
				if src, err := r.fileSource(t, "/run/secrets/demo-push-token"); err != nil || src != "secret/sg-setgate-files/demo-push-token" {
					t.Errorf("demo token: got %q, %v", src, err)
				}
			},
		},
		{
			name:   "embedded NATS without persistence",
			values: valueSet{set: []string{"nats.embedded.persistence.enabled=false"}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PodDisruptionBudget/sg-setgate", "Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "")
				if !strings.Contains(r.notes, "LOST") {
					t.Errorf("NOTES: want a data loss warning, got:\n%s", r.notes)
				}
			},
		},
		{
			name:   "embedded NATS on an existing claim",
			values: valueSet{set: []string{"nats.embedded.persistence.existingClaim=my-claim", "podDisruptionBudget.enabled=false", "serviceAccount.create=false"}},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate", "Service/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				checkEmbedded(t, r, "my-claim")
				if got := r.deployment.Spec.Template.Spec.ServiceAccountName; got != "default" {
					t.Errorf("serviceAccountName: want default, got %q", got)
				}
			},
		},
		{
			name: "platform-chosen UID, pinned digest, extra env",
			values: valueSet{
				files:   []string{"ci/external-nats-values.yaml"},
				set:     []string{"podSecurityContext.runAsUser=null", "podSecurityContext.runAsGroup=null", "podSecurityContext.fsGroup=null", "image.digest=sha256:" + strings.Repeat("ab", 32), "preStopSleepSeconds=0"},
				setJSON: []string{`extraEnv=[{"name":"ACME_CLIENT_SECRET","valueFrom":{"secretKeyRef":{"name":"acme","key":"secret"}}}]`},
			},
			wantKinds: []string{
				"ConfigMap/sg-setgate-env", "ConfigMap/sg-setgate-issuers", "Deployment/sg-setgate",
				"PodDisruptionBudget/sg-setgate", "Service/sg-setgate", "ServiceAccount/sg-setgate",
			},
			check: func(t *testing.T, r *rendered) {
				psc := r.deployment.Spec.Template.Spec.SecurityContext
				if psc.RunAsUser != nil || psc.RunAsGroup != nil || psc.FSGroup != nil {
					t.Errorf("pod securityContext: want no runAsUser/runAsGroup/fsGroup, got %+v", psc)
				}
				c := r.container(t)
				if want := "ghcr.io/setgate/setgate@sha256:" + strings.Repeat("ab", 32); c.Image != want {
					t.Errorf("image: want %q, got %q", want, c.Image)
				}
				if len(c.Env) != 1 || c.Env[0].Name != "ACME_CLIENT_SECRET" {
					t.Errorf("env: want the extra variable, got %+v", c.Env)
				}
				if c.Lifecycle != nil {
					t.Errorf("want no preStop hook, got %+v", c.Lifecycle)
				}
			},
		},
	}

	used := map[string]bool{}
	for _, tc := range tests {
		for _, f := range tc.values.files {
			used[f] = true
		}
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			if !slices.Equal(r.kinds, tc.wantKinds) {
				t.Errorf("objects:\nwant %v\ngot  %v", tc.wantKinds, r.kinds)
			}
			checkInvariants(t, r)
			tc.check(t, r)
		})
	}

	t.Run("every ci values file is tested", func(t *testing.T) {
		files, err := filepath.Glob("ci/*.yaml")
		if err != nil || len(files) == 0 {
			t.Fatalf("no ci/*.yaml: %v", err)
		}
		for _, f := range files {
			if !used[f] {
				t.Errorf("%s is linted by .ci/chart-check but no case here renders it", f)
			}
		}
	})
}

// exposesEmbeddedNATS reports whether the chart serves the embedded NATS listener: a container
// port named nats. The invariants hold the Service and the NetworkPolicy to it.
func (r *rendered) exposesEmbeddedNATS() bool {
	for _, p := range r.deployment.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "nats" {
			return true
		}
	}
	return false
}

// checkEmbedded checks embedded NATS mode: no NATS URL, a data volume (claim, or emptyDir when
// claim is empty) at the data dir, and a Recreate strategy so two pods never share it.
func checkEmbedded(t *testing.T, r *rendered, claim string) {
	t.Helper()
	env := r.env(t)
	if _, ok := env["SETGATE_NATS_URL"]; ok {
		t.Errorf("embedded: SETGATE_NATS_URL must be unset, got %q", env["SETGATE_NATS_URL"])
	}
	if env["SETGATE_DATA_DIR"] != "/data" {
		t.Errorf("SETGATE_DATA_DIR: want /data, got %q", env["SETGATE_DATA_DIR"])
	}
	var mounted bool
	for _, m := range r.container(t).VolumeMounts {
		if m.Name == "data" && m.MountPath == "/data" && !m.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Error("embedded: want the writable data volume at /data")
	}
	v, _ := r.volume("data")
	switch {
	case claim == "" && v.EmptyDir == nil:
		t.Errorf("data volume: want an emptyDir, got %+v", v.VolumeSource)
	case claim != "" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim):
		t.Errorf("data volume: want claim %s, got %+v", claim, v.VolumeSource)
	}
	if r.deployment.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("embedded: want strategy Recreate, got %s", r.deployment.Spec.Strategy.Type)
	}
}

// checkExternal checks NATS cluster mode: a URL, no data volume, rolling updates that keep
// every pod serving.
func checkExternal(t *testing.T, r *rendered) {
	t.Helper()
	env := r.env(t)
	if env["SETGATE_NATS_URL"] == "" {
		t.Error("SETGATE_NATS_URL: want the cluster URL")
	}
	for _, k := range []string{"SETGATE_DATA_DIR", "SETGATE_EMBEDDED_NATS_ADDR"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s set with an external NATS", k)
		}
	}
	if _, ok := r.volume("data"); ok {
		t.Error("data volume with an external NATS")
	}
	s := r.deployment.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable.String() != "0" {
		t.Errorf("want a rolling update with maxUnavailable 0, got %+v", s)
	}
}

// TestChecksum: env and secret changes roll the pods through the pod template's checksum
// annotations; an issuers change must not touch the pod template at all, because setgate
// reloads the issuers file itself.
func TestChecksum(t *testing.T) {
	base := valueSet{files: []string{"ci/full-values.yaml"}}
	tests := []struct {
		name        string
		set         []string
		setJSON     []string
		wantRoll    bool
		wantChanged string // the annotation that must change when wantRoll
	}{
		{name: "issuer added", setJSON: []string{`issuers=[{"name":"acme","issuer":"https://idp.acme.example/","jwks_uri":"https://idp.acme.example/jwks"},{"name":"new","issuer":"https://new.example/","discovery":true}]`}},
		{name: "issuer audience changed", set: []string{"issuers[0].audience[0]=https://other.example/"}},
		{name: "log level", set: []string{"config.logLevel=debug"}, wantRoll: true, wantChanged: "checksum/config"},
		{name: "stream replicas", set: []string{"stream.replicas=5"}, wantRoll: true, wantChanged: "checksum/config"},
		{name: "NATS URL", set: []string{"nats.url=nats://other:4222"}, wantRoll: true, wantChanged: "checksum/config"},
		{name: "issuer token", set: []string{"secrets.files.acme-push-token=rotated"}, wantRoll: true, wantChanged: "checksum/secrets"},
		{name: "NATS nkey", set: []string{"nats.nkey.value=SUAROTATED"}, wantRoll: true, wantChanged: "checksum/secrets"},
		{name: "NATS CA", set: []string{"nats.tls.ca=rotated"}, wantRoll: true, wantChanged: "checksum/secrets"},
	}
	before := mustRender(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after := mustRender(t, valueSet{files: base.files, set: tc.set, setJSON: tc.setJSON})
			podBefore, podAfter := before.deployment.Spec.Template, after.deployment.Spec.Template
			if !tc.wantRoll {
				if before.configMaps[fullname+"-issuers"].Data["issuers.yaml"] == after.configMaps[fullname+"-issuers"].Data["issuers.yaml"] {
					t.Fatal("the issuers file did not change: the case tests nothing")
				}
				if !reflect.DeepEqual(podBefore, podAfter) {
					t.Errorf("pod template changed on an issuers-only change: annotations %v -> %v", podBefore.Annotations, podAfter.Annotations)
				}
				return
			}
			a, b := podBefore.Annotations[tc.wantChanged], podAfter.Annotations[tc.wantChanged]
			if a == "" || a == b {
				t.Errorf("%s: want it to change, got %q -> %q", tc.wantChanged, a, b)
			}
		})
	}
}

// TestRejected: values the chart must refuse, by schema or by a template check, with a
// message that says what is wrong.
func TestRejected(t *testing.T) {
	tests := []struct {
		name    string
		values  valueSet
		wantErr []string
	}{
		{
			name:    "embedded with replicas",
			values:  valueSet{set: []string{"replicaCount=3"}},
			wantErr: []string{"embedded NATS (nats.url empty) runs a single replica: replicaCount is 3"},
		},
		{
			name:    "embedded with autoscaling",
			values:  valueSet{set: []string{"autoscaling.enabled=true", "autoscaling.maxReplicas=4"}},
			wantErr: []string{"embedded NATS (nats.url empty) runs a single replica: autoscaling.maxReplicas is 4"},
		},
		{
			name:    "embedded with an R3 stream",
			values:  valueSet{set: []string{"stream.replicas=3"}},
			wantErr: []string{"stream.replicas is 3, it must be 1"},
		},
		{
			name:    "embedded exposed on loopback",
			values:  valueSet{set: []string{"nats.embedded.expose=true", "nats.embedded.consumerPassword.existingSecret=s"}},
			wantErr: []string{"nats.embedded.expose needs nats.embedded.addr on an address other pods reach"},
		},
		{
			name:    "embedded exposed without a password Secret",
			values:  valueSet{set: []string{"nats.embedded.expose=true", "nats.embedded.addr=0.0.0.0:4222"}},
			wantErr: []string{"nats.embedded.expose needs nats.embedded.consumerPassword.existingSecret"},
		},
		{
			name:    "embedded sync unknown",
			values:  valueSet{set: []string{"nats.embedded.sync=sometimes"}},
			wantErr: []string{"/nats/embedded/sync", "value must be one of"},
		},
		{
			name:    "wrong type",
			values:  valueSet{setString: []string{"replicaCount=three"}},
			wantErr: []string{"values don't meet the specifications of the schema", "replicaCount", "want integer"},
		},
		{
			name:    "wrong type nested",
			values:  valueSet{setString: []string{"stream.manage=yes"}},
			wantErr: []string{"/stream/manage", "want boolean"},
		},
		{
			name:    "unknown top-level key",
			values:  valueSet{set: []string{"replicas=2"}},
			wantErr: []string{"additional properties 'replicas' not allowed"},
		},
		{
			name:    "unknown nested key",
			values:  valueSet{set: []string{"nats.uri=nats://x:4222"}},
			wantErr: []string{"/nats", "additional properties 'uri' not allowed"},
		},
		{
			name:    "unknown issuer key",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"acme","issuer":"https://a.example/","jwks_url":"https://a.example/jwks"}]`}},
			wantErr: []string{"/issuers/0", "additional properties 'jwks_url' not allowed"},
		},
		{
			name:    "issuer name with capitals",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"Acme","issuer":"https://a.example/"}]`}},
			wantErr: []string{"/issuers/0/name", "does not match pattern"},
		},
		{
			name:    "issuer allows none",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"acme","issuer":"https://a.example/","algorithms":["RS256","none"]}]`}},
			wantErr: []string{"/issuers/0/algorithms/1"},
		},
		{
			name:    "issuer allows HMAC",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"acme","issuer":"https://a.example/","algorithms":["HS256"]}]`}},
			wantErr: []string{"/issuers/0/algorithms/0"},
		},
		{
			name:    "inline secret in an issuer",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"acme","issuer":"https://a.example/","push":{"bearer_token":"s3cret"}}]`}},
			wantErr: []string{"/issuers/0/push", "additional properties 'bearer_token' not allowed"},
		},
		{
			name:    "issuer names not unique",
			values:  valueSet{setJSON: []string{`issuers=[{"name":"acme","issuer":"https://a.example/"},{"name":"acme","issuer":"https://b.example/"}]`}},
			wantErr: []string{`issuers: the name "acme" is used twice (issuers[1])`},
		},
		{
			name:    "not a duration",
			values:  valueSet{set: []string{"stream.maxAge=7 days"}},
			wantErr: []string{"/stream/maxAge", "does not match pattern"},
		},
		{
			name:    "not a NATS URL",
			values:  valueSet{set: []string{"nats.url=nats.nats.svc:4222"}},
			wantErr: []string{"/nats/url", "does not match pattern"},
		},
		{
			name:    "push TLS without a certificate",
			values:  valueSet{files: []string{"ci/external-nats-values.yaml"}, set: []string{"pushTLS.enabled=true"}},
			wantErr: []string{"pushTLS.enabled needs pushTLS.existingSecret"},
		},
		{
			name:    "autoscaling range upside down",
			values:  valueSet{files: []string{"ci/external-nats-values.yaml"}, set: []string{"autoscaling.enabled=true", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"}},
			wantErr: []string{"autoscaling.minReplicas (5) is above autoscaling.maxReplicas (2)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil {
				t.Fatalf("want an error containing %q, got none", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("want the error to contain %q, got:\n%v", want, err)
				}
			}
		})
	}

	// The same checks accept the production shape.
	t.Run("external NATS with replicas and autoscaling is accepted", func(t *testing.T) {
		mustRender(t, valueSet{files: []string{"ci/external-nats-values.yaml"}, set: []string{"replicaCount=5", "autoscaling.enabled=true"}})
	})
}

// TestValuesDocumented: every value in values.yaml has a comment, and every key the schema
// defines in an object it closes (additionalProperties false) has a default in values.yaml.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	rawSchema, err := os.ReadFile("values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(rawSchema, &schema); err != nil {
		t.Fatal(err)
	}

	var walk func(p string, n *yaml.Node, s map[string]any)
	walk = func(p string, n *yaml.Node, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		closed := s["additionalProperties"] == false
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := path.Join(p, k.Value)
			seen[k.Value] = true
			sub, _ := props[k.Value].(map[string]any)
			if closed && sub == nil {
				t.Errorf("%s: in values.yaml but not in the schema", key)
			}
			hasComment := k.HeadComment != "" || k.LineComment != "" || v.LineComment != ""
			isGroup := v.Kind == yaml.MappingNode && sub != nil && sub["additionalProperties"] == false
			if isGroup {
				walk(key, v, sub)
				continue
			}
			if !hasComment {
				t.Errorf("%s: no comment in values.yaml", key)
			}
		}
		if closed {
			for k := range props {
				if !seen[k] && k != "global" {
					t.Errorf("%s: in the schema but has no default in values.yaml", path.Join(p, k))
				}
			}
		}
	}
	walk("/", doc.Content[0], schema)
}

// exportedMetrics is the allow-list of metric families the dashboard and the PrometheusRule may
// query: what the setgate binary exports (README.md "Metrics"; gateway/metrics.go and
// gateway/state.go). test/dashboard_test.go reads this list from this file and checks every
// name against a running binary's /metrics, so a name here that setgate does not export fails
// there. Histograms are named by family (without _bucket, _sum, _count).
var exportedMetrics = []string{
	"setgate_sets_received_total",
	"setgate_sets_accepted_total",
	"setgate_sets_duplicate_total",
	"setgate_sets_rejected_total",
	"setgate_sets_not_persisted_total",
	"setgate_sets_payload_warnings_total",
	"setgate_events_published_total",
	"setgate_accept_duration_seconds",
	"setgate_publish_duration_seconds",
	"setgate_push_request_duration_seconds",
	"setgate_jwks_fetches_total",
	"setgate_jwks_fetch_failures_total",
	"setgate_jwks_keys",
	"setgate_jwks_last_fetch_timestamp_seconds",
	"setgate_poll_requests_total",
	"setgate_poll_sets_received_total",
	"setgate_poll_acked_total",
	"setgate_poll_set_errs_total",
	"setgate_poll_consecutive_failures",
	"setgate_poll_backoff_seconds",
	"setgate_poll_last_success_timestamp_seconds",
	"setgate_poll_lease_held",
	"setgate_config_reloads_total",
	"setgate_config_info",
	"setgate_config_last_load_success",
	"setgate_config_loaded_timestamp_seconds",
	"setgate_nats_connected",
	"setgate_ssf_stream_healthy",
	"setgate_ssf_stream_status",
	"setgate_stream_bytes",
	"setgate_stream_messages",
	"setgate_stream_max_bytes",
	"setgate_stream_first_seq_age_seconds",
	"setgate_stream_discarded_events_total",
}

var (
	metricName     = regexp.MustCompile(`setgate_[a-z_]+`)
	histogramPart  = regexp.MustCompile(`_(bucket|sum|count)$`)
	selectorOrWith = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]`)
)

// metricFamilies returns the metric families a PromQL expression names, histogram series
// mapped to their family.
func metricFamilies(expr string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		n = histogramPart.ReplaceAllString(n, "")
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkPromQL checks that expr names only allowed setgate metrics: every series selector
// (a name followed by { or [) is a setgate metric, and every setgate name is in
// exportedMetrics. It also checks that parentheses, braces and brackets balance.
func checkPromQL(t *testing.T, where, expr string) []string {
	t.Helper()
	fams := metricFamilies(expr)
	if len(fams) == 0 {
		t.Errorf("%s: %q names no setgate metric", where, expr)
	}
	for _, f := range fams {
		if !slices.Contains(exportedMetrics, f) {
			t.Errorf("%s: %s is not a metric setgate exports (exportedMetrics)", where, f)
		}
	}
	for _, m := range selectorOrWith.FindAllStringSubmatch(expr, -1) {
		if !strings.HasPrefix(m[1], "setgate_") {
			t.Errorf("%s: %q selects %s, not a setgate metric", where, expr, m[1])
		}
	}
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	inString := false
	for _, c := range expr {
		switch {
		case c == '"':
			inString = !inString
		case inString:
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				t.Errorf("%s: unbalanced %q in %q", where, c, expr)
				return fams
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 || inString {
		t.Errorf("%s: unbalanced brackets or quotes in %q", where, expr)
	}
	return fams
}

// grafanaDashboard is the part of a Grafana dashboard the tests read.
type grafanaDashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource *grafanaDS `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource *grafanaDS `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// TestDashboard: the dashboard JSON parses, every panel queries the ${datasource} variable,
// every query names only exported setgate metrics, and it covers what operators watch.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboards/setgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboards/setgate.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("want a title and a uid, got %q, %q", d.Title, d.UID)
	}

	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	if i, ok := vars["datasource"]; !ok || d.Templating.List[i].Type != "datasource" || string(d.Templating.List[i].Query) != `"prometheus"` {
		t.Error(`want a template variable "datasource" of type datasource for prometheus`)
	}
	used := map[string]bool{}
	if i, ok := vars["issuer"]; !ok {
		t.Error(`want a template variable "issuer"`)
	} else {
		v := d.Templating.List[i]
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("issuer query: %v", err)
		}
		const want = "label_values(setgate_sets_received_total, issuer)"
		if v.Type != "query" || q.Query != want || v.Definition != want {
			t.Errorf("issuer variable: want a query %q, got %s %q", want, v.Type, q.Query)
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("issuer variable: want datasource ${datasource}, got %+v", v.Datasource)
		}
		for _, f := range checkPromQL(t, "issuer variable", q.Query) {
			used[f] = true
		}
	}

	ids := map[int]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || len(p.Targets) == 0 {
				t.Errorf("panel %d: want a title and queries, got %q with %d", p.ID, p.Title, len(p.Targets))
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				t.Errorf("panel %q: want datasource ${datasource}, got %+v", p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				where := fmt.Sprintf("panel %q %s", p.Title, tg.RefID)
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s: want datasource ${datasource}, got %+v", where, tg.Datasource)
				}
				for _, f := range checkPromQL(t, where, tg.Expr) {
					used[f] = true
				}
			}
		}
	}
	walk(d.Panels)

	// What issue 11 asks the dashboard to show.
	for _, want := range []string{
		"setgate_sets_accepted_total", "setgate_sets_rejected_total", "setgate_push_request_duration_seconds",
		"setgate_publish_duration_seconds", "setgate_jwks_keys", "setgate_jwks_fetch_failures_total",
		"setgate_jwks_last_fetch_timestamp_seconds", "setgate_poll_last_success_timestamp_seconds",
		"setgate_poll_backoff_seconds", "setgate_poll_lease_held", "setgate_nats_connected",
		"setgate_config_reloads_total", "setgate_config_last_load_success", "setgate_ssf_stream_healthy",
		"setgate_ssf_stream_status",
		// Issue 19: the stream capacity row.
		"setgate_stream_bytes", "setgate_stream_messages", "setgate_stream_max_bytes",
		"setgate_stream_first_seq_age_seconds", "setgate_stream_discarded_events_total",
	} {
		if !used[want] {
			t.Errorf("no panel queries %s", want)
		}
	}
	for _, q := range []string{
		"histogram_quantile(0.5, sum by (le) (rate(setgate_push_request_duration_seconds_bucket",
		"histogram_quantile(0.99, sum by (le) (rate(setgate_push_request_duration_seconds_bucket",
		"histogram_quantile(0.99, sum by (le, delivery) (rate(setgate_publish_duration_seconds_bucket",
		"time() - (setgate_poll_last_success_timestamp_seconds",
	} {
		if !bytes.Contains(raw, []byte(q)) {
			t.Errorf("dashboard: want a query with %q", q)
		}
	}
}

// TestMonitoring: the dashboard ConfigMap and the PrometheusRule are off by default, render
// when enabled with the configured labels, the ConfigMap carries the dashboard file as is,
// and every alert selects this release's series and names only exported metrics.
func TestMonitoring(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		r := mustRender(t, valueSet{})
		if _, ok := r.configMaps[fullname+"-dashboard"]; ok || r.rule != nil {
			t.Errorf("want no dashboard ConfigMap and no PrometheusRule by default, got %v", r.kinds)
		}
	})

	file, err := os.ReadFile("dashboards/setgate.json")
	if err != nil {
		t.Fatal(err)
	}
	wantAlerts := []string{
		"SetgateRejectionRatioHigh", "SetgateJWKSFailing", "SetgateNATSDisconnected",
		"SetgateStreamFilling", "SetgateStreamDiscarding", "SetgatePollBackingOff", "SetgateSSFStreamUnhealthy", "SetgateConfigRefused",
	}
	tests := []struct {
		name      string
		values    valueSet
		wantLabel [2]string // the Grafana sidecar label
		wantSel   string    // the label matchers in every alert
		wantInRe  map[string]string
	}{
		{
			name:      "defaults when enabled",
			values:    valueSet{set: []string{"dashboards.enabled=true", "prometheusRule.enabled=true", "serviceMonitor.enabled=true"}},
			wantLabel: [2]string{"grafana_dashboard", "1"},
			wantSel:   `{job="sg-setgate", namespace="secevents"}`,
			wantInRe: map[string]string{
				"SetgateRejectionRatioHigh": "> 0.05",
				"SetgatePollBackingOff":     "setgate_poll_consecutive_failures{job=\"sg-setgate\", namespace=\"secevents\"} > 5",
				"SetgateStreamFilling":      "setgate_stream_max_bytes{job=\"sg-setgate\", namespace=\"secevents\"} > 0) > 0.8",
				"SetgateStreamDiscarding":   "setgate_stream_discarded_events_total{job=\"sg-setgate\", namespace=\"secevents\"}[15m])) > 0",
			},
		},
		{
			name: "configured",
			values: valueSet{
				files: []string{"ci/external-nats-values.yaml"},
				set: []string{
					"dashboards.enabled=true", "dashboards.label=dashboards.example.com/grafana", "dashboards.labels.team=security",
					"prometheusRule.enabled=true", "prometheusRule.labels.prometheus=main",
					"prometheusRule.pollConsecutiveFailures=9", "prometheusRule.pollBackoffSeconds=45",
				},
				setString: []string{"dashboards.labelValue=yes", `prometheusRule.selector=job="setgate"`},
				setJSON:   []string{"prometheusRule.rejectionRatio=0.25", "prometheusRule.streamFillRatio=0.9"},
			},
			wantLabel: [2]string{"dashboards.example.com/grafana", "yes"},
			wantSel:   `{job="setgate"}`,
			wantInRe: map[string]string{
				"SetgateRejectionRatioHigh": "> 0.25",
				"SetgatePollBackingOff":     "[10m]) > 45",
				"SetgateStreamFilling":      "> 0) > 0.9",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			checkInvariants(t, r)

			cm, ok := r.configMaps[fullname+"-dashboard"]
			if !ok {
				t.Fatalf("no ConfigMap %s-dashboard; got %v", fullname, r.kinds)
			}
			if got := cm.Labels[tc.wantLabel[0]]; got != tc.wantLabel[1] {
				t.Errorf("dashboard ConfigMap: want label %s=%q, got %v", tc.wantLabel[0], tc.wantLabel[1], cm.Labels)
			}
			if len(cm.Data) != 1 || cm.Data["setgate.json"] != strings.TrimSuffix(string(file), "\n") {
				t.Errorf("dashboard ConfigMap: want exactly setgate.json with dashboards/setgate.json as is, got keys %v", slices.Sorted(maps.Keys(cm.Data)))
			}
			var parsed map[string]any
			if err := json.Unmarshal([]byte(cm.Data["setgate.json"]), &parsed); err != nil {
				t.Errorf("dashboard ConfigMap: setgate.json does not parse: %v", err)
			}

			rule := r.rule
			if rule == nil {
				t.Fatalf("no PrometheusRule; got %v", r.kinds)
			}
			for k, v := range map[string]string{"prometheus": "main"} {
				if tc.name == "configured" && rule.Labels[k] != v {
					t.Errorf("prometheusrule: want label %s=%s, got %v", k, v, rule.Labels)
				}
			}
			var alerts []string
			for _, g := range rule.Spec.Groups {
				if g.Name == "" {
					t.Error("prometheusrule: a group without a name")
				}
				for _, rl := range g.Rules {
					alerts = append(alerts, rl.Alert)
					where := "alert " + rl.Alert
					fams := checkPromQL(t, where, rl.Expr)
					// Every series selector carries the release's matchers.
					for _, f := range fams {
						if n := strings.Count(rl.Expr, f); n != strings.Count(rl.Expr, f+tc.wantSel) {
							t.Errorf("%s: %s is selected without %s: %q", where, f, tc.wantSel, rl.Expr)
						}
					}
					if rl.For == "" || (rl.Labels["severity"] != "warning" && rl.Labels["severity"] != "critical") {
						t.Errorf("%s: want a for duration and a severity, got %q, %v", where, rl.For, rl.Labels)
					}
					if !strings.Contains(rl.Annotations["summary"], "{{ $labels.") || rl.Annotations["description"] == "" {
						t.Errorf("%s: want a summary with alert labels and a description, got %v", where, rl.Annotations)
					}
					if want, ok := tc.wantInRe[rl.Alert]; ok && !strings.Contains(rl.Expr, want) {
						t.Errorf("%s: want %q in %q", where, want, rl.Expr)
					}
				}
			}
			if !slices.Equal(alerts, wantAlerts) {
				t.Errorf("alerts: want %v, got %v", wantAlerts, alerts)
			}
			for alert, want := range map[string]string{
				"SetgateRejectionRatioHigh": "10m", "SetgatePollBackingOff": "10m", "SetgateSSFStreamUnhealthy": "15m",
			} {
				for _, g := range rule.Spec.Groups {
					for _, rl := range g.Rules {
						if rl.Alert == alert && rl.For != want {
							t.Errorf("%s: want for %s, got %q", alert, want, rl.For)
						}
					}
				}
			}
			// The default matchers are what the chart's ServiceMonitor gives: job is the
			// Service's name, namespace the release's.
			if r.monitor != nil && tc.wantSel != fmt.Sprintf(`{job=%q, namespace=%q}`, r.service.Name, r.service.Namespace) {
				t.Errorf("alerts select %s, but the ServiceMonitor scrapes job %q in %q", tc.wantSel, r.service.Name, r.service.Namespace)
			}
		})
	}

	t.Run("refused values", func(t *testing.T) {
		for _, tc := range []struct {
			values  valueSet
			wantErr string
		}{
			{valueSet{setJSON: []string{"prometheusRule.rejectionRatio=2"}}, "/prometheusRule/rejectionRatio"},
			{valueSet{setJSON: []string{"prometheusRule.rejectionRatio=0"}}, "/prometheusRule/rejectionRatio"},
			{valueSet{setString: []string{`prometheusRule.selector={job="x"}`}}, "/prometheusRule/selector"},
			{valueSet{setString: []string{"dashboards.label=not a label"}}, "/dashboards/label"},
			{valueSet{set: []string{"dashboards.folder=x"}}, "additional properties 'folder' not allowed"},
		} {
			_, err := render(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: want an error with %q, got %v", tc.values, tc.wantErr, err)
			}
		}
	})
}

// TestStreamCapacity: SETGATE_STREAM_MAX_BYTES comes from stream.maxBytes when set, else
// in embedded mode from stream.maxBytesPercent of the volume's size (any quantity the
// schema allows), else (external NATS) it is 0; SETGATE_STREAM_DISCARD from stream.discard.
func TestStreamCapacity(t *testing.T) {
	ext := "ci/external-nats-values.yaml"
	tests := []struct {
		name        string
		values      valueSet
		wantMax     string
		wantDiscard string
	}{
		{"defaults: 80% of 1Gi", valueSet{}, "858993459", "new"},
		{"10Gi", valueSet{set: []string{"nats.embedded.persistence.size=10Gi"}}, "8589934592", "new"},
		{"fractional 1.5Gi", valueSet{set: []string{"nats.embedded.persistence.size=1.5Gi"}}, "1288490188", "new"},
		{"decimal 500M", valueSet{set: []string{"nats.embedded.persistence.size=500M"}}, "400000000", "new"},
		{"plain bytes", valueSet{setString: []string{"nats.embedded.persistence.size=1000000"}}, "800000", "new"},
		{"90% of 2Gi", valueSet{set: []string{"nats.embedded.persistence.size=2Gi", "stream.maxBytesPercent=90"}}, "1932735283", "new"},
		{"explicit wins", valueSet{set: []string{"stream.maxBytes=700Mi", "stream.discard=old"}}, "700Mi", "old"},
		{"emptyDir uses the size too", valueSet{set: []string{"nats.embedded.persistence.enabled=false"}}, "858993459", "new"},
		{"external: no limit of its own", valueSet{files: []string{ext}}, "0", "new"},
		{"external with a limit", valueSet{files: []string{ext}, set: []string{"stream.maxBytes=50Gi"}}, "50Gi", "new"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			env := r.env(t)
			if got := env["SETGATE_STREAM_MAX_BYTES"]; got != tc.wantMax {
				t.Errorf("SETGATE_STREAM_MAX_BYTES: want %q, got %q", tc.wantMax, got)
			}
			if got := env["SETGATE_STREAM_DISCARD"]; got != tc.wantDiscard {
				t.Errorf("SETGATE_STREAM_DISCARD: want %q, got %q", tc.wantDiscard, got)
			}
		})
	}

	for _, tc := range []struct {
		values  valueSet
		wantErr string
	}{
		{valueSet{set: []string{"stream.discard=oldest"}}, "/stream/discard"},
		{valueSet{set: []string{"stream.maxBytes=1GB"}}, "/stream/maxBytes"},
		{valueSet{set: []string{"stream.maxBytesPercent=0"}}, "/stream/maxBytesPercent"},
		{valueSet{set: []string{"stream.maxBytesPercent=101"}}, "/stream/maxBytesPercent"},
	} {
		_, err := render(t, tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%+v: want an error with %q, got %v", tc.values, tc.wantErr, err)
		}
	}
}
