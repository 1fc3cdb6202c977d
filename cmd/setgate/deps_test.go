package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestReleaseBinaryLinksNoTestCode: the release binary (built as the
// Dockerfile builds it, CGO_ENABLED=0 ./cmd/setgate) depends on nothing under
// the module's test/ tree; demo and bench equipment lives in
// internal/transmitter instead.
func TestReleaseBinaryLinksNoTestCode(t *testing.T) {
	const module = "github.com/setgate/setgate"
	cmd := exec.Command("go", "list", "-deps", module+"/cmd/setgate")
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
	var sawVerify bool
	for _, dep := range deps {
		if dep == module+"/verify" {
			sawVerify = true
		}
		if dep == module+"/test" || strings.HasPrefix(dep, module+"/test/") {
			t.Errorf("release binary depends on test code: %s", dep)
		}
	}
	if !sawVerify {
		t.Fatalf("go list -deps printed no %s/verify; the check saw the wrong package list:\n%s", module, out)
	}
}
