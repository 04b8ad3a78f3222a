package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestParseFleetFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "off", check: func(t *testing.T, o options) {
			if o.fleet.enabled() {
				t.Errorf("fleet mode on without --store")
			}
		}},
		{name: "two endpoints", args: []string{"--store", "etcd://198.18.0.1:2379,unix:///run/etcd.sock", "--host-name", "web-1", "--store-prefix", "/prod/"},
			check: func(t *testing.T, o options) {
				f := o.fleet
				if !f.enabled() || f.host != "web-1" || f.layout.Prefix != "/prod/" || len(f.st.Endpoints) != 2 || len(f.st.TCP) != 1 || f.st.TCP[0].Port != 2379 || f.ttl != fleet.DefaultTTL {
					t.Errorf("parsed: %+v", f)
				}
			}},
		{name: "host name defaults", args: []string{"--store", "unix:///s"}, check: func(t *testing.T, o options) {
			if o.fleet.host == "" {
				t.Errorf("no host name")
			}
		}},
		{name: "addresses", args: []string{"--store", "unix:///s", "--fleet-addr", "198.18.0.5,2001:db8::5"}, check: func(t *testing.T, o options) {
			if len(o.fleet.addrIPs) != 2 {
				t.Errorf("addrs %v", o.fleet.addrIPs)
			}
		}},
		{name: "bad url", args: []string{"--store", "http://x:1"}, wantErr: "--store: store \"http://x:1\": expected etcd://HOST:PORT or unix://PATH"},
		{name: "no port", args: []string{"--store", "etcd://x"}, wantErr: "expected etcd://HOST:PORT"},
		{name: "bad prefix", args: []string{"--store", "unix:///s", "--store-prefix", "fwd"}, wantErr: "--store-prefix"},
		{name: "bad host name", args: []string{"--store", "unix:///s", "--host-name", "a b"}, wantErr: "--host-name"},
		{name: "short ttl", args: []string{"--store", "unix:///s", "--store-lease-ttl", "5s"}, wantErr: "--store-lease-ttl"},
		{name: "long ttl", args: []string{"--store", "unix:///s", "--store-lease-ttl", "1m"}, wantErr: "--store-lease-ttl"},
		{name: "bad address", args: []string{"--store", "unix:///s", "--fleet-addr", "nope"}, wantErr: "--fleet-addr"},
		{name: "rules and store", args: []string{"--store", "unix:///s", "--rules", "x.yaml"}, wantErr: "--rules and --store"},
		{name: "store flag without store", args: []string{"--host-name", "h"}, wantErr: "--host-name needs --store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
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

// TestWithStoreAllowsTheStore: a table that restricts egress gets the
// store's TCP endpoints allowed out; one that does not is left as is.
func TestWithStoreAllowsTheStore(t *testing.T) {
	store := netip.MustParseAddrPort("198.18.0.9:2379")
	f := &fleetRun{store: []netip.AddrPort{store}}
	tests := []struct {
		name      string
		file      string
		wantGroup bool
	}{
		{"none yet", "", true},
		{"egress restricted", "version: 1\ngroups:\n  - name: web\n    ingress: []\n    egress: []\n", true},
		{"egress open", "version: 1\ngroups:\n  - name: web\n    ingress: []\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &rules.File{Version: 1} // before the first snapshot
			if tt.file != "" {
				var err error
				if in, err = rules.Parse("t", []byte(tt.file), rules.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			out := f.withStore(in)
			if got := out.GroupIndex("fwd-store") >= 0; got != tt.wantGroup {
				t.Fatalf("store group present %v, want %v", got, tt.wantGroup)
			}
			tab, err := filter.CompileAt(out, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			restricted := engine.RestrictsEgress(out)
			ok := tab.Match(filter.Key{Dir: direction.Egress, Proto: ipproto.TCP, Peer: store.Addr(), Port: store.Port()}).Accepted()
			if restricted && !ok {
				t.Fatalf("egress to the store %v dropped", store)
			}
			if restricted && tab.Match(filter.Key{Dir: direction.Egress, Proto: ipproto.TCP, Peer: store.Addr(), Port: 2380}).Accepted() {
				t.Fatalf("egress to another port of the store allowed")
			}
			if out.Hash != fleet.Hash(out) || len(in.Groups) != len(out.Groups)-btoi(tt.wantGroup) {
				t.Fatalf("hash %s groups %d", out.Hash, len(out.Groups))
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
