package observe

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed page
var pageFS embed.FS

// Config configures a Server.
type Config struct {
	Addr     string // HOST:PORT, checked by CheckAddr
	Public   bool   // allow a non-loopback Addr
	Sources  Sources
	Recorder *Recorder
	Log      *slog.Logger
}

// Server serves /metrics, the status page / and /status.json, GET (and
// HEAD) only.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

// Listen checks cfg.Addr, listens on it and starts the series ticker; Serve
// serves.
func Listen(cfg Config) (*Server, error) {
	if err := CheckAddr(cfg.Addr, cfg.Public); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Recorder == nil {
		cfg.Recorder = NewRecorder()
	}
	h, err := Handler(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, cancel: cancel, log: cfg.Log,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cfg.Recorder.Run(ctx, cfg.Sources.Engine, time.Second)
	}()
	return s, nil
}

// Addr is the address listened on (with the port chosen for port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the listener, the requests in flight (within ctx) and the
// ticker.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
	return err
}

// Handler returns the HTTP handler of cfg: the registry with the
// Collector, the Go runtime and process collectors and the reload
// duration histogram, the page and its JSON.
func Handler(cfg Config) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	src := cfg.Sources
	rec := cfg.Recorder
	for _, c := range []prometheus.Collector{
		NewCollector(&src),
		rec.Reloads.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fwd_verdict_latency_sample_every",
			Help: "One verdict in this many is timed into fwd_verdict_latency_seconds."},
			func() float64 { return float64(src.LatencySampleEvery) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	page, err := fs.Sub(pageFS, "page")
	if err != nil {
		return nil, err
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPromLogger{cfg.Log}}))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		if err := enc.Encode(status(&src, rec, started, time.Now())); err != nil {
			cfg.Log.Debug("status.json", "err", err)
		}
	})
	mux.Handle("GET /", http.FileServerFS(page))
	return secure(mux), nil
}

// secure sets headers that keep the page to itself: no script, style or
// connection from elsewhere, no framing, no sniffing.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// slogPromLogger logs promhttp's errors.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Warn("metrics", "err", fmt.Sprint(v...)) }
