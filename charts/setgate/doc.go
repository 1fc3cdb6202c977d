// Package chart holds the setgate Helm chart and, in its tests, the proof that the chart
// renders into valid Kubernetes objects.
//
// The chart itself is the YAML beside this file (Chart.yaml, values.yaml,
// values.schema.json, templates/); this package has no Go API. The tests render the chart
// with the Helm SDK in client-only mode, as `helm install --dry-run=client` would, for the
// values sets in ci/ and variations of them, decode every manifest strictly into the
// k8s.io/api types, and check what the chart promises: the security context, probes, ports,
// mounts, matching selectors, the checksum annotation, and the values it refuses.
//
// # Running
//
//	go test ./charts/...
//	.ci/chart-check   # the tests plus helm lint for every values set
package chart
