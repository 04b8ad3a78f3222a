package main

import (
	"context"
	"fmt"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/observe"
)

// latencySampleEvery: with --metrics, one verdict in this many is timed.
const latencySampleEvery = 64

// engineConfig is the engine's configuration: with --metrics, the
// workers time a sample of their verdicts and the drop log feeds the
// status page's recent drops.
func (d *daemon) engineConfig() engine.Config {
	cfg := engine.Config{Log: d.log, OnFlow: d.flowHook(), LimitEntries: d.o.limitEntries, ForwardEgressMark: d.o.containers.forwardEgressMark()}
	if d.obs != nil {
		cfg.LatencySampleEvery = latencySampleEvery
		cfg.Drops = d.obs.Drops
	}
	return cfg
}

// observeReload is the lifecycle's Observe: with --metrics, every reload
// goes to the status page's history and the duration histogram.
func (d *daemon) observeReload() func(lifecycle.ReloadEvent) {
	if d.obs == nil {
		return nil
	}
	return d.obs.Reloads.Record
}

// serveMetrics serves the metrics and the status page on --metrics.
func (d *daemon) serveMetrics() error {
	if d.obs == nil {
		return nil
	}
	var fleetStats func() observe.FleetStats // fleet metrics only in fleet mode
	if d.fleet != nil {
		fleetStats = d.fleetStats
	}
	srv, err := observe.Listen(observe.Config{
		Addr: d.o.metrics, Public: d.o.metricsPublic, Recorder: d.obs, Log: d.log,
		Sources: observe.Sources{
			Engine: d.eng, Reloads: d.svc, Log: d.log,
			QueueFirst: uint16(d.o.queueNum), QueueCount: uint16(d.o.queues),
			LatencySampleEvery: latencySampleEvery,
			QueueRestarts:      d.queueRestarts,
			Fleet:              fleetStats,
		},
	})
	if err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	d.metrics = srv
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Error("metrics listener stopped", "err", err)
		}
	}()
	d.log.Info("metrics and status page", "addr", srv.Addr().String(), "url", "http://"+srv.Addr().String()+"/")
	return nil
}

func (d *daemon) stopMetrics(ctx context.Context) error {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.Close(ctx)
}
