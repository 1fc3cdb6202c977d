package test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/setgate/setgate/internal/transmitter"
)

// This file keeps README.md true to the binary: every command line the
// README shows — each line of a ```sh block and each inline `code` that
// starts with a command — is either run here as written (with the
// substitutions named next to it) or mapped, by its exact text, to the test
// or CI script that exercises it. A README command line that is neither
// fails TestReadmeCommands, naming the line; so does a mapping whose README
// line is gone.
//
// Substitutions, applied to the text before it runs:
//   - `go run ./cmd/setgate` is the binary built by TestMain, on PATH as
//     `setgate` (and as ./setgate in the working directory);
//   - the listen addresses the README assumes (127.0.0.1:8080, :4222, …)
//     are the ones the started process actually took: tests never bind
//     fixed ports on a shared machine;
//   - names the README uses for the reader's deployment (the
//     https://setgate.example push URL, /run/secrets/) point at the
//     loopback gateway and the test's temp dir;
//   - verbs run in the environment of "Running it" (SETGATE_ISSUERS_FILE,
//     SETGATE_PUBLIC_URL, the addresses serve took); a placeholder such as
//     the stream ID is the value the previous line printed;
//   - the Performance section's bench lines get --short appended (CI size);
//   - the `nats` CLI is not installed (building natscli from the module
//     proxy would cost every `go test ./...` minutes on two cores): sh
//     expands the README's line into the CLI's arguments and the same
//     subscription is made with nats.go (see readmeNATSSub).

// readmeCoverage maps README command lines that are not run here to what
// exercises them: a file of the repository that must contain the string
// (a test function, a test case name, a CI step). Extend it when the
// README gains a line that another test covers.
func readmeCoverage() map[string]struct{ file, contains string } {
	return map[string]struct{ file, contains string }{
		// CI and test commands: .ci/run runs them.
		"go test -race -count=1 ./...":                  {".ci/run", "go test -race -count=1 ./..."},
		"go test -race -count=1 -run <Test> -v ./test/": {".ci/run", "go test -race -count=1 ./..."},
		"go test ./...": {".ci/run", "go test -race -count=1 ./..."},
		"go test":       {".ci/run", "go test -race -count=1 ./..."},
		"go vet ./...":  {".ci/run", "go vet ./..."},
		"go test -run '^$' -bench . ./gateway ./verify ./bridge ./poller": {".ci/run", "go test -run '^$' -bench . -benchtime 1x ./gateway ./verify ./bridge ./poller"},
		"go build -o setgate ./cmd/setgate":                               {"test/main_test.go", `args := []string{"build", "-o", binary}`},
		// Helm: the chart tests render these values sets; .ci/chart-check lints them.
		"helm install setgate ./charts/setgate -f my-values.yaml --set nats.url=nats://nats.nats.svc:4222 --set stream.replicas=3": {"charts/setgate/chart_test.go", `name:   "external NATS with creds and TLS from existing secrets"`},
		"helm install setgate ./charts/setgate -f my-values.yaml":                                                                  {"charts/setgate/chart_test.go", `name:   "embedded NATS with a PVC"`},
		"helm lint --strict":       {".ci/chart-check", `"$helm" lint --strict`},
		"setgate <command> --help": {"cmd/setgate/env_test.go", `{"serve", "--help"}`},
		"setgate stream …":         {"cmd/setgate/verb_stream_test.go", "func TestStreamGet("},
		// bench: the CI size of the full run, and a run against a gateway started apart.
		"setgate bench":                     {"cmd/setgate/verb_bench_test.go", `[]string{"bench", "--short", "--json"}`},
		"go run ./cmd/setgate bench":        {"cmd/setgate/verb_bench_test.go", `[]string{"bench", "--short", "--json"}`},
		"go run ./cmd/setgate bench --json": {"cmd/setgate/verb_bench_test.go", `[]string{"bench", "--short", "--json"}`},
		"setgate bench --url … --nats …":    {"cmd/setgate/verb_bench_test.go", "func TestBenchRemote("},
		"setgate bench --url":               {"cmd/setgate/verb_bench_test.go", "func TestBenchRemote("},
		"setgate bench --url … --rate 2000": {"cmd/setgate/verb_bench_test.go", "func TestBenchRemote("},
		"setgate bench --url https://setgate.example.com/events/acme --key acme.pem --iss https://idp.acme.example/ --aud https://setgate.example.com/ --token-file push.token --nats nats://nats.nats.svc:4222": {"cmd/setgate/verb_bench_test.go", "func TestBenchRemote("},
		"setgate bench --floor 127.0.0.1:8081 --key acme.pem --floor-cpu 40µs":                                                           {"cmd/setgate/verb_bench_test.go", "func TestBenchFloor("},
		"setgate bench --url http://127.0.0.1:8081/events/acme --key acme.pem --iss https://idp.acme.example/ --check=false --rate 5000": {"cmd/setgate/verb_bench_test.go", "func TestBenchFloor("},
		"setgate bench --events 4":                      {"cmd/setgate/verb_bench_test.go", "func TestBenchIssuersEvents("},
		"setgate bench --mode push --short --issuers N": {"cmd/setgate/verb_bench_test.go", "func TestBenchIssuersEvents("},
		"setgate demo":                                  {"cmd/setgate/demo_test.go", "func TestDemo("},
		// The demo section's mentions of the watch lines it prints.
		"nats sub":                     {"test/readme_test.go", "func readmeNATSSub("},
		"setgate tail --password-file": {"cmd/setgate/verb_tail_test.go", `"--password-file", b.ConsumerPasswordFile()`},
		// Mentions of a command that TestReadmeCommands runs in full.
		"setgate serve":  {"test/readme_test.go", `"SETGATE_ISSUERS_FILE=issuers.yaml ./setgate serve"`},
		"setgate --help": {"test/readme_test.go", `"./setgate --help"`},
		"setgate verify": {"test/readme_test.go", `"setgate verify --issuers issuers.yaml --issuer acme set.jwt"`},
	}
}

// readmeLine is one command line of the README.
type readmeLine struct {
	text string // whitespace collapsed, continuations joined, comment cut
	line int    // where it starts in README.md
}

// readmeCommands extracts the command lines of README.md.
func readmeCommands(t testing.TB) []readmeLine {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return commandLines(data)
}

// commandLines extracts the command lines of a markdown document: each
// line of a sh/bash/shell/console fence (backslash continuations joined,
// # comments cut, whitespace collapsed) and each inline code span that
// starts with a command word and an argument; each text once.
func commandLines(data []byte) []readmeLine {
	var out []readmeLine
	seen := map[string]bool{}
	add := func(text string, line int) {
		text = strings.Join(strings.Fields(text), " ")
		if text != "" && !seen[text] {
			seen[text] = true
			out = append(out, readmeLine{text, line})
		}
	}
	// Inline code spans starting with one of these commands count too.
	commandWords := []string{"setgate", "./setgate", "nats", "curl", "helm", "go", "openssl"}
	inline := regexp.MustCompile("`([^`]+)`")
	var fence string // the info string of the open fence; "" outside
	inFence := false
	var cont strings.Builder
	contStart := 0
	for i, l := range strings.Split(string(data), "\n") {
		n := i + 1
		if strings.HasPrefix(l, "```") {
			if inFence {
				inFence = false
			} else {
				inFence, fence = true, strings.TrimSpace(strings.TrimPrefix(l, "```"))
			}
			continue
		}
		if inFence {
			if fence != "sh" && fence != "bash" && fence != "shell" && fence != "console" {
				continue
			}
			code := cutShellComment(l)
			if cont.Len() == 0 {
				contStart = n
			}
			if strings.HasSuffix(strings.TrimSpace(code), `\`) {
				cont.WriteString(strings.TrimSuffix(strings.TrimSpace(code), `\`) + " ")
				continue
			}
			cont.WriteString(code)
			add(cont.String(), contStart)
			cont.Reset()
			continue
		}
		for _, m := range inline.FindAllStringSubmatch(l, -1) {
			first, _, _ := strings.Cut(m[1], " ")
			for _, w := range commandWords {
				if first == w && strings.Contains(m[1], " ") {
					add(m[1], n)
					break
				}
			}
		}
	}
	return out
}

// cutShellComment drops a # comment (a # after whitespace, outside quotes).
func cutShellComment(l string) string {
	var quote rune
	prev := ' '
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return l[:i]
		}
		prev = r
	}
	return l
}

// readmeRun records which README lines ran.
type readmeRun struct {
	mu    sync.Mutex
	lines map[string]readmeLine
	ran   map[string]bool
}

// line returns the README line with exactly this text (whitespace
// collapsed), failing t when the README has no such line: a test that runs
// a line must run the README's text.
func (r *readmeRun) line(t testing.TB, text string) string {
	t.Helper()
	text = strings.Join(strings.Fields(text), " ")
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.lines[text]; !ok {
		t.Fatalf("README.md has no command line %q any more; update test/readme_test.go with the README", text)
	}
	r.ran[text] = true
	return text
}

// readmeShell is a working directory with the binary as ./setgate and on
// PATH, and the environment the README's lines run in.
type readmeShell struct {
	t   testing.TB
	dir string
	env map[string]string
}

func newReadmeShell(t testing.TB) *readmeShell {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(dir, "setgate")); err != nil {
		t.Fatal(err)
	}
	return &readmeShell{t: t, dir: dir, env: map[string]string{
		"PATH": filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}}
}

func (s *readmeShell) path(name string) string { return filepath.Join(s.dir, name) }

// command is sh -c line in the shell's directory, in its own process group
// so a stop reaches the processes the line starts.
func (s *readmeShell) command(ctx context.Context, line string, env map[string]string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = s.dir
	vars := map[string]string{}
	for k, v := range s.env {
		vars[k] = v
	}
	for k, v := range env {
		vars[k] = v
	}
	var kept []string
	for _, kv := range childEnv(vars) {
		if !strings.HasPrefix(kv, "PATH=") || kv == "PATH="+vars["PATH"] {
			kept = append(kept, kv)
		}
	}
	cmd.Env = kept
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = waitLong
	return cmd
}

// run runs line to its end and returns its stdout and stderr.
func (s *readmeShell) run(line string, env map[string]string) (stdout, stderr string, err error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cmd := s.command(ctx, line, env)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// must runs line and fails the test unless it exits 0.
func (s *readmeShell) must(line string, env map[string]string) string {
	s.t.Helper()
	out, errOut, err := s.run(line, env)
	if err != nil {
		s.t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", line, err, out, errOut)
	}
	return out
}

// readmeProc is a long-running README line (serve, demo, tail).
type readmeProc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan struct{}
	err            error
}

// start runs line in the background until the end of the test (then it
// gets SIGTERM, as Ctrl-C or a pod stop would send); also, when not nil,
// gets its stdout and stderr too.
func (s *readmeShell) start(line string, env map[string]string, also io.Writer) *readmeProc {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &readmeProc{cmd: s.command(ctx, line, env), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if also != nil {
		p.cmd.Stdout, p.cmd.Stderr = io.MultiWriter(p.stdout, also), io.MultiWriter(p.stderr, also)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		s.t.Fatalf("%s: %v", line, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	s.t.Cleanup(func() {
		cancel()
		<-p.done
		if s.t.Failed() {
			s.t.Logf("%s\nstdout:\n%s\nstderr:\n%s", line, p.stdout, p.stderr)
		}
	})
	return p
}

// waitFor waits until the process has written want to b, failing when it
// exits first.
func (p *readmeProc) waitFor(t testing.TB, b *lockedBuffer, want string) {
	t.Helper()
	checkFor(t, waitLong, poll, func() error {
		if strings.Contains(b.String(), want) {
			return nil
		}
		select {
		case <-p.done:
			t.Fatalf("exited (%v) before writing %q\nstdout:\n%s\nstderr:\n%s", p.err, want, p.stdout, p.stderr)
		default:
		}
		return fmt.Errorf("no %q yet", want)
	})
}

// lockedBuffer is a bytes.Buffer for one writing process and a reading
// test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReadmeCommands runs the README's command lines and checks that every
// other one is mapped to what exercises it.
func TestReadmeCommands(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's command lines need %s on PATH: %v", tool, err)
		}
	}
	lines := readmeCommands(t)
	r := &readmeRun{lines: map[string]readmeLine{}, ran: map[string]bool{}}
	for _, l := range lines {
		r.lines[l.text] = l
	}
	t.Run("serve and the operator verbs", func(t *testing.T) { readmeServe(t, r) })
	t.Run("demo", func(t *testing.T) { readmeDemo(t, r) })
	t.Run("SSF stream verbs", func(t *testing.T) { readmeStream(t, r) })
	t.Run("bench", func(t *testing.T) { readmeBench(t, r) })
	if t.Failed() {
		return // the coverage check below would only repeat the failure
	}
	t.Run("every command line is run or mapped", func(t *testing.T) {
		readmeCovered := readmeCoverage()
		for _, l := range lines {
			if r.ran[l.text] {
				t.Logf("README.md:%d: ran %s", l.line, l.text)
				continue
			}
			c, ok := readmeCovered[l.text]
			if ok {
				t.Logf("README.md:%d: %s: in %s", l.line, l.text, c.file)
			}
			if !ok {
				t.Errorf("README.md:%d: %q is neither run nor mapped in test/readme_test.go (run it there, or add it to readmeCovered with the test that covers it)", l.line, l.text)
				continue
			}
			data, err := os.ReadFile(filepath.Join("..", c.file))
			if err != nil || !bytes.Contains(data, []byte(c.contains)) {
				t.Errorf("README.md:%d: %q is mapped to %s containing %q, which it does not (%v)", l.line, l.text, c.file, c.contains, err)
			}
		}
		for text := range readmeCovered {
			if _, ok := r.lines[text]; !ok {
				t.Errorf("readmeCovered maps %q, which README.md no longer shows; remove or update the entry", text)
			}
		}
	})
}

// readmeServe follows "Pointing a real transmitter at setgate", "Running
// it" and "Operator verbs" with one issuer, acme, whose key comes from
// setgate send --gen-key and whose JWKS a loopback server publishes.
func readmeServe(t *testing.T, r *readmeRun) {
	sh := newReadmeShell(t)

	// A push token as the README makes one, in the temp dir instead of /run/secrets.
	line := r.line(t, "openssl rand -hex 32 > /run/secrets/acme-push-token")
	sh.must(strings.ReplaceAll(line, "/run/secrets/", sh.dir+"/"), nil)
	token, err := os.ReadFile(sh.path("acme-push-token"))
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(token) {
		t.Fatalf("want 32 random bytes in hex, got %q (%v)", token, err)
	}
	writeFile(t, sh.path("push.token"), string(token))

	// The transmitter's key and the JWKS to publish.
	sh.must(r.line(t, "setgate send --gen-key acme.pem --alg ES256 > acme-jwks.json"), nil)
	jwksJSON, err := os.ReadFile(sh.path("acme-jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksJSON)
	}))
	t.Cleanup(jwks.Close)
	writeFile(t, sh.path("issuers.yaml"), fmt.Sprintf(`issuers:
  - name: acme
    issuer: https://idp.acme.example/
    audience: [https://setgate.example/]
    jwks_uri: %s/jwks
    algorithms: [ES256]
    push:
      bearer_token_file: %s
`, jwks.URL, sh.path("acme-push-token")))

	help := sh.must(r.line(t, "./setgate --help"), nil)
	for _, want := range []string{"push (RFC 8935)", "poll (RFC 8936)", "SETGATE_HTTP_ADDR", "SETGATE_ISSUERS_FILE"} {
		if !strings.Contains(help, want) {
			t.Errorf("./setgate --help: want %q in\n%s", want, help)
		}
	}

	// serve, on loopback ports it picks itself.
	env := map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR": sh.path("data"), "SETGATE_SHUTDOWN_TIMEOUT": "10s",
	}
	log := newLogSink()
	sh.start(r.line(t, "SETGATE_ISSUERS_FILE=issuers.yaml ./setgate serve"), env, log)
	var started map[string]any
	select {
	case started = <-log.started:
	case <-time.After(waitLong):
		t.Fatalf("setgate serve did not start:\n%s", log)
	}
	push, _ := started["push"].(string)
	admin, _ := started["admin"].(string)
	natsURL, _ := started["nats"].(string)
	u, err := url.Parse(natsURL)
	if err != nil || push == "" || admin == "" {
		t.Fatalf("start-up line: %v (%v)", started, err)
	}
	checkFor(t, waitLong, poll, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})
	// The verbs run in serve's environment, with the address NATS took.
	env["SETGATE_EMBEDDED_NATS_ADDR"] = u.Host
	env["SETGATE_ISSUERS_FILE"] = sh.path("issuers.yaml")

	tail := sh.start(r.line(t, "setgate tail"), env, nil)
	tail.waitFor(t, tail.stderr, "following")

	out := sh.must(strings.Replace(r.line(t, "setgate send --to https://setgate.example/events/acme --key acme.pem --token-file push.token "+
		"--iss https://idp.acme.example/ --aud https://setgate.example/ --event caep.session-revoked --email alice@acme.example"),
		"https://setgate.example/events/acme", "http://"+push+"/events/acme", 1), env)
	if !strings.Contains(out, "202 Accepted") {
		t.Errorf("send: want 202 Accepted, got %q", out)
	}
	tail.waitFor(t, tail.stdout, "secevent.caep.session-revoked.acme  acme  jti=")
	if !strings.Contains(tail.stdout.String(), "alice@acme.example") {
		t.Errorf("tail: want the subject, got\n%s", tail.stdout)
	}

	// A SET signed elsewhere with the same key, in set.jwt.
	jti := "readme-" + randomHex(t)
	writeFile(t, sh.path("set.jwt"), readmeSignSET(t, sh.path("acme.pem"), jwksJSON, jti)+"\n")
	verifyLine := r.line(t, "setgate verify --issuers issuers.yaml --issuer acme set.jwt")
	for _, line := range []string{
		verifyLine, // as written
		verifyLine[:len(verifyLine)-len("set.jwt")] + "- < set.jwt", // "or - for stdin"
		verifyLine + " --json", // "--json for machines"
		verifyLine[:len(verifyLine)-len("set.jwt")] + `"$(cat set.jwt)"`, // the token itself
	} {
		out := sh.must(line, env)
		if !strings.Contains(out, "ACCEPTED by issuer acme") && !strings.Contains(out, `"accepted":true`) {
			t.Errorf("%s: want the SET accepted, got\n%s", line, out)
		}
		if !strings.Contains(out, "secevent.caep.session-revoked.acme") {
			t.Errorf("%s: want the subject it would get, got\n%s", line, out)
		}
	}

	// Push set.jwt by hand.
	curl := r.line(t, `curl -i -X POST http://127.0.0.1:8080/events/acme -H 'Content-Type: application/secevent+jwt' -H "Authorization: Bearer $TOKEN" --data-binary @set.jwt`)
	out = sh.must(strings.Replace(curl, "http://127.0.0.1:8080", "http://"+push, 1), map[string]string{"TOKEN": strings.TrimSpace(string(token))})
	if !strings.HasPrefix(out, "HTTP/1.1 202 Accepted") {
		t.Errorf("curl: want HTTP/1.1 202 Accepted, got\n%s", out)
	}
	tail.waitFor(t, tail.stdout, "jti="+jti)
}

func TestReadmeCommandLines(t *testing.T) {
	doc := "# x\n\nRun `setgate demo` or `nats sub 'a.>' --server nats://h:1`; not `setgate.rejected.x`, `go`, `SETGATE_X`.\n\n" +
		"```sh\n# a comment line\nsetgate verify set.jwt     # or - for stdin\n" +
		"curl -H 'X: a # not a comment' \\\n   --data-binary @set.jwt\n\nsetgate demo\n```\n\n" +
		"```\nsetgate output, not a command\n```\n\n```yaml\nsetgate: no\n```\n"
	want := []readmeLine{
		{"setgate demo", 3},
		{"nats sub 'a.>' --server nats://h:1", 3},
		{"setgate verify set.jwt", 7},
		{"curl -H 'X: a # not a comment' --data-binary @set.jwt", 8},
	}
	got := commandLines([]byte(doc))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("want %v, got %v", want, got)
	}
}

// readmeSignSET signs an SSF session-revoked SET for acme with the PEM key
// keyFile under the kid that jwksJSON publishes for it.
func readmeSignSET(t testing.TB, keyFile string, jwksJSON []byte, jti string) string {
	t.Helper()
	pemData, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatalf("%s: no PEM block", keyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwksJSON, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("want one key in the JWKS, got %s (%v)", jwksJSON, err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.acme.example/", "aud": "https://setgate.example/", "jti": jti, "iat": time.Now().Unix(),
		"sub_id": map[string]any{"format": "email", "email": "alice@acme.example"},
		"events": map[string]any{transmitter.SessionRevoked: map[string]any{"initiating_entity": "policy"}},
	})
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = set.Keys[0].Kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// readmeStream runs the Operator verbs' stream lines against a loopback
// SSF transmitter, with the issuers file made of the README's own "Adding
// an SSF transmitter" entry (its issuer URL pointed at the transmitter and
// /run/secrets/ at the temp dir).
func readmeStream(t *testing.T, r *readmeRun) {
	sh := newReadmeShell(t)
	const mgmtToken = "readme-ssf-management-token"
	tr, err := transmitter.NewSSFTransmitter(transmitter.SSFOptions{Alg: "ES256", Audience: "https://setgate.example.com/", Bearer: mgmtToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	entry := readmeYAMLBlock(t, "- name: sgnl")
	entry = strings.ReplaceAll(entry, "https://sgnl.example/", tr.Issuer())
	entry = strings.ReplaceAll(entry, "/run/secrets/", sh.dir+"/")
	writeFile(t, sh.path("issuers.yaml"), entry)
	writeFile(t, sh.path("sgnl-push-token"), "readme-ssf-push-token\n")
	writeFile(t, sh.path("sgnl-ssf-token"), mgmtToken+"\n")
	// As in "Running it": the issuers file from the environment; push
	// streams need the public URL.
	env := map[string]string{"SETGATE_ISSUERS_FILE": "issuers.yaml", "SETGATE_PUBLIC_URL": "https://setgate.example.com"}

	out := sh.must(r.line(t, "setgate stream create --issuer sgnl"), env)
	streams := tr.Streams()
	if len(streams) != 1 || !strings.Contains(out, "stream "+streams[0].StreamID+" created") {
		t.Fatalf("create: want one stream created, got %+v\n%s", streams, out)
	}
	id := streams[0].StreamID
	if got := streams[0].Delivery.EndpointURL; got != "https://setgate.example.com/events/sgnl" {
		t.Errorf("create: want the push endpoint https://setgate.example.com/events/sgnl, got %q", got)
	}
	out = sh.must(r.line(t, "setgate stream get --issuers issuers.yaml --issuer sgnl"), env)
	if !strings.Contains(out, "1 stream(s)") || !strings.Contains(out, "stream "+id) || !strings.Contains(out, "status:            enabled") {
		t.Errorf("get: want the stream with its status, got\n%s", out)
	}
	out = sh.must(r.line(t, "setgate stream verify --issuer sgnl"), env)
	if !strings.Contains(out, "verification requested for stream "+id) {
		t.Errorf("verify: want a verification requested, got\n%s", out)
	}
	out = sh.must(r.line(t, `setgate stream status --issuer sgnl paused --reason "maintenance"`), env)
	if status, reason := tr.StreamStatus(id); status != "paused" || reason != "maintenance" {
		t.Errorf("status: want the stream paused for maintenance, got %q %q\n%s", status, reason, out)
	}
	out = sh.must(r.line(t, "setgate stream replace --issuer sgnl"), env)
	if tr.Replaced() != 1 {
		t.Errorf("replace: want one PUT at the transmitter, got %d\n%s", tr.Replaced(), out)
	}
	out = sh.must(r.line(t, "setgate subject add --issuer sgnl --format email --email alice@example.com"), env)
	if subs := tr.Subjects(id); len(subs) != 1 || !strings.Contains(subs[0], "alice@example.com") {
		t.Errorf("subject add: want alice@example.com added to stream %s, got %v\n%s", id, subs, out)
	}
	out = sh.must(strings.Replace(r.line(t, "setgate stream delete --issuer sgnl --stream-id ID"), "--stream-id ID", "--stream-id "+id, 1), env)
	if !strings.Contains(out, "stream "+id+" deleted") || len(tr.Streams()) != 0 {
		t.Errorf("delete: want the stream gone, got %+v\n%s", tr.Streams(), out)
	}
}

// readmeYAMLBlock returns the README's ```yaml block that contains marker.
func readmeYAMLBlock(t testing.TB, marker string) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(data), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("README.md has no yaml block with %q", marker)
	return ""
}

// readmeDemo runs the demo and watches it with the README's nats line.
func readmeDemo(t *testing.T, r *readmeRun) {
	sh := newReadmeShell(t)
	// The demo takes 8080, 9090 and 4222 when free; here it always takes
	// random loopback ports, as it does when those are taken.
	env := map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
	}
	line := r.line(t, "go run ./cmd/setgate demo")
	demo := sh.start(strings.Replace(line, "go run ./cmd/setgate", "setgate", 1), env, nil)
	demo.waitFor(t, demo.stdout, "(stream ")
	m := regexp.MustCompile(`NATS (nats://\S+) \(stream`).FindStringSubmatch(demo.stdout.String())
	if m == nil {
		t.Fatalf("the demo does not say where NATS is:\n%s", demo.stdout)
	}
	natsURL := m[1]

	// The line of "Running it", with the password file the demo prints.
	demo.waitFor(t, demo.stdout, "Watch with any NATS client")
	pw := regexp.MustCompile(`--password "\$\(cat (\S+)\)"`).FindStringSubmatch(demo.stdout.String())
	if pw == nil {
		t.Fatalf("the demo does not name its password file:\n%s", demo.stdout)
	}
	natsLine := r.line(t, `nats sub 'secevent.>' --server nats://127.0.0.1:4222 --user consumer --password "$(cat data/consumer.password)"`)
	natsLine = strings.ReplaceAll(natsLine, "nats://127.0.0.1:4222", natsURL)
	got := readmeNATSSub(t, sh, strings.ReplaceAll(natsLine, "data/consumer.password", pw[1]))
	if !strings.HasPrefix(got.Subject, "secevent.") {
		t.Errorf("nats sub: want an event on secevent.>, got %q", got.Subject)
	}
	demo.waitFor(t, demo.stdout, "202 Accepted")
	demo.waitFor(t, demo.stdout, "stored #1")
}

// readmeNATSSub performs the README's `nats sub …` line and returns the
// first message it receives. The nats CLI is not installed: sh expands the
// line as written (quotes, $(…) for a password file) into the argument
// list the CLI would get, and the same subscription with the same server,
// credential and subject is made with nats.go. A flag the CLI line uses
// that this does not know fails the test.
func readmeNATSSub(t testing.TB, sh *readmeShell, line string) *nats.Msg {
	t.Helper()
	out := sh.must(`nats() { printf '%s\0' "$@"; }; `+line, nil)
	args := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	if len(args) == 0 || args[0] != "sub" {
		t.Fatalf("%s: want nats sub, got %q", line, args)
	}
	var subject, server, user, password string
	flags := map[string]*string{"--server": &server, "-s": &server, "--user": &user, "--password": &password}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			if subject != "" {
				t.Fatalf("%s: two subjects %q and %q", line, subject, a)
			}
			subject = a
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		p, ok := flags[name]
		if !ok {
			t.Fatalf("%s: flag %s is not handled by readmeNATSSub; teach it what the nats CLI does with it", line, name)
		}
		if !hasValue {
			if i+1 >= len(args) {
				t.Fatalf("%s: %s without a value", line, name)
			}
			i++
			value = args[i]
		}
		*p = value
	}
	if subject == "" || server == "" {
		t.Fatalf("%s: want a subject and --server, got %q", line, args)
	}
	opts := []nats.Option{nats.Name("readme nats sub")}
	if user != "" || password != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect(server, opts...)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	msg, err := sub.NextMsg(waitLong)
	if err != nil {
		t.Fatalf("%s: no message: %v", line, err)
	}
	return msg
}

// readmeBench runs the Performance section's single-connection and open
// loop lines at CI size (--short appended: 500 SETs, short ceilings).
func readmeBench(t *testing.T, r *readmeRun) {
	sh := newReadmeShell(t)
	for _, text := range []string{
		"go run ./cmd/setgate bench --mode push --concurrency 1 --duration 5s",
		"go run ./cmd/setgate bench --mode push --rate 4000",
	} {
		line := strings.Replace(r.line(t, text), "go run ./cmd/setgate", "setgate", 1) + " --short"
		out := sh.must(line, nil)
		if !strings.Contains(out, "PASS") {
			t.Errorf("%s: want the stream check to pass, got\n%s", line, out)
		}
	}
}
