package lifecycle

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lockout"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// sshOpen admits ssh from the client's /24 and web from anywhere.
const sshOpen = `version: 1
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 22, from: [198.18.0.0/24]}
      - {proto: tcp, ports: 80, from: [any]}
`

// sshOther admits ssh from another network only.
const sshOther = `version: 1
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 22, from: [203.0.113.0/24]}
      - {proto: tcp, ports: 80, from: [any]}
`

// sshNone admits no ssh at all.
const sshNone = `version: 1
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`

// sshDenied admits ssh from anywhere, but the ACL denies the client.
const sshDenied = `version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.18.0.2]}
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
`

// sshOnIface admits ssh only on eth1.
const sshOnIface = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
  - name: private
    interfaces: [eth1]
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
`

func table(t *testing.T, yaml string) *filter.Table {
	t.Helper()
	f, err := rules.Parse("t.yaml", []byte(yaml), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := compile("t.yaml", f, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestJudge(t *testing.T) {
	admin := &AdminConn{Addr: netip.MustParseAddr("198.18.0.2"), Port: 22, Via: "SSH_CONNECTION of pid 1"}
	onEth1 := &AdminConn{Addr: netip.MustParseAddr("198.18.0.2"), Port: 22, Iface: "eth1"}
	onEth0 := &AdminConn{Addr: netip.MustParseAddr("198.18.0.2"), Port: 22, Iface: "eth0"}
	for _, tc := range []struct {
		name    string
		rules   string
		admin   *AdminConn
		ports   []uint16
		lockout bool
		noSSH   bool
		words   string
	}{
		{"admin admitted", sshOpen, admin, []uint16{22}, false, false, ""},
		{"admin's network gone", sshOther, admin, []uint16{22}, true, false, "drop new ssh connections from 198.18.0.2 to port 22"},
		{"no ssh at all", sshNone, admin, []uint16{22}, true, false, "no ingress rule allows it"},
		{"acl deny in front", sshDenied, admin, []uint16{22}, true, false, "acl"},
		{"admin on another port", sshOpen, &AdminConn{Addr: admin.Addr, Port: 2222}, []uint16{22}, true, false, "port 2222"},
		{"on the interface that admits", sshOnIface, onEth1, []uint16{22}, false, false, ""},
		{"on another interface", sshOnIface, onEth0, []uint16{22}, true, false, ""},
		{"no admin, ssh from somewhere", sshOther, nil, []uint16{22}, false, false, ""},
		{"no admin, no ssh", sshNone, nil, []uint16{22}, false, true, "port 22, where sshd listens"},
		{"no admin, ssh from some but the acl's address", sshDenied, nil, []uint16{22}, false, false, ""},
		{"no admin, ssh on an interface", sshOnIface, nil, []uint16{22}, false, false, ""},
		{"no admin, no sshd", sshNone, nil, nil, false, false, ""},
		{"no admin, sshd on 2222 only", sshOpen, nil, []uint16{2222}, false, true, "port 2222"},
	} {
		j := Judge(table(t, tc.rules), tc.admin, tc.ports)
		if j.Lockout != tc.lockout || j.NoSSH != tc.noSSH || !strings.Contains(j.Message, tc.words) {
			t.Errorf("%s: %+v; want lockout %v, no-ssh %v, words %q", tc.name, j, tc.lockout, tc.noSSH, tc.words)
		}
	}
}

// safeFixture is a service with a fake clock, fake timers and a fake
// /proc: the control peer's session is session (none when invalid).
type safeFixture struct {
	path    string
	h       *holder
	svc     *Service
	now     time.Time
	timers  []fakeTimer
	session lockout.Session
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped *bool
}

func newSafeFixture(t *testing.T, content string, safety Safety) *safeFixture {
	t.Helper()
	fx := &safeFixture{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	fx.path = filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(fx.path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	fx.h = &holder{}
	if safety.Session == nil {
		safety.Session = func(pid int, _ []uint16) (lockout.Session, error) {
			if !fx.session.Client.IsValid() {
				return lockout.Session{}, lockout.ErrNoSession
			}
			s := fx.session
			s.PID, s.Source = pid, "environ"
			return s, nil
		}
	}
	if safety.SSHPorts == nil {
		safety.SSHPorts = func() []uint16 { return []uint16{22} }
	}
	safety.AfterFunc = func(d time.Duration, f func()) func() bool {
		stopped := new(bool)
		fx.timers = append(fx.timers, fakeTimer{at: fx.now.Add(d), f: f, stopped: stopped})
		return func() bool { *stopped = true; return true }
	}
	fx.svc = NewService(ServiceConfig{Path: fx.path, Target: fx.h, Now: func() time.Time { return fx.now }, Safety: safety})
	if err := fx.svc.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fx
}

// advance moves the clock and fires the timers that are due.
func (fx *safeFixture) advance(d time.Duration) {
	fx.now = fx.now.Add(d)
	due := fx.timers
	fx.timers = nil
	for _, tm := range due {
		if *tm.stopped {
			continue
		}
		if tm.at.After(fx.now) {
			fx.timers = append(fx.timers, tm)
			continue
		}
		tm.f()
	}
}

func (fx *safeFixture) write(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(fx.path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func (fx *safeFixture) file(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(fx.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func adminCtx(c Change) context.Context {
	c.Peer = &Peer{PID: 4242, UID: 0}
	return WithChange(context.Background(), &c)
}

func codeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestGuardRefusesLockout(t *testing.T) {
	fx := newSafeFixture(t, sshOpen, Safety{})
	fx.session = lockout.Session{Client: netip.MustParseAddrPort("198.18.0.2:40000"), Server: netip.MustParseAddrPort("198.18.0.1:22")}
	live := fx.h.Table()

	// Reload, edit and apply: each refused, nothing changed.
	fx.write(t, sshOther)
	if _, err := fx.svc.Reload(adminCtx(Change{})); codeOf(err) != CodeLockout || !strings.Contains(err.Error(), "198.18.0.2") {
		t.Fatalf("reload: %v; want lockout naming the admin", err)
	}
	fx.write(t, sshOpen)
	if _, err := fx.svc.Delete(adminCtx(Change{}), DeleteRequest{Numbers: []int{1}}, false); codeOf(err) != CodeLockout {
		t.Fatalf("delete: %v", err)
	}
	if _, err := fx.svc.AddACL(adminCtx(Change{}), ACLAddRequest{ACLSpec: ACLSpec{Action: "deny", RuleSpec: RuleSpec{Proto: "tcp", Ports: []string{"22"}, Peers: []string{"198.18.0.2"}}}}, false); codeOf(err) != CodeLockout {
		t.Fatalf("acl deny: %v", err)
	}
	if _, err := fx.svc.Apply(adminCtx(Change{}), []byte(sshNone), false); codeOf(err) != CodeLockout {
		t.Fatalf("apply: %v", err)
	}
	if fx.h.Table() != live || fx.file(t) != sshOpen {
		t.Fatal("a refused change changed the table or the file")
	}
	// A dry run is answered.
	if _, err := fx.svc.Delete(adminCtx(Change{}), DeleteRequest{Numbers: []int{1}}, true); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	// Without a session (a console, SIGHUP): not refused.
	fx.session = lockout.Session{}
	res, err := fx.svc.Apply(WithChange(context.Background(), &Change{Peer: &Peer{PID: 1}}), []byte(sshOther), false)
	if err != nil {
		t.Fatalf("apply without a session: %v", err)
	}
	fx.svc.Apply(context.Background(), []byte(sshOpen), false)
	fx.session = lockout.Session{Client: netip.MustParseAddrPort("198.18.0.2:40000"), Server: netip.MustParseAddrPort("198.18.0.1:22")}
	// Forced: done, with a loud note.
	res, err = fx.svc.Apply(adminCtx(Change{Force: true}), []byte(sshNone), false)
	if err != nil || !strings.Contains(strings.Join(res.Notes, "\n"), "LOCKOUT FORCED: the new rules drop new ssh connections from 198.18.0.2") {
		t.Fatalf("forced apply: %+v, %v", res, err)
	}
	if st := fx.svc.Safety(); st.Refused != 4 || st.Forced != 1 || len(st.Admins) != 1 || st.Admins[0].Addr != netip.MustParseAddr("198.18.0.2") {
		t.Fatalf("status: %+v", st)
	}
}

func TestGuardWarnsWithoutAdmin(t *testing.T) {
	fx := newSafeFixture(t, sshOpen, Safety{})
	fx.write(t, sshNone)
	res, err := fx.svc.Reload(WithChange(context.Background(), &Change{}))
	if err != nil || !strings.Contains(strings.Join(res.Warnings, "\n"), "admit no new ssh connection from anywhere to port 22") {
		t.Fatalf("reload: %+v, %v; want a warning", res, err)
	}
	// --refuse-lockout refuses it, at the first load too.
	path := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(path, []byte(sshNone), 0o640)
	svc := NewService(ServiceConfig{Path: path, Target: &holder{}, Safety: Safety{RefuseLockout: true, SSHPorts: func() []uint16 { return []uint16{22} }}})
	if _, err := svc.Reload(context.Background()); codeOf(err) != CodeLockout {
		t.Fatalf("first load with --refuse-lockout: %v", err)
	}
	// ... not when sshd does not listen.
	svc = NewService(ServiceConfig{Path: path, Target: &holder{}, Safety: Safety{RefuseLockout: true, SSHPorts: func() []uint16 { return nil }}})
	if _, err := svc.Reload(context.Background()); err != nil {
		t.Fatalf("first load without sshd: %v", err)
	}
}

func TestFailsafeAdmitsAdmin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rules  string
		safety Safety
	}{
		{"rules file", "failsafe: {ssh: true}\n" + sshOpen, Safety{}},
		{"flag", sshOpen, Safety{FailsafeSSH: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newSafeFixture(t, tc.rules, tc.safety)
			fx.session = lockout.Session{Client: netip.MustParseAddrPort("198.18.0.2:40000"), Server: netip.MustParseAddrPort("198.18.0.1:22")}
			admin := netip.MustParseAddr("198.18.0.2")
			// Seen on the socket (status): the live table admits it.
			fx.svc.NotePeer(adminCtx(Change{}))
			if st := fx.svc.Safety(); !st.Failsafe || len(st.FailsafeAddrs) != 1 || st.FailsafeAddrs[0] != admin {
				t.Fatalf("status: %+v", st)
			}
			// Rules without ssh for it: not a lockout, the failsafe admits.
			next := strings.Replace(tc.rules, sshOpen, sshNone, 1)
			if _, err := fx.svc.Apply(adminCtx(Change{}), []byte(next), false); err != nil {
				t.Fatalf("apply: %v", err)
			}
			tab := fx.h.Table()
			if v := tab.Match(key(admin, 22)); !v.IsFailsafe() {
				t.Fatalf("the admin's ssh: %+v", v)
			}
			if tab.Match(key(netip.MustParseAddr("198.18.0.3"), 22)).Accepted() {
				t.Fatal("the failsafe admits an address that is no admin's")
			}
		})
	}
	// Off: nothing admitted beyond the rules.
	fx := newSafeFixture(t, sshOpen, Safety{})
	fx.session = lockout.Session{Client: netip.MustParseAddrPort("198.18.0.2:40000"), Server: netip.MustParseAddrPort("198.18.0.1:22")}
	fx.svc.NotePeer(adminCtx(Change{}))
	fx.svc.Apply(adminCtx(Change{Force: true}), []byte(sshNone), false)
	if fx.h.Table().Match(key(netip.MustParseAddr("198.18.0.2"), 22)).Accepted() {
		t.Fatal("failsafe off, yet the admin is admitted")
	}
}

func key(a netip.Addr, port uint16) filter.Key {
	return filter.Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: a, Port: port}
}

// A session that ends on no address of this host (fwctl in another
// network namespace) does not come through this firewall: no lockout.
func TestGuardIgnoresForeignSession(t *testing.T) {
	ifaceOf := func(a netip.Addr) string {
		if a == netip.MustParseAddr("198.18.0.1") {
			return "eth0"
		}
		return ""
	}
	fx := newSafeFixture(t, sshOpen, Safety{IfaceOf: ifaceOf})
	fx.session = lockout.Session{Client: netip.MustParseAddrPort("192.0.2.9:40000"), Server: netip.MustParseAddrPort("192.0.2.1:22")}
	if _, err := fx.svc.Apply(adminCtx(Change{}), []byte(sshOther), false); err != nil {
		t.Fatalf("a foreign session's change: %v", err)
	}
	if st := fx.svc.Safety(); len(st.Admins) != 0 {
		t.Fatalf("a foreign session was remembered: %+v", st.Admins)
	}
	fx.session = lockout.Session{Client: netip.MustParseAddrPort("198.18.0.2:40000"), Server: netip.MustParseAddrPort("198.18.0.1:22")}
	if _, err := fx.svc.Apply(adminCtx(Change{}), []byte(sshNone), false); codeOf(err) != CodeLockout {
		t.Fatalf("a local session's lockout: %v", err)
	}
	if st := fx.svc.Safety(); len(st.Admins) != 1 || st.Admins[0].Iface != "eth0" {
		t.Fatalf("admins: %+v", st.Admins)
	}
}
