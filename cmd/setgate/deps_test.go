package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/setgate/setgate"

// goListDeps returns `go list -deps` of the module's package pkg, built as
// the Dockerfile builds it (CGO_ENABLED=0). It fails the test unless the
// list holds mustSee, so that a wrong list cannot pass a check silently.
func goListDeps(t *testing.T, pkg, mustSee string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", module+"/"+pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		if dep == module+"/"+mustSee {
			return deps
		}
	}
	t.Fatalf("go list -deps printed no %s/%s; the check saw the wrong package list:\n%s", module, mustSee, out)
	return nil
}

// TestReleaseBinaryLinksNoTestCode: the release binary (built as the
// Dockerfile builds it, CGO_ENABLED=0 ./cmd/setgate) depends on nothing under
// the module's test/ tree; demo and bench equipment lives in
// internal/transmitter instead.
func TestReleaseBinaryLinksNoTestCode(t *testing.T) {
	for _, dep := range goListDeps(t, "cmd/setgate", "verify") {
		if dep == module+"/test" || strings.HasPrefix(dep, module+"/test/") {
			t.Errorf("release binary depends on test code: %s", dep)
		}
	}
}

// TestSourcesDoNotImportBridge: push (gateway) and poll (poller,
// poller/ssf) reach NATS only through the intake pipeline (README
// "Layout"); neither they nor intake itself depend on package bridge.
func TestSourcesDoNotImportBridge(t *testing.T) {
	for _, pkg := range []string{"gateway", "poller", "poller/ssf", "intake"} {
		t.Run(pkg, func(t *testing.T) {
			for _, dep := range goListDeps(t, pkg, "verify") {
				if dep == module+"/bridge" {
					t.Errorf("%s depends on %s/bridge", pkg, module)
				}
			}
		})
	}
}
