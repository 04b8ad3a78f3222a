package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "defaults", check: func(t *testing.T, o options) {
			if o.rules != DefaultRulesPath || o.rulesGiven || o.queues < 1 || o.failOpen || o.mark != 0x20000000 {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "all set", args: []string{"--rules", "x.yaml", "--queues", "3", "--queue-num", "10", "--fail-open", "--log-level", "debug", "--mark", "0x4"},
			check: func(t *testing.T, o options) {
				if o.rules != "x.yaml" || !o.rulesGiven || o.queues != 3 || o.queueNum != 10 || !o.failOpen || o.logLevel != slog.LevelDebug || o.mark != 4 {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "zero queues", args: []string{"--queues", "0"}, wantErr: "queues"},
		{name: "queues past 65535", args: []string{"--queue-num", "65535", "--queues", "2"}, wantErr: "65535"},
		{name: "bad level", args: []string{"--log-level", "loud"}, wantErr: "log-level"},
		{name: "zero mark", args: []string{"--mark", "0"}, wantErr: "mark"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "not defined"},
		{name: "negative reconcile interval", args: []string{"--reconcile-interval", "-1s"}, wantErr: "reconcile-interval"},
		{name: "reconcile off", args: []string{"--reconcile-interval", "0"}, check: func(t *testing.T, o options) {
			if o.reconcile != 0 || o.ownerLock != "fwd-owner" {
				t.Errorf("parsed: %+v", o)
			}
		}},
		{name: "queue nap", args: []string{"--queue-nap", "50us"}, check: func(t *testing.T, o options) {
			if o.queueNap != 50*time.Microsecond {
				t.Errorf("queue nap: %v", o.queueNap)
			}
		}},
		{name: "queue nap off by default", check: func(t *testing.T, o options) {
			if o.queueNap != 0 {
				t.Errorf("queue nap: %v", o.queueNap)
			}
		}},
		{name: "queue nap too long", args: []string{"--queue-nap", "2ms"}, wantErr: "--queue-nap 2ms: want 0..1ms"},
		{name: "negative queue nap", args: []string{"--queue-nap", "-1us"}, wantErr: "--queue-nap -1µs: want 0..1ms"},
		{name: "negative max-rules", args: []string{"--max-rules", "-1"}, wantErr: "--max-rules -1: want at least 1"},
		{name: "zero max-file-bytes", args: []string{"--max-file-bytes", "0"}, wantErr: "--max-file-bytes 0: want at least 1"},
		{name: "metrics on loopback", args: []string{"--metrics", "127.0.0.1:9101"}, check: func(t *testing.T, o options) {
			if o.metrics != "127.0.0.1:9101" || o.metricsPublic {
				t.Errorf("metrics: %q public %v", o.metrics, o.metricsPublic)
			}
		}},
		{name: "metrics on every address", args: []string{"--metrics", ":9101"}, wantErr: "--metrics :9101 listens on every address, not on loopback"},
		{name: "metrics on a public address", args: []string{"--metrics", "198.18.0.1:9101"}, wantErr: "--metrics 198.18.0.1:9101 listens on 198.18.0.1, not on loopback: listen on 127.0.0.1 or [::1], or allow it with --metrics-public"},
		{name: "metrics public allowed", args: []string{"--metrics", "198.18.0.1:9101", "--metrics-public"}, check: func(t *testing.T, o options) {
			if o.metrics != "198.18.0.1:9101" || !o.metricsPublic {
				t.Errorf("metrics: %q public %v", o.metrics, o.metricsPublic)
			}
		}},
		{name: "metrics without port", args: []string{"--metrics", "127.0.0.1"}, wantErr: `--metrics "127.0.0.1": want HOST:PORT`},
		{name: "limits", args: []string{"--max-rules", "10", "--max-file-bytes", "4096"}, check: func(t *testing.T, o options) {
			if o.maxRules != 10 || o.maxFileBytes != 4096 {
				t.Errorf("limits: %d rules, %d bytes", o.maxRules, o.maxFileBytes)
			}
		}},
		{name: "flow log off by default", check: func(t *testing.T, o options) {
			if o.flowLog != (flowLogOptions{maxSize: 64 << 20, files: 5, rate: 10000}) {
				t.Errorf("flow log defaults: %+v", o.flowLog)
			}
		}},
		{name: "flow log", args: []string{"--flow-log", "/var/log/fwd/flows.log", "--flow-log-max-size", "1MiB", "--flow-log-files", "3", "--flow-log-rate", "50"},
			check: func(t *testing.T, o options) {
				if o.flowLog != (flowLogOptions{path: "/var/log/fwd/flows.log", maxSize: 1 << 20, files: 3, rate: 50}) {
					t.Errorf("flow log: %+v", o.flowLog)
				}
			}},
		{name: "flow log size in bytes", args: []string{"--flow-log", "f", "--flow-log-max-size", "10000"}, check: func(t *testing.T, o options) {
			if o.flowLog.maxSize != 10000 {
				t.Errorf("size %d, want 10000", o.flowLog.maxSize)
			}
		}},
		{name: "flow log size in G", args: []string{"--flow-log", "f", "--flow-log-max-size", "2G"}, check: func(t *testing.T, o options) {
			if o.flowLog.maxSize != 2<<30 {
				t.Errorf("size %d, want 2 GiB", o.flowLog.maxSize)
			}
		}},
		{name: "flow log bad size", args: []string{"--flow-log", "f", "--flow-log-max-size", "12x"}, wantErr: `--flow-log-max-size "12x"`},
		{name: "flow log tiny size", args: []string{"--flow-log", "f", "--flow-log-max-size", "100"}, wantErr: `--flow-log-max-size "100": want a size of at least 4KiB`},
		{name: "flow log size overflow", args: []string{"--flow-log", "f", "--flow-log-max-size", "99999999999GiB"}, wantErr: "--flow-log-max-size"},
		{name: "flow log zero files", args: []string{"--flow-log", "f", "--flow-log-files", "0"}, wantErr: "--flow-log-files 0: want at least 1"},
		{name: "flow log zero rate", args: []string{"--flow-log", "f", "--flow-log-rate", "0"}, wantErr: "--flow-log-rate 0: want at least 1"},
		{name: "flow log option without the log", args: []string{"--flow-log-rate", "5"}, wantErr: "--flow-log-rate needs --flow-log FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestBadRulesFileRefusesToStart(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	body := "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 70000, from: [any]}\n      - {proto: tcp, ports: 22, from: [10.0.0.300]}\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--rules", p}, &stderr); code != exitBadRules {
		t.Errorf("exit code %d, want %d", code, exitBadRules)
	}
	out := stderr.String()
	if !strings.Contains(out, "not starting") || !strings.Contains(out, "bad.yaml:5:") || !strings.Contains(out, "bad.yaml:6:") {
		t.Errorf("stderr does not name every error:\n%s", out)
	}
	if code := run([]string{"--rules", filepath.Join(t.TempDir(), "missing.yaml")}, &stderr); code != exitBadRules {
		t.Errorf("missing file: exit code %d, want %d", code, exitBadRules)
	}
}

// TestRulesFileNotRegularRefusesToStart: a FIFO at the rules path makes
// fwd refuse to start at once (it blocked for good), and --max-file-bytes
// bounds what it reads. The timeout only detects a hang.
func TestRulesFileNotRegularRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("version: 1\ngroups: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fifo", []string{"--rules", fifo}, "is a named pipe (FIFO), not a regular file"},
		{"over the limit", []string{"--rules", good, "--max-file-bytes", "8"}, "over the limit of 8 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- run(tt.args, &stderr) }()
			select {
			case code := <-done:
				if code != exitBadRules || !strings.Contains(stderr.String(), tt.want) {
					t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), exitBadRules, tt.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("fwd hangs on start")
			}
		})
	}
}

func TestRulesPathFallback(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	dir := t.TempDir()
	given := filepath.Join(dir, "given.yaml")
	if p, err := rulesPath(options{rules: given, rulesGiven: true}, log); err != nil || p != given {
		t.Errorf("given path: %q, %v", p, err)
	}
	existing := filepath.Join(dir, "rules.yaml")
	os.WriteFile(existing, []byte("x"), 0o644)
	if p, err := rulesPath(options{rules: existing}, log); err != nil || p != existing {
		t.Errorf("existing default: %q, %v", p, err)
	}
	// The default missing: the shipped file next to the test binary is
	// not there either, so it is an error naming the missing path.
	missing := filepath.Join(dir, "missing.yaml")
	p, err := rulesPath(options{rules: missing}, log)
	if err == nil {
		if !strings.Contains(logBuf.String(), "shipped default") {
			t.Errorf("fell back to %s without saying so", p)
		}
	} else if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v does not name %s", err, missing)
	}
}

// TestMissingRulesFileSaysHowToCreateIt (issue 18): a --rules file that
// does not exist (the systemd unit's /etc/fwd/rules.yaml before it was
// installed) stops fwd at start with an error that names the file and
// the command that creates it, from the shipped rules when fwd finds
// them. The fallback to the shipped rules is only for fwd without
// --rules.
func TestMissingRulesFileSaysHowToCreateIt(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "etc", "fwd", "rules.yaml")
	var stderr bytes.Buffer
	if code := run([]string{"--rules", missing}, &stderr); code != exitBadRules {
		t.Errorf("exit code %d, want %d", code, exitBadRules)
	}
	want := "fwd: rules file " + missing + " does not exist, not starting. Create it from the rules shipped with fwd (in fwd's source tree), then edit it:\n" +
		"  install -D -m 0644 rules/default.yaml " + missing + "\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}

	shipped := filepath.Join(dir, "share", "fwd", "default.yaml")
	if err := os.MkdirAll(filepath.Dir(shipped), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shipped, []byte("version: 1\ngroups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := missingRules(missing, []string{filepath.Join(dir, "rules", "default.yaml"), filepath.Join(dir, "bin", "..", "share", "fwd", "default.yaml")})
	if !strings.Contains(got, "\n  install -D -m 0644 "+shipped+" "+missing+"\n") || strings.Contains(got, "source tree") {
		t.Errorf("with shipped rules at %s:\n%s", shipped, got)
	}
}
