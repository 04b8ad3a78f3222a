package flowlog

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxSize    = 64 << 20 // bytes per file
	DefaultFiles      = 5        // path, path.1 ... path.4
	DefaultRate       = 10000    // lines per second
	DefaultBuffer     = 8192     // records waiting for the writer
	DefaultFlushEvery = time.Second
)

// Config configures a Logger. Zero fields take the defaults.
type Config struct {
	Path    string // the current file; older ones are Path.1, Path.2...
	MaxSize int64  // a file is rotated before a line would take it past MaxSize bytes
	Files   int    // files kept, the current one included
	Rate    int    // lines written per second at most; the rest are skipped and counted
	// Buffer is how many records may wait for the writer; beyond it
	// Log drops them (counted), never waits.
	Buffer     int
	FlushEvery time.Duration
	// Log receives write errors (once until writing works again).
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.Files <= 0 {
		c.Files = DefaultFiles
	}
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = DefaultFlushEvery
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Stats are a Logger's counters.
type Stats struct {
	Written uint64 // flow lines written (SKIPDATA lines not included)
	Skipped uint64 // records not written because of the rate limit
	Dropped uint64 // records dropped because the buffer was full
	Errors  uint64 // failed writes, flushes and rotations
}

// Logger is an open flow log. Log may be called from any goroutine;
// one goroutine of the Logger's own writes.
type Logger struct {
	cfg  Config
	ch   chan Record
	quit chan struct{}
	done chan struct{}
	stop sync.Once
	err  error // close's, once done is closed

	written, skipped, dropped, errs atomic.Uint64

	// The writer goroutine's own.
	rot         *rotator
	lim         limiter
	buf         []byte
	pending     uint64 // records not written since the last SKIPDATA line
	pendStart   time.Time
	pendEnd     time.Time
	seenDropped uint64 // of dropped, the part already in pending
	lastTick    time.Time
	failing     bool
}

// Open opens (or creates) cfg.Path for appending and starts the writer.
func Open(cfg Config) (*Logger, error) {
	l, err := newLogger(cfg)
	if err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// newLogger opens the file; the writer is not started.
func newLogger(cfg Config) (*Logger, error) {
	cfg.setDefaults()
	rot, err := openRotator(cfg.Path, cfg.MaxSize, cfg.Files)
	if err != nil {
		return nil, err
	}
	return &Logger{
		cfg:      cfg,
		ch:       make(chan Record, cfg.Buffer),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		rot:      rot,
		lim:      limiter{rate: cfg.Rate},
		buf:      make([]byte, 0, 256),
		lastTick: time.Now(),
	}, nil
}

// Log hands r to the writer. It never blocks and allocates nothing: when
// the buffer is full, r is dropped and counted (and reported in the next
// SKIPDATA line). Records logged after Close are lost.
func (l *Logger) Log(r Record) {
	select {
	case l.ch <- r:
	default:
		l.dropped.Add(1)
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	return Stats{
		Written: l.written.Load(),
		Skipped: l.skipped.Load(),
		Dropped: l.dropped.Load(),
		Errors:  l.errs.Load(),
	}
}

// Close writes what is buffered, a last SKIPDATA line if records were
// skipped, flushes and closes the file. Call it once the records' senders
// have stopped.
func (l *Logger) Close() error {
	l.stop.Do(func() { close(l.quit) })
	<-l.done
	return l.err
}

// run is the writer goroutine.
func (l *Logger) run() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case r := <-l.ch:
			l.write(r)
		case now := <-t.C:
			l.tick(now)
			l.check(l.rot.flush())
		case <-l.quit:
			for n := len(l.ch); n > 0; n-- {
				l.write(<-l.ch)
			}
			l.tick(time.Now())
			if l.err = l.rot.close(); l.err != nil {
				l.errs.Add(1) // returned by Close, not logged
			}
			return
		}
	}
}

// write writes r, or counts it skipped when over the rate.
func (l *Logger) write(r Record) {
	if !l.lim.allow(r.Time.Unix()) {
		l.skipped.Add(1)
		l.skip(1, r.Time, r.Time)
		return
	}
	l.buf = AppendLine(l.buf[:0], r)
	if l.check(l.rot.writeLine(l.buf)) {
		l.written.Add(1)
	}
}

// skip adds n records not written between start and end to the next
// SKIPDATA line.
func (l *Logger) skip(n uint64, start, end time.Time) {
	if l.pending == 0 || start.Before(l.pendStart) {
		l.pendStart = start
	}
	if l.pending == 0 || end.After(l.pendEnd) {
		l.pendEnd = end
	}
	l.pending += n
}

// tick adds the records the buffer dropped since the last tick to the
// skipped ones, and writes the SKIPDATA line that reports them.
func (l *Logger) tick(now time.Time) {
	if d := l.dropped.Load() - l.seenDropped; d > 0 {
		l.seenDropped += d
		l.skip(d, l.lastTick, now)
	}
	l.lastTick = now
	if l.pending == 0 {
		return
	}
	l.buf = AppendSkipData(l.buf[:0], l.pending, l.pendStart, l.pendEnd)
	l.pending = 0
	l.check(l.rot.writeLine(l.buf))
}

// check counts err and logs it when writing starts failing, and says so
// when it works again. It reports whether err is nil.
func (l *Logger) check(err error) bool {
	if err == nil {
		if l.failing {
			l.failing = false
			l.cfg.Log.Info("flow log writing again", "path", l.cfg.Path)
		}
		return true
	}
	l.errs.Add(1)
	if !l.failing {
		l.failing = true
		l.cfg.Log.Error("flow log write failed; lines are lost until it works again", "path", l.cfg.Path, "err", err)
	}
	return false
}
