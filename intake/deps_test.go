package intake_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestSourcesDoNotImportBridge: push (gateway) and poll (poller,
// poller/ssf) reach NATS only through the intake pipeline; neither they
// nor intake itself depend on package bridge.
func TestSourcesDoNotImportBridge(t *testing.T) {
	const module = "github.com/setgate/setgate"
	for _, pkg := range []string{"gateway", "poller", "poller/ssf", "intake"} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
			if err != nil {
				var stderr string
				if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go list -deps: %v\n%s", err, stderr)
			}
			deps := strings.Fields(string(out))
			var sawIntake bool
			for _, dep := range deps {
				if dep == module+"/intake" {
					sawIntake = true
				}
				if dep == module+"/bridge" {
					t.Errorf("%s depends on %s/bridge", pkg, module)
				}
			}
			if !sawIntake {
				t.Fatalf("go list -deps printed no %s/intake; the check saw the wrong package list:\n%s", module, out)
			}
		})
	}
}
