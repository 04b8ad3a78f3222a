package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStore(t *testing.T) {
	tests := []struct {
		in      string
		eps     []string
		tcp     int
		wantErr string
	}{
		{in: "etcd://198.18.0.1:2379", eps: []string{"198.18.0.1:2379"}, tcp: 1},
		{in: "etcd://[2001:db8::1]:2379, unix:///run/etcd.sock", eps: []string{"[2001:db8::1]:2379", "unix:///run/etcd.sock"}, tcp: 1},
		{in: "unix://localhost:2379", eps: []string{"unix://localhost:2379"}},
		{in: "http://198.18.0.1:2379", wantErr: "expected etcd://HOST:PORT or unix://PATH"},
		{in: "etcd://198.18.0.1", wantErr: "expected etcd://HOST:PORT"},
		{in: "etcd://198.18.0.1:0", wantErr: "bad port"},
		{in: "unix://", wantErr: "expected unix://PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseStore(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(s.Endpoints, " ") != strings.Join(tt.eps, " ") || len(s.TCP) != tt.tcp {
				t.Fatalf("%+v, %v; want endpoints %v, %d tcp", s, err, tt.eps, tt.tcp)
			}
		})
	}
}

// TestStoreTLS: a client certificate and a CA are loaded; a half pair
// or a CA file without a certificate is refused with what is wrong.
func TestStoreTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       Store
		wantErr string
	}{
		{"cert, key and ca", Store{CertFile: cert, KeyFile: key, CAFile: cert}, ""},
		{"ca only", Store{CAFile: cert}, ""},
		{"cert without key", Store{CertFile: cert}, "--store-cert and --store-key go together"},
		{"ca without a certificate", Store{CAFile: junk}, "holds no PEM certificate"},
		{"missing key file", Store{CertFile: cert, KeyFile: filepath.Join(dir, "nope")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.s.tlsConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || (tt.s.CertFile != "" && len(c.Certificates) != 1) || c.RootCAs == nil {
				t.Fatalf("%+v, %v", c, err)
			}
		})
	}
}

func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	c, k := newCert(t, nil, nil, "fwd-test", nil)
	writeCert(t, dir, "self", c, k)
	return filepath.Join(dir, "self.pem"), filepath.Join(dir, "self-key.pem")
}
