package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
)

// TestStoreTLSAgainstEtcd: Debian's etcd with client certificate
// authentication on 127.0.0.1 (this test only): a Store with a
// certificate the CA signed reads and writes, one without is refused.
func TestStoreTLSAgainstEtcd(t *testing.T) {
	if _, err := os.Stat(etcdtest.Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd server missing under CI=true: %v", err)
		}
		t.Skipf("needs %s", etcdtest.Binary)
	}
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "fwd-test-ca", nil)
	writeCert(t, dir, "ca", ca, caKey)
	srvCert, srvKey := newCert(t, ca, caKey, "etcd", []netip.Addr{netip.MustParseAddr("127.0.0.1")})
	writeCert(t, dir, "server", srvCert, srvKey)
	cliCert, cliKey := newCert(t, ca, caKey, "fwd", nil)
	writeCert(t, dir, "client", cliCert, cliKey)
	port := freePort(t)
	url := "https://127.0.0.1:" + port
	cmd := exec.Command(etcdtest.Binary, "--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", "unix://localhost:2380", "--initial-advertise-peer-urls", "unix://localhost:2380",
		"--initial-cluster", "t=unix://localhost:2380", "--unsafe-no-fsync",
		"--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
		"--client-cert-auth", "--trusted-ca-file", filepath.Join(dir, "ca.pem"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	st, err := ParseStore("etcd://127.0.0.1:" + port)
	if err != nil {
		t.Fatal(err)
	}
	st.CertFile, st.KeyFile, st.CAFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), filepath.Join(dir, "ca.pem")
	c, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Put(ctx, "/fwd/policy/serial", "1")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put over TLS: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	anon := st
	anon.CertFile, anon.KeyFile = "", ""
	a, err := anon.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := a.Get(ctx, "/fwd/policy/serial"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// newCert makes a certificate for cn signed by parent (self-signed, a
// CA, when parent is nil) with ips as its addresses.
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, ips []netip.Addr) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	signer, signKey := tmpl, k
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func writeCert(t *testing.T, dir, name string, c *x509.Certificate, k *ecdsa.PrivateKey) {
	t.Helper()
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
}
