// Package observe is fwd's opt-in window for operators (fwd --metrics
// ADDR): Prometheus metrics on /metrics, and a read-only status page on /
// with the JSON it polls on /status.json, all on one HTTP listener that
// is loopback-only unless the operator says otherwise.
//
// Nothing here touches the hot path. The engine's workers keep their own
// counters (and, sampled, a latency histogram); the Collector sums them
// when Prometheus scrapes. The Recorder keeps what the status page shows
// over time, in small bounded rings: per-second accepted and dropped
// counts (filled by a ticker), the most recent drops (fed by the engine's
// rate-limited drop log through engine.DropRecorder) and the last
// reloads (fed by lifecycle's ServiceConfig.Observe).
//
// One job per file: addr.go checks the listen address, collector.go is
// the Prometheus collector, series.go, drops.go and reloads.go are the
// rings, status.go builds the page's JSON, server.go serves it all and
// page/ is the page itself, embedded.
package observe
