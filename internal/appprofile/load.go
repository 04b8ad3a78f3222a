package appprofile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The directories profiles are read from, in order; a profile in a later
// one replaces one of the same name in an earlier one (and within one
// directory, files are read in name order, the later file winning).
const (
	// ShippedDir holds the profiles fwd ships (its repository's
	// profiles folder): the fallbacks.
	ShippedDir = "/usr/share/fwd/applications.d"
	// UfwDir holds the profiles other packages ship for ufw (nginx puts
	// Nginx Full there): a package knows its ports better than fwd's
	// copy does.
	UfwDir = "/etc/ufw/applications.d"
	// LocalDir is the administrator's: it overrides both.
	LocalDir = "/etc/fwd/applications.d"
)

// DefaultDirs is the search order: ShippedDir (and its /usr/local
// twin, where make install puts it by default), UfwDir, LocalDir.
func DefaultDirs() []string {
	return []string{ShippedDir, "/usr/local/share/fwd/applications.d", UfwDir, LocalDir}
}

// Set is the profiles found in some directories.
type Set struct {
	byName map[string]Profile
	// broken maps an application name a bad file defines (or would) to
	// that file's error.
	broken map[string]error
	// Warnings are the bad files' errors, one each, in reading order.
	Warnings []error
}

// Load reads every profile file of dirs; a missing directory is no
// error. A bad file is left out, its error kept in Warnings (and given
// by Get for the names it holds).
func Load(dirs []string) *Set {
	s := &Set{byName: map[string]Profile{}, broken: map[string]error{}}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.Warnings = append(s.Warnings, fmt.Errorf("profiles: %w", err))
			}
			continue
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if skipFile(e) {
				continue
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			s.readFile(filepath.Join(dir, n))
		}
	}
	return s
}

// skipFile leaves out what ufw leaves out: hidden files, directories,
// editors' and package managers' leftovers.
func skipFile(e fs.DirEntry) bool {
	n := e.Name()
	if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
		return true
	}
	for _, suf := range []string{".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".ucf-old", ".ucf-new", ".ucf-dist", ".rpmnew", ".rpmsave", ".swp"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return false
}

func (s *Set) readFile(path string) {
	data, err := readLimited(path)
	if err != nil {
		s.Warnings = append(s.Warnings, &Error{File: path, Line: 1, Msg: err.Error()})
		return
	}
	ps, names, err := Parse(path, data)
	if err != nil {
		s.Warnings = append(s.Warnings, err)
		for _, n := range names {
			s.broken[n] = err
		}
		return
	}
	for _, p := range ps {
		s.byName[p.Name] = p
		delete(s.broken, p.Name) // a good definition later in the order wins
	}
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("file of %d bytes: at most %d", fi.Size(), MaxFileBytes)
	}
	data := make([]byte, fi.Size())
	_, err = f.ReadAt(data, 0)
	if err != nil && fi.Size() > 0 {
		return nil, err
	}
	return data, nil
}

// Names lists the profiles, sorted as ufw's app list sorts them (case
// folded).
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// ErrNotFound is wrapped by Get's error for a name no profile has.
var ErrNotFound = errors.New("no such application profile")

// Get returns the profile called name (exactly, as ufw matches). When
// the only definition of name is in a bad file, the error is that
// file's.
func (s *Set) Get(name string) (Profile, error) {
	if p, ok := s.byName[name]; ok {
		return p, nil
	}
	if err, ok := s.broken[name]; ok {
		return Profile{}, fmt.Errorf("application profile %q is in a bad file: %w", name, err)
	}
	for n := range s.byName {
		if strings.EqualFold(n, name) {
			return Profile{}, fmt.Errorf("%w %q (names are case-sensitive: did you mean %q?)", ErrNotFound, name, n)
		}
	}
	return Profile{}, fmt.Errorf("%w %q: fwctl app list shows the profiles", ErrNotFound, name)
}

// Has reports whether a good profile is called name, or a bad file
// names it.
func (s *Set) Has(name string) bool {
	_, ok := s.byName[name]
	_, bad := s.broken[name]
	return ok || bad
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }

// hidden reports a control character (the bidirectional overrides too).
func hidden(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c || r == 0x2028 || r == 0x2029 {
			return true
		}
	}
	return false
}
