package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
)

// The change history: every change of the live rules (the first load,
// a reload, an edit, an expiry recompile, a rollback) and every failed
// one is appended to a journal next to the rules file, RULES.history/:
//
//	journal.jsonl   one HistoryEntry per line, appended with fsync
//	HASH.yaml       the rules file's bytes as of each entry, by sha256
//
// A crash can at worst leave a torn last line, which reading skips and
// the next append cuts off; a version file is written atomically (temp
// file, fsync, rename) before the line that names it. The journal is
// bounded by entry count and by bytes (journal plus versions): the
// oldest entries go first, and the versions no entry names any more
// with them. Entry numbers keep counting up, so that `fwctl rollback N`
// means the same entry whatever was pruned since.

// History actions.
const (
	ActionStart    = "start"    // the daemon's first load
	ActionReload   = "reload"   // SIGHUP or fwctl reload
	ActionEdit     = "edit"     // fwctl allow, delete, deny, ...
	ActionExpire   = "expire"   // an ACL entry expired: the table was compiled again
	ActionRollback = "rollback" // fwctl rollback N
)

// HistoryEntry is one change, or failed change, of the live rules.
type HistoryEntry struct {
	N      int       `json:"n"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"` // why the change failed: the live rules stayed
	// Peer is who asked, when a control-socket client did (nil for a
	// signal or the daemon itself).
	Peer *Peer `json:"peer,omitempty"`
	// Before and After are the sha256 of the live rules file before and
	// after; equal for a failed change. Attempted is the hash of the
	// file a failed reload read.
	Before    string `json:"before,omitempty"`
	After     string `json:"after,omitempty"`
	Attempted string `json:"attempted,omitempty"`
	// Saved says the rules as of this entry (After) are kept in the
	// journal, so that rollback can restore them.
	Saved bool `json:"saved"`
	// Rollback is the entry a rollback restored.
	Rollback int `json:"rollback,omitempty"`
	// Diff is the rules file's unified diff (clipped at maxDiff bytes).
	Diff string `json:"diff,omitempty"`
}

// Peer is the process at the other end of the control socket.
type Peer struct {
	UID     int    `json:"uid"`
	PID     int    `json:"pid"`
	Command string `json:"command,omitempty"` // its /proc/PID/cmdline, words joined by spaces
}

type peerKey struct{}

// WithPeer returns ctx carrying the peer who asked for a change; the
// history records it.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFrom returns the peer WithPeer stored in ctx.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// HistoryConfig bounds a History.
type HistoryConfig struct {
	// MaxEntries is how many entries are kept; 0 means 100.
	MaxEntries int
	// MaxBytes bounds the journal and the saved versions together; 0
	// means 8 MiB. The newest entry is always kept.
	MaxBytes int64
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

const (
	defaultHistoryEntries = 100
	defaultHistoryBytes   = 8 << 20
	maxDiff               = 64 << 10
	journalName           = "journal.jsonl"
)

// History is the journal of a rules file. Its methods are safe for
// concurrent use.
type History struct {
	dir string
	cfg HistoryConfig
	mu  sync.Mutex
}

// HistoryDir is where the history of the rules file at path lives.
func HistoryDir(path string) string { return path + ".history" }

// OpenHistory opens (creating it when missing, mode 0700) the history
// directory of the rules file at path.
func OpenHistory(path string, cfg HistoryConfig) (*History, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultHistoryEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultHistoryBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dir := HistoryDir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &History{dir: dir, cfg: cfg}, nil
}

// Dir is the history directory.
func (h *History) Dir() string { return h.dir }

// Entries returns the journal, oldest first. A torn or unreadable line
// (a crash in the middle of an append) is skipped.
func (h *History) Entries() ([]HistoryEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.read()
}

func (h *History) read() ([]HistoryEntry, error) {
	data, err := os.ReadFile(filepath.Join(h.dir, journalName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var out []HistoryEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4*maxDiff)
	for sc.Scan() {
		var e HistoryEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.N > 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

// Entry returns entry n.
func (h *History) Entry(n int) (HistoryEntry, bool, error) {
	es, err := h.Entries()
	if err != nil {
		return HistoryEntry{}, false, err
	}
	for _, e := range es {
		if e.N == n {
			return e, true, nil
		}
	}
	return HistoryEntry{}, false, nil
}

// Version returns the saved rules file whose sha256 is hash.
func (h *History) Version(hash string) ([]byte, error) {
	if !isHash(hash) {
		return nil, fmt.Errorf("history: bad hash %q", hash)
	}
	data, err := os.ReadFile(filepath.Join(h.dir, hash+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return data, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Append numbers e, stamps its time, saves version (the rules file as of
// e, when not nil and its sha256 is e.After), appends e to the journal
// and prunes it to its bounds. It returns e as recorded.
func (h *History) Append(e HistoryEntry, version []byte) (HistoryEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	es, err := h.read()
	if err != nil {
		return e, err
	}
	e.N = 1
	if len(es) > 0 {
		e.N = es[len(es)-1].N + 1
	}
	e.Time = h.cfg.Now().UTC()
	if len(e.Diff) > maxDiff {
		e.Diff = e.Diff[:maxDiff] + "\n[diff clipped]\n"
	}
	if version != nil && e.After != "" && rules.Hash(version) == e.After {
		if err := h.save(e.After, version); err != nil {
			return e, err
		}
		e.Saved = true
	} else if e.After != "" {
		_, err := os.Stat(filepath.Join(h.dir, e.After+".yaml"))
		e.Saved = err == nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("history: %w", err)
	}
	if err := h.appendLine(append(line, '\n')); err != nil {
		return e, err
	}
	return e, h.prune(append(es, e))
}

// save writes a version file atomically, unless it is there already.
func (h *History) save(hash string, data []byte) error {
	p := filepath.Join(h.dir, hash+".yaml")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := writeFileSync(p, data); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// appendLine appends one line to the journal with fsync, first cutting
// off a torn last line a crash may have left.
func (h *History) appendLine(line []byte) error {
	p := filepath.Join(h.dir, journalName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	if err := cutTorn(f); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// cutTorn truncates f after its last newline and leaves the offset at
// its end.
func cutTorn(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	// Read back at most the tail that can hold one line.
	n := min(size, int64(8*maxDiff))
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return err
	}
	end := size
	if buf[n-1] != '\n' {
		i := bytes.LastIndexByte(buf, '\n')
		end = size - n + int64(i) + 1 // i == -1: cut everything read
		if err := f.Truncate(end); err != nil {
			return err
		}
	}
	_, err = f.Seek(end, 0)
	return err
}

// prune keeps the newest entries within the bounds, rewriting the
// journal atomically, then removes the versions no entry names.
func (h *History) prune(es []HistoryEntry) error {
	keep := es
	if len(keep) > h.cfg.MaxEntries {
		keep = keep[len(keep)-h.cfg.MaxEntries:]
	}
	sizes := map[string]int64{}
	for _, e := range keep {
		if e.Saved {
			if fi, err := os.Stat(filepath.Join(h.dir, e.After+".yaml")); err == nil {
				sizes[e.After] = fi.Size()
			}
		}
	}
	lines := make([][]byte, len(keep))
	total := int64(0)
	for i, e := range keep {
		lines[i], _ = json.Marshal(e)
		total += int64(len(lines[i]) + 1)
	}
	for _, s := range sizes {
		total += s
	}
	for len(keep) > 1 && total > h.cfg.MaxBytes {
		total -= int64(len(lines[0]) + 1)
		if e := keep[0]; e.Saved && !namedAfter(keep[1:], e.After) {
			total -= sizes[e.After]
		}
		keep, lines = keep[1:], lines[1:]
	}
	if len(keep) < len(es) {
		var buf bytes.Buffer
		for _, l := range lines {
			buf.Write(l)
			buf.WriteByte('\n')
		}
		if err := writeFileSync(filepath.Join(h.dir, journalName), buf.Bytes()); err != nil {
			return fmt.Errorf("history: prune: %w", err)
		}
	}
	return h.removeUnnamed(keep)
}

func namedAfter(es []HistoryEntry, hash string) bool {
	for _, e := range es {
		if e.Saved && e.After == hash {
			return true
		}
	}
	return false
}

// removeUnnamed deletes the version files no kept entry names.
func (h *History) removeUnnamed(keep []HistoryEntry) error {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	var errs []error
	for _, de := range ents {
		hash, ok := strings.CutSuffix(de.Name(), ".yaml")
		if !ok || !isHash(hash) || namedAfter(keep, hash) {
			continue
		}
		if err := os.Remove(filepath.Join(h.dir, de.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeFileSync replaces path with data: a temp file, fsync, rename,
// fsync of the directory.
func writeFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// record appends a change of the live rules to the history, when the
// Service keeps one. before is the hash of the live rules before the
// change; e is the change's failure, nil when it went through. The rules
// file is read again for the version and the diff; a file that changed
// meanwhile is recorded without its version. A history that cannot be
// written is logged: the change stands.
func (s *Service) record(ctx context.Context, action, before string, e *Error) {
	h := s.cfg.History
	if h == nil {
		return
	}
	ent := HistoryEntry{Action: action, OK: e == nil, Before: before, After: liveHash(s.cfg.Target.Table())}
	if p, ok := PeerFrom(ctx); ok {
		ent.Peer = &p
	}
	if a, ok := ctx.Value(rollbackKey{}).(int); ok {
		ent.Rollback = a
	}
	data, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	var version []byte
	if err == nil {
		disk := rules.Hash(data)
		if e == nil && disk == ent.After {
			version = data
		}
		if e != nil {
			ent.Error = e.Message
			if disk != before {
				ent.Attempted = disk
			}
		}
		if prev, err := h.Version(before); err == nil && disk != before {
			ent.Diff = unifiedDiff(s.cfg.Path, prev, data)
		}
	} else if e != nil {
		ent.Error = e.Message
	}
	if _, err := h.Append(ent, version); err != nil {
		s.log.Warn("change history not written", "dir", h.Dir(), "err", err)
	}
}

type rollbackKey struct{}

// History returns the journal of changes, oldest first; CodeNotFound
// when the Service keeps none.
func (s *Service) History() ([]HistoryEntry, error) {
	if s.cfg.History == nil {
		return nil, &Error{Code: CodeNotFound, Message: "fwd keeps no change history (started with --history-entries 0, or its directory could not be created)"}
	}
	es, err := s.cfg.History.Entries()
	if err != nil {
		return nil, &Error{Code: CodeReadFailed, Message: err.Error(), cause: err}
	}
	return es, nil
}

// Rollback restores the rules as of history entry n (after it; for a
// failed change, the rules that stayed live): the saved version replaces
// the rules file through the same all-or-nothing path as an edit (the
// file is written atomically and the table swapped in one step, or
// nothing changes), and becomes a history entry of its own. The rules
// file on disk may be invalid: a rollback is how to get out of that.
func (s *Service) Rollback(ctx context.Context, n int, dryRun bool) (EditResult, error) {
	res := EditResult{DryRun: dryRun}
	h := s.cfg.History
	if h == nil {
		return res, &Error{Code: CodeNotFound, Message: "fwd keeps no change history: nothing to roll back to"}
	}
	ent, ok, err := h.Entry(n)
	if err != nil {
		return res, &Error{Code: CodeReadFailed, Message: err.Error(), cause: err}
	}
	if !ok {
		return res, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no history entry %d: fwctl history lists them", n)}
	}
	next, err := h.Version(ent.After)
	if err != nil || !ent.Saved {
		return res, &Error{Code: CodeNotFound, Message: fmt.Sprintf("the rules of history entry %d (sha256 %s) are not kept in %s any more: nothing changed", n, short(ent.After), h.Dir())}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.ReadOnly != "" && !dryRun {
		return res, &Error{Code: CodeReadOnly, Message: s.cfg.ReadOnly}
	}
	f, perr := rules.Parse(s.cfg.Path, next, s.cfg.Rules)
	if perr != nil {
		return res, s.fail(rulesError(s.cfg.Path, fmt.Sprintf("as of history entry %d no longer decodes, nothing changed", n), perr))
	}
	before := liveHash(s.cfg.Target.Table())
	cur, rerr := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if rerr != nil {
		cur = nil // a missing or unreadable file is replaced all the same
	}
	res.Hash = f.Hash
	if cur != nil && rules.Hash(cur) == f.Hash && before == f.Hash {
		res.Notes = append(res.Notes, fmt.Sprintf("the rules are those of history entry %d already: nothing to do", n))
		return res, nil
	}
	res.Changed = true
	res.Diff = unifiedDiff(s.cfg.Path, cur, next)
	if dryRun {
		return res, nil
	}
	ctx = context.WithValue(ctx, rollbackKey{}, n)
	if _, e := s.apply(ctx, f, func() error { return rules.WriteFileAtomic(s.cfg.Path, next) }); e != nil {
		s.record(ctx, ActionRollback, before, e)
		return res, e
	}
	s.count(&s.stats.OK)
	s.log.Info("rules rolled back", "rules", s.cfg.Path, "entry", n, "hash", short(f.Hash))
	s.record(ctx, ActionRollback, before, nil)
	return res, nil
}
