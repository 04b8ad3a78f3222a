package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lockout"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// The lockout guard: before a new table goes live (at start, at every
// reload, edit, ACL edit and apply: the one path, apply), it is asked
// whether the admin who asked for the change could still open a new SSH
// connection to this host. Established connections survive any change
// (conntrack), so a rule set that drops the admin's *next* connection is
// the lockout. The admin's session is read, not guessed: the SSH
// session the control-socket peer runs under (package lockout). Without
// one (SIGHUP, the first load, fwctl on a console), the guard asks
// whether the rules admit new SSH from anywhere while sshd listens, and
// warns when they do not (refuses with Safety.RefuseLockout).

// Error codes of the guard and of confirmed changes.
const (
	CodeLockout        Code = "lockout"         // the change would drop new ssh from the admin's address: nothing changed (force overrides)
	CodeConfirmPending Code = "confirm_pending" // a confirmed change waits for fwctl confirm: no other change until then
)

// MaxAdmins bounds the admin addresses fwd remembers for the failsafe.
const MaxAdmins = 16

// Safety configures the lockout guard, the failsafe and confirmed
// changes (ServiceConfig.Safety). The zero value reads no session and
// no ports: the guard then has nothing to judge.
type Safety struct {
	// Session returns the SSH session the process pid runs under
	// (lockout.ErrNoSession when none); sshPorts are SSHPorts'.
	Session func(pid int, sshPorts []uint16) (lockout.Session, error)
	// SSHPorts returns the ports sshd listens on now.
	SSHPorts func() []uint16
	// IfaceOf names the interface that has address a ("" when none),
	// for rules files whose groups name interfaces.
	IfaceOf func(a netip.Addr) string
	// FailsafeSSH turns the failsafe on whatever the rules file says
	// (fwd --failsafe-ssh).
	FailsafeSSH bool
	// RefuseLockout refuses, rather than warns about, rules that admit
	// no new SSH from anywhere while sshd listens, when no admin session
	// is known (at start, on SIGHUP, from a console): fwd
	// --refuse-lockout.
	RefuseLockout bool
	// AfterFunc runs f after d and returns what stops it; nil means
	// time.AfterFunc. Tests fire the timers themselves.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Change is what a request asks of the change it makes, besides the
// change itself: who asks, whether a lockout is overridden, whether
// the change must be confirmed. The transport puts it in the context
// (WithChange); SIGHUP and the first load have none.
type Change struct {
	Peer    *Peer
	Force   bool          // a lockout warns instead of refusing
	Confirm time.Duration // > 0: roll back unless confirmed within it

	rollback bool // the change is a rollback: no guard, no pending check
	notes    []string
	pending  *Pending
	// confirmNote says what the change waits for (edits list it with
	// their notes; a reload's result carries Confirm alone).
	confirmNote string
}

type changeKey struct{}

// WithChange returns ctx carrying c.
func WithChange(ctx context.Context, c *Change) context.Context {
	return context.WithValue(ctx, changeKey{}, c)
}

func changeOf(ctx context.Context) *Change {
	c, _ := ctx.Value(changeKey{}).(*Change)
	return c
}

// Admin is an admin seen on the control socket: the address an SSH
// session came from and the port it went to.
type Admin struct {
	Addr     netip.Addr `json:"addr"`
	Port     uint16     `json:"port"`
	Iface    string     `json:"iface,omitempty"`
	UID      int        `json:"uid"`
	LastSeen time.Time  `json:"last_seen"`
}

// SafetyStatus is what status shows of the guard, the failsafe and
// confirmed changes.
type SafetyStatus struct {
	// Failsafe is on (rules file failsafe: {ssh: true}, or fwd
	// --failsafe-ssh); FailsafeAddrs and FailsafePorts are what it
	// admits now.
	Failsafe      bool         `json:"failsafe"`
	FailsafeAddrs []netip.Addr `json:"failsafe_addrs,omitempty"`
	FailsafePorts []uint16     `json:"failsafe_ports,omitempty"`
	// SSHPorts are the ports sshd listens on, as last read.
	SSHPorts []uint16 `json:"ssh_ports,omitempty"`
	// Admins are the SSH sessions seen on the control socket, the most
	// recent first (at most MaxAdmins, in memory only).
	Admins []Admin `json:"admins,omitempty"`
	// Refused counts changes refused by the guard, Forced those it let
	// through with force.
	Refused uint64 `json:"lockouts_refused"`
	Forced  uint64 `json:"lockouts_forced"`
	// Pending is the confirmed change waiting for fwctl confirm.
	Pending    *Pending `json:"pending,omitempty"`
	Confirmed  uint64   `json:"confirmed"`
	RolledBack uint64   `json:"rolled_back"`
}

// safetyState is the Service's part for the guard and confirmed
// changes. admins and the counters are under mu (status reads them
// while a change runs); pending and liveData under the Service's mu.
type safetyState struct {
	mu       sync.Mutex
	admins   []Admin
	sshPorts []uint16
	refused  uint64
	forced   uint64
	confirmd uint64
	rolled   uint64
	// pendingInfo is pending's Pending, for status (under mu).
	pendingInfo *Pending

	pending  *pendingChange
	liveData []byte // the bytes of the live rules, nil when unknown
	seq      int
}

// Judgement is the guard's verdict on a table.
type Judgement struct {
	// Lockout: the admin's next SSH connection would be dropped.
	Lockout bool
	// NoSSH: no admin session is known, sshd listens, and the rules
	// admit new SSH on none of its ports from any address.
	NoSSH   bool
	Message string
}

// AdminConn is what the guard checks for the admin: a new tcp
// connection from Addr to Port, coming in on Iface ("" when unknown).
type AdminConn struct {
	Addr  netip.Addr
	Port  uint16
	Iface string
	// Via says where the session was read, for the message.
	Via string
}

// Judge decides whether t would lock the admin out: with admin, whether
// t drops a new tcp connection from the admin's address to the SSH
// port of the session; without one, whether t admits new tcp on any of
// sshPorts from anywhere (a warning, not a lockout).
func Judge(t *filter.Table, admin *AdminConn, sshPorts []uint16) Judgement {
	if admin != nil {
		k := filter.Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: admin.Addr, Port: admin.Port}
		tt := t
		if admin.Iface != "" && t.HasInterfaces() {
			tt, k.Ifindex = t.On(admin.Iface), filter.OnIfindex
		}
		if v := tt.Match(k); !v.Accepted() {
			return Judgement{Lockout: true, Message: fmt.Sprintf(
				"the new rules drop new ssh connections from %s to port %d (the session fwctl runs under, %s): %s; your open session survives, your next login would not",
				admin.Addr, admin.Port, admin.Via, tt.Describe(v))}
		}
		return Judgement{}
	}
	if len(sshPorts) == 0 || admitsSSH(t, sshPorts) {
		return Judgement{}
	}
	words := make([]string, len(sshPorts))
	for i, p := range sshPorts {
		words[i] = fmt.Sprint(p)
	}
	return Judgement{NoSSH: true, Message: fmt.Sprintf(
		"the rules admit no new ssh connection from anywhere to port %s, where sshd listens: a remote admin could not log in", strings.Join(words, ","))}
}

// admitsSSH reports whether some address may open a new tcp connection
// to one of ports: it asks t about one address of every prefix of every
// ingress rule and ACL allow entry that covers the port, so that an ACL
// deny in front of a rule counts.
func admitsSSH(t *filter.Table, ports []uint16) bool {
	f := t.File()
	if f == nil {
		return false
	}
	try := func(tt *filter.Table, r *rules.Rule, ifindex uint32) bool {
		for _, port := range ports {
			if !coversTCP(r, port) {
				continue
			}
			for _, p := range r.Prefixes {
				k := filter.Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: p.Addr(), Port: port, Ifindex: ifindex}
				if tt.Match(k).Accepted() {
					return true
				}
			}
		}
		return false
	}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		tt, ix := t, uint32(0)
		if len(g.Interfaces) > 0 && t.HasInterfaces() {
			tt, ix = t.On(g.Interfaces[0]), filter.OnIfindex
		}
		for ri := range g.Ingress {
			if try(tt, &g.Ingress[ri], ix) {
				return true
			}
		}
	}
	for _, e := range f.ACL.List(direction.Ingress) {
		if e.Action == rules.Allow {
			r := e.Rule()
			if try(t, &r, 0) {
				return true
			}
		}
	}
	fs := t.Failsafe()
	for _, a := range fs.Addrs {
		for _, port := range ports {
			if t.Match(filter.Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: a, Port: port}).Accepted() {
				return true
			}
		}
	}
	return false
}

func coversTCP(r *rules.Rule, port uint16) bool {
	if !r.Proto.All && r.Proto.Num != ipproto.TCP {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for _, pr := range r.Ports {
		if pr.Lo <= port && port <= pr.Hi {
			return true
		}
	}
	return false
}

// sshPorts reads the ports sshd listens on, and keeps them for status.
func (s *Service) sshPorts() []uint16 {
	if s.cfg.Safety.SSHPorts == nil {
		return nil
	}
	ports := s.cfg.Safety.SSHPorts()
	s.safety.mu.Lock()
	s.safety.sshPorts = ports
	s.safety.mu.Unlock()
	return ports
}

// adminOf reads the SSH session of the change's peer and remembers it;
// nil when there is no peer or no session.
func (s *Service) adminOf(p *Peer, ports []uint16) *AdminConn {
	a, _ := s.sessionOf(p, ports)
	if a == nil {
		return nil
	}
	s.remember(Admin{Addr: a.Addr, Port: a.Port, Iface: a.Iface, UID: p.UID, LastSeen: s.now()})
	return a
}

// sessionOf reads the SSH session peer p runs under. A session whose
// server end is not an address of this host (of fwd's network
// namespace, when IfaceOf is set) does not come through this firewall
// (fwctl runs in a container, or was reached over another host) and is
// none.
func (s *Service) sessionOf(p *Peer, ports []uint16) (*AdminConn, error) {
	if p == nil || s.cfg.Safety.Session == nil {
		return nil, nil
	}
	sess, err := s.cfg.Safety.Session(p.PID, ports)
	if err != nil {
		if !errors.Is(err, lockout.ErrNoSession) {
			s.log.Warn("lockout guard: cannot read the control peer's ssh session", "pid", p.PID, "err", err)
		}
		return nil, err
	}
	a := &AdminConn{Addr: sess.Client.Addr(), Port: sess.Server.Port(),
		Via: fmt.Sprintf("%s of pid %d", map[string]string{"environ": "SSH_CONNECTION", "socket": "the ssh socket"}[sess.Source], sess.PID)}
	if s.cfg.Safety.IfaceOf != nil {
		if a.Iface = s.cfg.Safety.IfaceOf(sess.Server.Addr()); a.Iface == "" {
			s.log.Debug("lockout guard: the control peer's ssh session ends on no address of this host", "pid", p.PID, "session", sess.String())
			return nil, nil
		}
	}
	return a, nil
}

// remember adds an admin to the bounded list, the most recent first;
// it reports whether the address is new.
func (s *Service) remember(a Admin) bool {
	s.safety.mu.Lock()
	defer s.safety.mu.Unlock()
	i := slices.IndexFunc(s.safety.admins, func(o Admin) bool { return o.Addr == a.Addr && o.Port == a.Port })
	isNew := !slices.ContainsFunc(s.safety.admins, func(o Admin) bool { return o.Addr == a.Addr })
	if i >= 0 {
		s.safety.admins = slices.Delete(s.safety.admins, i, i+1)
	}
	s.safety.admins = slices.Insert(s.safety.admins, 0, a)
	if len(s.safety.admins) > MaxAdmins {
		s.safety.admins = s.safety.admins[:MaxAdmins]
	}
	return isNew
}

// NotePeer reads the SSH session of the peer of a control request
// (any request, status too) and remembers its admin. When the address
// is new and the failsafe is on, the live table is replaced by one
// whose failsafe admits it.
func (s *Service) NotePeer(ctx context.Context) {
	c := changeOf(ctx)
	if c == nil || c.Peer == nil || s.cfg.Safety.Session == nil {
		return
	}
	ad, _ := s.sessionOf(c.Peer, s.sshPorts())
	if ad == nil {
		return
	}
	if !s.remember(Admin{Addr: ad.Addr, Port: ad.Port, Iface: ad.Iface, UID: c.Peer.UID, LastSeen: s.now()}) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	if live == nil || !s.failsafeOn(live.File()) {
		return
	}
	s.cfg.Target.Swap(s.withFailsafe(live))
	s.log.Info("failsafe: admitting new ssh from a new admin address", "addr", ad.Addr, "port", ad.Port)
}

// failsafeOn reports whether the failsafe is on for rules f.
func (s *Service) failsafeOn(f *rules.File) bool {
	return s.cfg.Safety.FailsafeSSH || f != nil && f.Failsafe.SSH
}

// withFailsafe returns t with the failsafe it needs: the admins'
// addresses to their session ports and sshd's ports, when the failsafe
// is on for t's rules; t without one otherwise.
func (s *Service) withFailsafe(t *filter.Table) *filter.Table {
	if !s.failsafeOn(t.File()) {
		if len(t.Failsafe().Addrs) == 0 {
			return t
		}
		return t.WithFailsafe(filter.Failsafe{})
	}
	s.safety.mu.Lock()
	var fs filter.Failsafe
	for _, a := range s.safety.admins {
		fs.Addrs = append(fs.Addrs, a.Addr)
		fs.Ports = append(fs.Ports, a.Port)
	}
	fs.Ports = append(fs.Ports, s.safety.sshPorts...)
	s.safety.mu.Unlock()
	return t.WithFailsafe(fs)
}

// guard judges t, about to go live for the change in ctx, and returns
// it with the failsafe it needs (the admin who asks included); or the
// refusal. Warnings go to the change's notes and the log. The caller
// holds s.mu.
func (s *Service) guard(ctx context.Context, t *filter.Table) (*filter.Table, *Error) {
	c := changeOf(ctx)
	ports := s.sshPorts()
	var admin *AdminConn
	if c != nil && !c.rollback {
		admin = s.adminOf(c.Peer, ports)
	}
	t = s.withFailsafe(t)
	if c != nil && c.rollback {
		return t, nil
	}
	j := Judge(t, admin, ports)
	force := c != nil && c.Force
	switch {
	case j.Lockout && !force:
		s.countSafety(&s.safety.refused)
		s.log.Warn("lockout guard: change refused", "rules", s.cfg.Path, "reason", j.Message)
		return nil, &Error{Code: CodeLockout, Message: j.Message + ": nothing changed (allow ssh from your address first, turn the failsafe on, or force it with --force)"}
	case j.Lockout:
		s.countSafety(&s.safety.forced)
		s.log.Error("LOCKOUT FORCED: the new rules drop the admin's next ssh connection", "rules", s.cfg.Path, "reason", j.Message)
		c.notes = append(c.notes, "LOCKOUT FORCED: "+j.Message)
	case j.NoSSH && s.cfg.Safety.RefuseLockout && !force:
		s.countSafety(&s.safety.refused)
		s.log.Warn("lockout guard: rules refused (--refuse-lockout)", "rules", s.cfg.Path, "reason", j.Message)
		return nil, &Error{Code: CodeLockout, Message: j.Message + ": nothing changed (fwd runs with --refuse-lockout; force it with --force)"}
	case j.NoSSH:
		s.log.Warn("lockout guard", "rules", s.cfg.Path, "warning", j.Message)
		if c != nil {
			c.notes = append(c.notes, "warning: "+j.Message)
		}
	}
	return t, nil
}

func (s *Service) countSafety(n *uint64) {
	s.safety.mu.Lock()
	*n++
	s.safety.mu.Unlock()
}

// Safety returns the guard's, the failsafe's and confirmed changes'
// state, for status.
func (s *Service) Safety() SafetyStatus {
	var st SafetyStatus
	if t := s.cfg.Target.Table(); t != nil {
		st.Failsafe = s.failsafeOn(t.File())
		fs := t.Failsafe()
		st.FailsafeAddrs, st.FailsafePorts = fs.Addrs, fs.Ports
	}
	s.safety.mu.Lock()
	st.SSHPorts = slices.Clone(s.safety.sshPorts)
	st.Admins = slices.Clone(s.safety.admins)
	st.Refused, st.Forced = s.safety.refused, s.safety.forced
	st.Confirmed, st.RolledBack = s.safety.confirmd, s.safety.rolled
	if p := s.safety.pendingInfo; p != nil {
		cp := *p
		st.Pending = &cp
	}
	s.safety.mu.Unlock()
	return st
}

// notes returns the guard's and the confirm's notes of the change in
// ctx, for the result.
func changeNotes(ctx context.Context) ([]string, *Pending) {
	c := changeOf(ctx)
	if c == nil {
		return nil, nil
	}
	return c.notes, c.pending
}

// IsZero reports whether st says nothing: no failsafe, no SSH port
// known, no admin seen, nothing pending, nothing counted.
func (st *SafetyStatus) IsZero() bool {
	return !st.Failsafe && len(st.FailsafeAddrs) == 0 && len(st.SSHPorts) == 0 && len(st.Admins) == 0 &&
		st.Pending == nil && st.Refused+st.Forced+st.Confirmed+st.RolledBack == 0
}
