package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Store is where the fleet's keys live, as --store and its TLS flags
// give it.
type Store struct {
	// Endpoints are the client endpoints: "HOST:PORT" for etcd://,
	// "unix://PATH" for unix://.
	Endpoints []string
	// TCP are the host:port pairs of the TCP endpoints (the traffic fwd
	// always lets through); unix endpoints need none.
	TCP []HostPort
	// CertFile, KeyFile and CAFile configure TLS: a client certificate
	// and the CA that signed the servers' (any of them switches TLS on).
	CertFile, KeyFile, CAFile string
}

// HostPort is one TCP endpoint.
type HostPort struct {
	Host string
	Port uint16
}

// ParseStore reads a comma-separated list of store URLs:
// etcd://HOST:PORT (TCP; TLS when a certificate or CA is given) and
// unix://PATH (a unix socket, PATH absolute or relative).
func ParseStore(urls string) (Store, error) {
	var s Store
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		switch {
		case strings.HasPrefix(u, "etcd://"):
			hp := strings.TrimSuffix(strings.TrimPrefix(u, "etcd://"), "/")
			host, port, err := net.SplitHostPort(hp)
			if err != nil || host == "" {
				return Store{}, fmt.Errorf("store %q: expected etcd://HOST:PORT", u)
			}
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil || n == 0 {
				return Store{}, fmt.Errorf("store %q: bad port %q", u, port)
			}
			s.Endpoints = append(s.Endpoints, hp)
			s.TCP = append(s.TCP, HostPort{Host: host, Port: uint16(n)})
		case strings.HasPrefix(u, "unix://"):
			if strings.TrimPrefix(u, "unix://") == "" {
				return Store{}, fmt.Errorf("store %q: expected unix://PATH", u)
			}
			s.Endpoints = append(s.Endpoints, u)
		default:
			return Store{}, fmt.Errorf("store %q: expected etcd://HOST:PORT or unix://PATH", u)
		}
	}
	return s, nil
}

// Dial returns a client of the store. It does not wait for the store:
// fwd starts, and enforces its saved snapshot, while the store is down.
func (s Store) Dial() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:            s.Endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	}
	if s.CertFile != "" || s.KeyFile != "" || s.CAFile != "" {
		t, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("store client: %w", err)
	}
	return c, nil
}

func (s Store) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, fmt.Errorf("store TLS: --store-cert and --store-key go together")
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store TLS: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store TLS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store TLS: %s holds no PEM certificate", s.CAFile)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// Addrs resolves the TCP endpoints to addresses and ports (a name is
// looked up now; the store's addresses are expected to be stable). A
// name that does not resolve is an error, the others are returned.
func (s Store) Addrs(ctx context.Context) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	var errs []error
	for _, hp := range s.TCP {
		if a, err := netip.ParseAddr(hp.Host); err == nil {
			out = append(out, netip.AddrPortFrom(a.Unmap(), hp.Port))
			continue
		}
		as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", hp.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("store endpoint %s: %w", hp.Host, err))
			continue
		}
		for _, a := range as {
			out = append(out, netip.AddrPortFrom(a.Unmap(), hp.Port))
		}
	}
	return out, errors.Join(errs...)
}
