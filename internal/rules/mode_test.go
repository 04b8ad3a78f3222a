package rules

import (
	"strings"
	"testing"
)

func TestGroupMode(t *testing.T) {
	tests := []struct {
		mode      string
		wantAudit bool
		wantErr   string
	}{
		{"", false, ""},
		{"mode: enforce", false, ""},
		{"mode: audit", true, ""},
		{"mode: staging", false, `f.yaml:4:11: bad group mode "staging": expected enforce or audit`},
		{"mode: [audit]", false, "f.yaml:4:11: group mode: expected enforce or audit, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			body := "version: 1\ngroups:\n  - name: web\n    " + tt.mode + "\n    ingress: []\n"
			f, err := Parse("f.yaml", []byte(body), Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Groups[0].Audit != tt.wantAudit {
				t.Errorf("audit %v, want %v", f.Groups[0].Audit, tt.wantAudit)
			}
		})
	}
}
