package appprofile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	src := `# a comment
; another
[Nginx Full]
title=Web Server (Nginx, HTTP + HTTPS)
Description: Small, but very powerful
  and efficient web server
ports=80,443/tcp

[Odd]
title=t
description=d
ports=53|60000:61000/udp|22/TCP
`
	ps, names, err := Parse("nginx", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[Nginx Full Odd]" || len(ps) != 2 {
		t.Fatalf("names %v, %d profiles", names, len(ps))
	}
	p := ps[0]
	if p.Name != "Nginx Full" || p.Title != "Web Server (Nginx, HTTP + HTTPS)" || p.Description != "Small, but very powerful and efficient web server" || p.Line != 3 {
		t.Errorf("profile = %+v", p)
	}
	if got := fmt.Sprint(ps[0].Ports, ps[1].Ports); got != "[80,443/tcp] [53 60000:61000/udp 22/tcp]" {
		t.Errorf("ports = %s", got)
	}
	if ps[1].Ports[0].Proto != "" {
		t.Errorf("53 has proto %q, want both (\"\")", ps[1].Ports[0].Proto)
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "title=t\ndescription=d\nports=80/tcp\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "f:1: no profiles: expected a [Name] section with title, description and ports"},
		{"key first", "title=t\n", "f:1: key \"title\" before any [Name] section"},
		{"unclosed", "[A\n" + ok, "f:1: section \"[A\" not closed: expected [Name]"},
		{"bad name", "[/etc]\n" + ok, "f:1: bad profile name \"/etc\": expected a letter or digit, then letters, digits, spaces, _ - . +"},
		{"number name", "[22]\n" + ok, "f:1: bad profile name \"22\": a name is not a number (that would be a port)"},
		{"missing ports", "[A]\ntitle=t\ndescription=d\n", "f:1: profile [A] without ports: expected title, description and ports"},
		{"unknown key", "[A]\n" + ok + "port=22\n", "f:5: unknown key \"port\": expected title, description or ports"},
		{"repeated key", "[A]\n" + ok + "ports=22/tcp\n", "f:5: key \"ports\" repeated in [A] (first at line 4)"},
		{"twice", "[A]\n" + ok + "[A]\n" + ok, "f:5: profile [A] defined twice in this file (first at line 1)"},
		{"not a line", "[A]\n" + ok + "hello\n", "f:5: expected [Name], key=value or a comment, got \"hello\""},
		{"bad proto", "[A]\ntitle=t\ndescription=d\nports=80/sctp\n", "f:4: bad protocol \"sctp\" in ports \"80/sctp\": expected tcp or udp"},
		{"port 0", "[A]\ntitle=t\ndescription=d\nports=0/tcp\n", "f:4: bad port \"0\" in \"0/tcp\": expected 1-65535 (a service name is not a port here)"},
		{"service", "[A]\ntitle=t\ndescription=d\nports=http/tcp\n", "f:4: bad port \"http\" in \"http/tcp\": expected 1-65535 (a service name is not a port here)"},
		{"range without proto", "[A]\ntitle=t\ndescription=d\nports=6000:6007\n", "f:4: port range \"6000:6007\" without a protocol: write 6000:6007/tcp or 6000:6007/udp"},
		{"reversed", "[A]\ntitle=t\ndescription=d\nports=9:1/udp\n", "f:4: reversed port range \"9:1\" in \"9:1/udp\": the low port comes first"},
		{"empty group", "[A]\ntitle=t\ndescription=d\nports=80/tcp|\n", "f:4: no port in \"\": expected e.g. 80,443/tcp"},
		{"too many", "[A]\ntitle=t\ndescription=d\nports=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16/tcp\n", "f:4: too many ports in \"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16/t...\": at most 15, a range counting as 2"},
		{"control", "[A]\ntitle=t\x1b[31m\ndescription=d\nports=80/tcp\n", "f:2: title holds a control character: expected printable text"},
		{"bad utf8", "[A]\ntitle=\xff\ndescription=d\nports=80/tcp\n", "f:2: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("f", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A bad file is skipped with a warning naming file and line; the other
// files count; a name only the bad file defines is an error naming it;
// a later directory overrides an earlier one.
func TestLoad(t *testing.T) {
	shipped := writeFiles(t, map[string]string{
		"nginx":   "[Nginx Full]\ntitle=shipped\ndescription=d\nports=80,443/tcp\n",
		"ssh":     "[OpenSSH]\ntitle=t\ndescription=d\nports=22/tcp\n",
		"broken":  "[Broken]\ntitle=t\ndescription=d\nports=22/xyz\n",
		".hidden": "not a profile",
		"ssh~":    "not a profile",
	})
	ufw := writeFiles(t, map[string]string{
		"nginx": "[Nginx Full]\ntitle=the package's\ndescription=d\nports=80,443/tcp|443/udp\n",
	})
	s := Load([]string{shipped, ufw, filepath.Join(t.TempDir(), "missing")})
	if got := fmt.Sprint(s.Names()); got != "[Nginx Full OpenSSH]" {
		t.Errorf("names = %s", got)
	}
	if len(s.Warnings) != 1 || s.Warnings[0].Error() != filepath.Join(shipped, "broken")+":4: bad protocol \"xyz\" in ports \"22/xyz\": expected tcp or udp" {
		t.Errorf("warnings = %v", s.Warnings)
	}
	p, err := s.Get("Nginx Full")
	if err != nil || p.Title != "the package's" {
		t.Errorf("Get = %+v, %v: want the later directory's", p, err)
	}
	if _, err := s.Get("Broken"); err == nil || !strings.Contains(err.Error(), "broken:4:") {
		t.Errorf("Get(Broken) = %v, want the file's error", err)
	}
	if _, err := s.Get("openssh"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `did you mean "OpenSSH"`) {
		t.Errorf("Get(openssh) = %v", err)
	}
}

// The profiles fwd ships all read.
func TestShippedProfiles(t *testing.T) {
	s := Load([]string{"../../profiles"})
	if len(s.Warnings) > 0 {
		t.Fatalf("warnings: %v", s.Warnings)
	}
	for _, n := range []string{"Nginx HTTP", "Nginx HTTPS", "Nginx Full", "OpenSSH", "PostgreSQL", "DNS", "Postfix", "Apache Full"} {
		if !s.Has(n) {
			t.Errorf("no profile %q shipped", n)
		}
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("../../profiles")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("../../profiles", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, names, err := Parse("f", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		if len(ps) != len(names) || len(ps) == 0 {
			t.Fatalf("%d profiles, names %v", len(ps), names)
		}
		for _, p := range ps {
			if CheckName(p.Name) != nil || len(p.Ports) == 0 {
				t.Fatalf("bad profile accepted: %+v", p)
			}
			for _, g := range p.Ports {
				if len(g.Ranges) == 0 {
					t.Fatalf("empty group in %+v", p)
				}
				// A group reads back as itself.
				back, err := ParsePorts(g.String())
				if err != nil || len(back) != 1 || back[0].String() != g.String() {
					t.Fatalf("ports %q read back as %v, %v", g.String(), back, err)
				}
			}
		}
	})
}
