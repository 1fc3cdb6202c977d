package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/nats-io/nats.go"

	"github.com/setgate/setgate/config"
	"github.com/setgate/setgate/gateway"
)

// reloadDebounce lets a burst of file events (an editor's save, a
// ConfigMap's symlink swap) settle into one reload.
const reloadDebounce = 250 * time.Millisecond

// issuersFile is the issuers file an app's configuration comes from.
type issuersFile struct {
	vars map[string]string // what the file's *_env keys name
	// fingerprint and watched are those of the file in force (under
	// App.cfgMu).
	fingerprint [32]byte
	watched     []string
}

// loaded records a configuration that is now in force.
func (app *App) loaded(l *config.LoadedIssuers) {
	app.cfgMu.Lock()
	defer app.cfgMu.Unlock()
	now := time.Now().UTC()
	app.cfgState = gateway.ConfigState{File: app.s.IssuersFile, Hash: l.Hash, LoadedAt: now, LastAttemptAt: now}
	app.file.fingerprint = l.Fingerprint
	app.file.watched = l.Files
}

// reload reads the issuers file again and applies it. A file that does
// not validate, or an issuer that cannot start, is refused as a whole:
// the previous configuration stays in force, the reason is logged (it
// names the issuer and key), counted and shown on /issuers. Unless force
// is set, a file whose content (and secrets) did not change is ignored.
func (app *App) reload(ctx context.Context, why string, force bool) {
	l, err := config.LoadIssuers(app.s.IssuersFile, app.file.vars)
	if err == nil {
		app.cfgMu.Lock()
		same := l.Fingerprint == app.file.fingerprint
		app.cfgMu.Unlock()
		if same && !force {
			return
		}
		err = app.issuers.Apply(ctx, l.Issuers)
	}
	if err != nil && ctx.Err() != nil {
		// Superseded by a newer reload (or shutting down): nothing of
		// this one is in force, and it is neither a success nor a failure.
		app.log.Info("reload abandoned; nothing of it is in force", "reason", why, "cause", context.Cause(ctx))
		return
	}
	if err != nil {
		app.metrics.Reload(false)
		app.cfgMu.Lock()
		app.cfgState.LastAttemptAt, app.cfgState.LastError = time.Now().UTC(), err.Error()
		app.cfgMu.Unlock()
		app.log.Error("issuers file refused; the previous configuration stays in force", "reason", why, "err", err)
		return
	}
	app.metrics.Reload(true)
	app.loaded(l)
	app.log.Info("issuers file loaded", "reason", why, "config_hash", l.Hash, "issuers", len(l.Issuers))
}

// watchConfig reloads on SIGHUP and when the issuers file or a secret
// file it names changes. It watches their directories, not the files, so
// that Kubernetes' ConfigMap and Secret updates (a ..data symlink swapped
// in the directory) are seen as well as in-place edits.
//
// The watches are in place when watchConfig returns; the returned function
// runs the loop until ctx is done. A change between the first load and
// the watches being set is caught by one check right after.
func (app *App) watchConfig(ctx context.Context) (loop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	w, err := fsnotify.NewWatcher()
	if err != nil {
		app.log.Warn("cannot watch the issuers file; reload with SIGHUP", "err", err)
	}
	var dirs []string
	rewatch := func() {
		if w == nil {
			return
		}
		app.cfgMu.Lock()
		files := slices.Clone(app.file.watched)
		app.cfgMu.Unlock()
		var want []string
		for _, f := range files {
			want = append(want, filepath.Dir(f))
		}
		slices.Sort(want)
		want = slices.Compact(want)
		for _, d := range dirs {
			if !slices.Contains(want, d) {
				_ = w.Remove(d)
			}
		}
		for _, d := range want {
			if !slices.Contains(dirs, d) {
				if err := w.Add(d); err != nil {
					app.log.Warn("cannot watch directory", "dir", d, "err", err)
				}
			}
		}
		dirs = want
	}
	rewatch()
	q := newReloadQueue()
	q.request("file changed", false)

	return func() {
		defer signal.Stop(hup)
		if w != nil {
			defer w.Close()
		}
		worker := make(chan struct{})
		go func() {
			defer close(worker)
			q.run(ctx, func(ctx context.Context, r reloadRequest) {
				app.reload(ctx, r.why, r.force)
				rewatch()
			})
		}()
		defer func() { <-worker }() // before the watcher closes: rewatch uses it
		app.configLoop(ctx, w, hup, q)
	}
}

func (app *App) configLoop(ctx context.Context, w *fsnotify.Watcher, hup <-chan os.Signal, q *reloadQueue) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			q.request("SIGHUP", true)
		case ev := <-events:
			app.cfgMu.Lock()
			watched := app.file.watched
			app.cfgMu.Unlock()
			if affectsWatched(watched, ev.Name) {
				debounce.Reset(reloadDebounce)
			}
		case err := <-errs:
			app.log.Warn("file watch error", "err", err)
		case <-debounce.C:
			q.request("file changed", false)
		}
	}
}

// affectsWatched reports whether a change to the directory entry name can
// change one of the watched files: the file itself, or an entry of
// Kubernetes' atomic updates (..data and the timestamped directories it
// points to), through which a mounted file changes without an event on
// its own name. Other files in the same directories — a log file beside
// the issuers file, say — are not watched: their changes would hold a
// reload back for as long as they kept coming, and a refused file whose
// error is logged there would be reloaded again and again.
func affectsWatched(watched []string, name string) bool {
	dir, base := filepath.Dir(name), filepath.Base(name)
	for _, f := range watched {
		if filepath.Dir(f) != dir {
			continue
		}
		if base == filepath.Base(f) || strings.HasPrefix(base, "..") {
			return true
		}
	}
	return false
}

// errSuperseded is why a running reload is cancelled: a newer one was
// asked for.
var errSuperseded = errors.New("superseded by a newer reload")

// reloadRequest is one asked-for reload.
type reloadRequest struct {
	why   string
	force bool // apply even an unchanged file (SIGHUP)
}

// reloadQueue runs reloads one at a time, never on the request path. A
// request made while a reload runs cancels that one (the newer file
// supersedes it: its builds are abandoned and nothing of it comes in
// force) and runs as soon as it has returned; requests made meanwhile
// merge into one, forced if any of them was.
type reloadQueue struct {
	wake chan struct{}

	mu      sync.Mutex
	next    *reloadRequest // asked for, not started
	running *reloadRequest
	cancel  context.CancelCauseFunc // cancels running
}

func newReloadQueue() *reloadQueue {
	return &reloadQueue{wake: make(chan struct{}, 1)}
}

// request asks for a reload and returns at once.
func (q *reloadQueue) request(why string, force bool) {
	q.mu.Lock()
	r := reloadRequest{why: why, force: force}
	for _, prev := range []*reloadRequest{q.next, q.running} {
		if prev != nil {
			r.force = r.force || prev.force
		}
	}
	q.next = &r
	if q.cancel != nil {
		q.cancel(errSuperseded)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run runs the requested reloads until ctx is done.
func (q *reloadQueue) run(ctx context.Context, reload func(context.Context, reloadRequest)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		q.mu.Lock()
		r := q.next
		if r == nil {
			q.mu.Unlock()
			continue
		}
		rctx, cancel := context.WithCancelCause(ctx)
		q.next, q.running, q.cancel = nil, r, cancel
		q.mu.Unlock()

		reload(rctx, *r)

		q.mu.Lock()
		q.running, q.cancel = nil, nil
		q.mu.Unlock()
		cancel(nil)
	}
}

// state reports the running configuration for /issuers and /metrics.
func (app *App) state(ctx context.Context) gateway.State {
	app.cfgMu.Lock()
	st := gateway.State{Config: app.cfgState}
	app.cfgMu.Unlock()
	st.NATS = gateway.NATSState{Connected: app.br.Conn().Status() == nats.CONNECTED, URL: app.br.ClientURL(), Stream: app.s.Stream}
	st.Issuers = app.issuers.State(ctx)
	return st
}
