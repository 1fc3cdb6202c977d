package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/setgate/setgate/verify"
)

// Handler returns the push receiver's routes.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	// The push handler gives each request its id itself (requestid.go),
	// without the request copy chi's RequestID middleware makes.
	r.Use(middleware.Recoverer)
	if s.cfg.Metrics != nil {
		r.Use(s.cfg.Metrics.Instrument)
	}
	r.Post("/events/{name}", s.handlePush)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		closeConn(w)
		writeError(w, http.StatusNotFound, verify.CodeInvalidRequest, "Not found; SETs are pushed to /events/{issuer}.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		// Nothing a transmitter sends: close, like 401/403/404, so a
		// client cannot hold connections open without a credential.
		closeConn(w)
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, verify.CodeInvalidRequest, "Only POST is allowed here.")
	})
	return r
}

// AdminHandler returns the admin routes: /healthz, /readyz, and /metrics
// and /issuers when configured.
func (s *Server) AdminHandler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", s.handleReady)
	if s.cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.cfg.Metrics.Handler())
	}
	if s.cfg.State != nil {
		r.Get("/issuers", s.handleIssuers)
	}
	return r
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
