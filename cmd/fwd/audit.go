package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/suggest"
)

// auditOptions are --audit, the would-drop table's figures and the
// change history's bounds.
type auditOptions struct {
	on             bool
	entries        int
	bits4, bits6   int
	historyEntries int
	historyBytes   int64
}

func (o *auditOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.on, "audit", false, "audit mode: decide every new flow but accept it; count and log what the rules would drop (would_drop=true), for fwctl suggest. fwctl status says NOT ENFORCING")
	fs.IntVar(&o.entries, "audit-entries", suggest.DefaultEntries, "groups of would-drops (direction, protocol, port, peer prefix) audit mode counts, at most; the rest are counted as overflow")
	fs.IntVar(&o.bits4, "audit-prefix4", suggest.DefaultBits4, "IPv4 prefix `length` audit mode groups would-drops' peers by")
	fs.IntVar(&o.bits6, "audit-prefix6", suggest.DefaultBits6, "IPv6 prefix `length` audit mode groups would-drops' peers by")
	fs.IntVar(&o.historyEntries, "history-entries", 100, "changes of the rules kept in the history beside the rules file (RULES.history/); 0 keeps none")
	fs.Int64Var(&o.historyBytes, "history-bytes", 8<<20, "`bytes` the history (journal and saved rules files) may hold; the oldest entries go first")
}

func (o *auditOptions) check() error {
	switch {
	case o.entries < 1 || o.entries > 1<<20:
		return fmt.Errorf("--audit-entries %d: want 1..1048576", o.entries)
	case o.bits4 < 1 || o.bits4 > 32:
		return fmt.Errorf("--audit-prefix4 %d: want 1..32", o.bits4)
	case o.bits6 < 1 || o.bits6 > 128:
		return fmt.Errorf("--audit-prefix6 %d: want 1..128", o.bits6)
	case o.historyEntries < 0:
		return fmt.Errorf("--history-entries %d: want 0 (none) or more", o.historyEntries)
	case o.historyBytes < 4096:
		return fmt.Errorf("--history-bytes %d: want at least 4096", o.historyBytes)
	}
	return nil
}

// setAudit puts the engine in audit mode with --audit.
func (d *daemon) setAudit() {
	if !d.o.audit.on {
		return
	}
	t := suggest.NewTable(d.o.audit.entries, suggest.Options{Bits4: d.o.audit.bits4, Bits6: d.o.audit.bits6})
	d.eng.SetWouldDrops(t)
	d.eng.SetAudit(true)
	d.log.Warn("AUDIT MODE: not enforcing the rules: every new flow is accepted, would-drops are counted and logged (fwctl suggest)")
}

// history opens the change history beside the rules file; nil (logged)
// when it is off or cannot be opened: fwd runs without it.
func (d *daemon) history() *lifecycle.History {
	if d.o.audit.historyEntries == 0 || d.shipped {
		return nil
	}
	h, err := lifecycle.OpenHistory(d.path, lifecycle.HistoryConfig{MaxEntries: d.o.audit.historyEntries, MaxBytes: d.o.audit.historyBytes})
	if err != nil {
		d.log.Warn("no change history", "err", err)
		return nil
	}
	return h
}

// auditStatus is status's audit section.
func (d *daemon) auditStatus() *control.Audit {
	why := "fwd --audit"
	if !d.eng.Auditing() {
		groups := d.eng.AuditGroups()
		if len(groups) == 0 {
			return nil
		}
		why = "groups in mode: audit: " + strings.Join(groups, ", ")
	}
	s := d.eng.AuditStats()
	return &control.Audit{Enforcing: false, Why: why, WouldDrop: map[string]uint64{
		engine.ReasonNoMatch: s.NoMatch, engine.ReasonACLDeny: s.ACL,
		engine.ReasonLimited: s.Limited, engine.ReasonUndecodable: s.Undecodable,
	}}
}

// wouldDrops is GET /v1/suggest's table.
func (d *daemon) wouldDrops() (*suggest.Table, bool) {
	return d.eng.WouldDrops(), d.eng.Auditing() || len(d.eng.AuditGroups()) > 0
}

// addAuditCounters adds the would-drop counters to status's.
func addAuditCounters(c map[string]uint64, e *engine.Engine) {
	if !e.Auditing() && len(e.AuditGroups()) == 0 {
		return
	}
	s := e.AuditStats()
	c["audit_would_drop_no_match"] = s.NoMatch
	c["audit_would_drop_acl"] = s.ACL
	c["audit_would_drop_limited"] = s.Limited
	c["audit_would_drop_undecodable"] = s.Undecodable
}
