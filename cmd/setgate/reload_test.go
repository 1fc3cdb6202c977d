package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
	"github.com/setgate/setgate/internal/transmitter"
)

// reloadGuard only keeps a test that is blocked (as it was before reloads
// were built outside the lock) from hanging the suite; what the tests
// prove is ordering: an answer arrived while a build was still held.
const reloadGuard = 30 * time.Second

// reloadRig is a gateway served in process (embedded NATS, loopback
// listeners) on an issuers file the test rewrites.
type reloadRig struct {
	t    *testing.T
	app  *App
	dir  string
	file string
	logs *verbBuffer
	// issuers are the issuers the next write puts in the file.
	issuers map[string]rigIssuer
}

// rigIssuer is one issuer of the file: SETs signed by tx, its keys at
// jwksURI, or (discovery) its metadata at issuer.
type rigIssuer struct {
	tx        *transmitter.Transmitter
	issuer    string // iss; tx.Issuer() unless set
	jwksURI   string // tx.JWKSURL() unless set; empty with discovery
	discovery bool
}

// newReloadRig serves a gateway whose issuers file holds acme and globex.
func newReloadRig(t *testing.T) *reloadRig {
	t.Helper()
	r := &reloadRig{t: t, dir: t.TempDir(), logs: &verbBuffer{}, issuers: map[string]rigIssuer{}}
	r.file = filepath.Join(r.dir, "issuers.yaml")
	r.issuers["acme"] = rigIssuer{tx: newRigTransmitter(t)}
	r.issuers["globex"] = rigIssuer{tx: newRigTransmitter(t)}
	r.write()

	vars := map[string]string{
		"SETGATE_HTTP_ADDR": "127.0.0.1:0", "SETGATE_ADMIN_ADDR": "127.0.0.1:0", "SETGATE_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
		"SETGATE_DATA_DIR": t.TempDir(), "SETGATE_ISSUERS_FILE": r.file,
		// A held JWKS fetch stays held until the test releases it.
		"SETGATE_JWKS_FETCH_TIMEOUT": "10m",
	}
	r.app = serveTest(t, slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), vars)
	return r
}

func newRigTransmitter(t *testing.T) *transmitter.Transmitter {
	t.Helper()
	tx, err := transmitter.New(transmitter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	return tx
}

// write replaces the issuers file (a rename, as an editor or a ConfigMap
// update does) with r.issuers; the gateway's watcher reloads it.
func (r *reloadRig) write() {
	r.t.Helper()
	var b strings.Builder
	b.WriteString("issuers:\n")
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range r.issuers {
			if !yield(n) {
				return
			}
		}
	}) {
		is := r.issuers[name]
		tokFile := filepath.Join(r.dir, name+".token")
		if err := os.WriteFile(tokFile, []byte(name+"-token\n"), 0o600); err != nil {
			r.t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - name: %s\n    issuer: %s\n    audience: [%s]\n    algorithms: [ES256]\n    push:\n      bearer_token_file: %s\n",
			name, is.iss(), is.tx.Audience(), tokFile)
		switch {
		case is.discovery:
			b.WriteString("    discovery: true\n")
		case is.jwksURI != "":
			fmt.Fprintf(&b, "    jwks_uri: %s\n", is.jwksURI)
		default:
			fmt.Fprintf(&b, "    jwks_uri: %s\n", is.tx.JWKSURL())
		}
	}
	tmp := filepath.Join(r.dir, ".issuers.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.file); err != nil {
		r.t.Fatal(err)
	}
}

func (is rigIssuer) iss() string {
	if is.issuer != "" {
		return is.issuer
	}
	return is.tx.Issuer()
}

// push sends one fresh SET of issuer name (as configured in r.issuers,
// or as tx when name is not configured) and returns the status.
func (r *reloadRig) push(ctx context.Context, name string, tx *transmitter.Transmitter, iss string) (int, error) {
	c := tx.Claims(transmitter.SessionRevoked, nil, "someone@"+name+".example")
	c["iss"] = iss
	tok, err := tx.Sign(c)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.app.PushURL()+"/events/"+name, strings.NewReader(tok))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+name+"-token")
	req.Header.Set("Content-Type", "application/secevent+jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// pushIssuer pushes as the configured issuer name.
func (r *reloadRig) pushIssuer(ctx context.Context, name string) (int, error) {
	is := r.issuers[name]
	return r.push(ctx, name, is.tx, is.iss())
}

// state reads /issuers.
func (r *reloadRig) state(ctx context.Context) (gateway.State, error) {
	var st gateway.State
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.app.AdminURL()+"/issuers", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/issuers: %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// stateIssuers returns the issuer names /issuers lists and their jwks_uri.
func (r *reloadRig) stateIssuers(ctx context.Context) (map[string]string, error) {
	st, err := r.state(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, is := range st.Issuers {
		out[is.Name] = is.JWKSURI
	}
	return out, nil
}

// waitFor retries cond until it holds, within reloadGuard.
func (r *reloadRig) waitFor(what string, cond func(ctx context.Context) error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), reloadGuard)
	defer cancel()
	for {
		err := cond(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("%s: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wantStatus checks that a push of name gets want.
func (r *reloadRig) wantStatus(name string, want int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		got, err := r.pushIssuer(ctx, name)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("push %s: want %d, got %d", name, want, got)
		}
		return nil
	}
}

// holdServer serves a transmitter's JWKS and SSF metadata, holding
// requests for one path until the test releases them.
type holdServer struct {
	srv     *httptest.Server
	hold    string
	entered chan struct{} // closed when a held request arrived
	ended   chan struct{} // closed when a held request returned
	release chan struct{} // closed by the test (or its cleanup)
	hits    atomic.Int64  // requests for the held path
	enter   sync.Once
	end     sync.Once
	free    sync.Once
}

// newHoldServer holds requests for path (/jwks or the SSF well-known
// path) and answers with tx's keys; its issuer is its own URL.
func newHoldServer(t *testing.T, tx *transmitter.Transmitter, path string) *holdServer {
	t.Helper()
	h := &holdServer{hold: path, entered: make(chan struct{}), ended: make(chan struct{}), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == h.hold {
			h.hits.Add(1)
			h.enter.Do(func() { close(h.entered) })
			defer h.end.Do(func() { close(h.ended) })
			select {
			case <-h.release:
			case <-req.Context().Done():
				return
			}
		}
		switch req.URL.Path {
		case "/jwks":
			resp, err := http.Get(tx.JWKSURL())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.Copy(w, resp.Body)
		case "/.well-known/ssf-configuration":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": h.issuer(), "jwks_uri": h.srv.URL + "/jwks"})
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.unblock) // runs first: a held request must return for Close to
	return h
}

func (h *holdServer) issuer() string { return h.srv.URL + "/" }

func (h *holdServer) unblock() { h.free.Do(func() { close(h.release) }) }

// waitEntered waits until a request is held.
func (h *holdServer) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(reloadGuard):
		t.Fatalf("no request reached %s", h.hold)
	}
}

// whileHeld runs op, which must finish while h still holds its request:
// it proves op does not wait for the held build.
func (h *holdServer) whileHeld(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), reloadGuard)
	defer cancel()
	start := time.Now()
	if err := op(ctx); err != nil {
		t.Fatalf("%s while %s is held: %v", what, h.hold, err)
	}
	t.Logf("%s answered in %v while %s was held", what, time.Since(start).Round(time.Microsecond), h.hold)
	select {
	case <-h.ended:
		t.Fatalf("%s answered only after the held request to %s ended", what, h.hold)
	default:
	}
}

// TestReloadHeldJWKSDoesNotBlockOthers reloads a file whose new or
// changed issuer's JWKS does not answer: the other issuers' pushes and
// /issuers are answered while its first fetch is held; a changed issuer
// keeps serving on its old version; once the JWKS answers, the new
// version is in force.
func TestReloadHeldJWKSDoesNotBlockOthers(t *testing.T) {
	tests := []struct {
		name string
		// issuer is added (new) or changed (globex).
		issuer string
		// statusWhileHeld is what a push of issuer gets meanwhile.
		statusWhileHeld int
	}{
		{name: "new issuer", issuer: "initech", statusWhileHeld: http.StatusNotFound},
		{name: "changed issuer", issuer: "globex", statusWhileHeld: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReloadRig(t)
			tx := newRigTransmitter(t)
			if old, ok := r.issuers[tt.issuer]; ok {
				tx = old.tx // changed: same keys, served from elsewhere
			}
			h := newHoldServer(t, tx, "/jwks")
			r.issuers[tt.issuer] = rigIssuer{tx: tx, jwksURI: h.srv.URL + "/jwks"}
			r.write()
			h.waitEntered(t)

			h.whileHeld(t, "acme's push", r.wantStatus("acme", http.StatusAccepted))
			h.whileHeld(t, tt.issuer+"'s push", r.wantStatus(tt.issuer, tt.statusWhileHeld))
			h.whileHeld(t, "/issuers", func(ctx context.Context) error {
				got, err := r.stateIssuers(ctx)
				if err != nil {
					return err
				}
				if jwks, ok := got[tt.issuer]; ok && jwks == h.srv.URL+"/jwks" {
					return fmt.Errorf("/issuers shows %s's new version before it is built", tt.issuer)
				}
				return nil
			})

			h.unblock()
			r.waitFor(tt.issuer+" in force", func(ctx context.Context) error {
				got, err := r.stateIssuers(ctx)
				if err != nil {
					return err
				}
				if got[tt.issuer] != h.srv.URL+"/jwks" {
					return fmt.Errorf("/issuers: %v", got)
				}
				return nil
			})
			r.waitFor(tt.issuer+"'s push", r.wantStatus(tt.issuer, http.StatusAccepted))
			r.waitFor("acme's push", r.wantStatus("acme", http.StatusAccepted))
		})
	}
}

// TestReloadHeldDiscoveryDoesNotBlockOthers adds an issuer whose SSF
// metadata does not answer: the others are served meanwhile, the new one
// is 404 until its build finished, then accepted.
func TestReloadHeldDiscoveryDoesNotBlockOthers(t *testing.T) {
	r := newReloadRig(t)
	tx := newRigTransmitter(t)
	h := newHoldServer(t, tx, "/.well-known/ssf-configuration")
	r.issuers["initech"] = rigIssuer{tx: tx, issuer: h.issuer(), discovery: true}
	r.write()
	h.waitEntered(t)

	h.whileHeld(t, "acme's push", r.wantStatus("acme", http.StatusAccepted))
	h.whileHeld(t, "globex's push", r.wantStatus("globex", http.StatusAccepted))
	h.whileHeld(t, "initech's push", r.wantStatus("initech", http.StatusNotFound))
	h.whileHeld(t, "/issuers", func(ctx context.Context) error {
		_, err := r.state(ctx)
		return err
	})
	// Discovery was not given up on (a give-up would have freed a lock).
	if strings.Contains(r.logs.String(), "ssf discovery failed") {
		t.Fatalf("discovery failed while held:\n%s", r.logs.String())
	}

	h.unblock()
	r.waitFor("initech's push", r.wantStatus("initech", http.StatusAccepted))
	r.waitFor("acme's push", r.wantStatus("acme", http.StatusAccepted))

	// A later reload leaves the unchanged discovery issuer untouched: no
	// new discovery, and it keeps accepting.
	hits := h.hits.Load()
	r.issuers["hooli"] = rigIssuer{tx: newRigTransmitter(t)}
	r.write()
	r.waitFor("hooli's push", r.wantStatus("hooli", http.StatusAccepted))
	if got := h.hits.Load(); got != hits {
		t.Fatalf("the unchanged issuer was discovered again on reload: %d requests, want %d", got, hits)
	}
	r.waitFor("initech's push", r.wantStatus("initech", http.StatusAccepted))
}

// TestReloadQueue runs reloads one at a time: a request made while one
// runs cancels it (cause errSuperseded) and runs next; requests made
// meanwhile merge into one, forced if any was.
func TestReloadQueue(t *testing.T) {
	q := newReloadQueue()
	started := make(chan reloadRequest)
	ended := make(chan error)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		q.run(ctx, func(ctx context.Context, r reloadRequest) {
			started <- r
			if r.why == "hangs" {
				<-ctx.Done()
			}
			ended <- context.Cause(ctx)
		})
	}()
	t.Cleanup(func() { cancel(); <-stopped })

	q.request("hangs", false)
	if r := <-started; r.why != "hangs" {
		t.Fatalf("want the hanging reload, got %+v", r)
	}
	q.request("first", false)
	q.request("SIGHUP", true)
	q.request("last", false)
	if cause := <-ended; cause != errSuperseded {
		t.Fatalf("the running reload: want cause %v, got %v", errSuperseded, cause)
	}
	if r := <-started; r != (reloadRequest{why: "last", force: true}) {
		t.Fatalf("want one merged, forced reload, got %+v", r)
	}
	if cause := <-ended; cause != nil {
		t.Fatalf("the last reload was cancelled: %v", cause)
	}
	select {
	case r := <-started:
		t.Fatalf("a merged request ran again: %+v", r)
	default:
	}
}

// TestReloadSupersedesHeldReload reloads twice while the first reload's
// new issuer holds its JWKS fetch: the second file is put in force at
// once (the first build is cancelled), and the first file's issuer never
// runs, even after its JWKS answers.
func TestReloadSupersedesHeldReload(t *testing.T) {
	r := newReloadRig(t)
	initech := newRigTransmitter(t)
	h := newHoldServer(t, initech, "/jwks")
	r.issuers["initech"] = rigIssuer{tx: initech, jwksURI: h.srv.URL + "/jwks"}
	r.write()
	h.waitEntered(t)

	delete(r.issuers, "initech")
	r.issuers["hooli"] = rigIssuer{tx: newRigTransmitter(t)}
	r.write()
	h.whileHeld(t, "the second file in force", func(ctx context.Context) error {
		for {
			err := r.wantStatus("hooli", http.StatusAccepted)(ctx)
			if err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	h.whileHeld(t, "acme's push", r.wantStatus("acme", http.StatusAccepted))

	h.unblock()
	select {
	case <-h.ended:
	case <-time.After(reloadGuard):
		t.Fatal("the held request did not return")
	}
	want, err := config.LoadIssuers(r.file, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.waitFor("the second file's hash on /issuers", func(ctx context.Context) error {
		st, err := r.state(ctx)
		if err != nil {
			return err
		}
		if st.Config.Hash != want.Hash {
			return fmt.Errorf("config hash: want %s, got %s", want.Hash, st.Config.Hash)
		}
		return nil
	})
	// Nothing of the superseded file comes in force once its JWKS answered.
	got, err := r.stateIssuers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["initech"]; ok || len(got) != 3 {
		t.Fatalf("/issuers after the superseded reload: want acme, globex, hooli, got %v", got)
	}
	if err := r.push1("initech", initech, http.StatusNotFound); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.logs.String(), "superseded by a newer reload") {
		t.Fatalf("the superseded reload is not logged:\n%s", r.logs.String())
	}
}

// push1 pushes one SET of tx as name and checks the status.
func (r *reloadRig) push1(name string, tx *transmitter.Transmitter, want int) error {
	got, err := r.push(r.t.Context(), name, tx, tx.Issuer())
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("push %s: want %d, got %d", name, want, got)
	}
	return nil
}

// TestAffectsWatched: only events on a watched file's own name, or on
// Kubernetes' atomic-update entries beside it, start a reload; another
// file in the same directory (a log written beside the issuers file) does
// not.
func TestAffectsWatched(t *testing.T) {
	watched := []string{"issuers.yaml", "/run/secrets/acme/token", "../conf/issuers.yaml"}
	tests := []struct {
		name string
		want bool
	}{
		{"issuers.yaml", true},
		{"serve.log", false},
		{"issuers.yaml.swp", false},
		{"/run/secrets/acme/token", true},
		{"/run/secrets/acme/..data", true},
		{"/run/secrets/acme/..2026_12_02_14_40_00.123456789", true},
		{"/run/secrets/acme/other", false},
		{"/run/secrets/other/token", false},
		{"../conf/issuers.yaml", true},
		{"../conf/notes.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := affectsWatched(watched, tt.name); got != tt.want {
				t.Errorf("affectsWatched(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}
