package session

import "testing"

func TestPathStatus(t *testing.T) {
	up := func(name, tier string) PathInfo {
		return PathInfo{Name: name, State: "up", Usable: tier != "disabled", Tier: tier}
	}
	tests := []struct {
		name  string
		paths []PathInfo
		want  []string
	}{
		{"primaries up", []PathInfo{up("a", "primary"), up("b", "primary")}, []string{"up", "up"}},
		{"a backup waits while a primary is usable", []PathInfo{up("a", "primary"), up("b", "backup")}, []string{"up", "standby"}},
		{"a backup carries when no primary is usable",
			[]PathInfo{{Name: "a", State: "dead", Tier: "primary"}, up("b", "backup")}, []string{"dead", "backup"}},
		{"a suspect primary does not make the backup carry",
			[]PathInfo{{Name: "a", State: "suspect", Tier: "primary"}, up("b", "backup")}, []string{"suspect", "backup"}},
		{"disabled beats liveness", []PathInfo{{Name: "a", State: "dead", Tier: "disabled"}, up("b", "disabled")}, []string{"disabled", "disabled"}},
		{"up without a remote", []PathInfo{{Name: "a", State: "up", Tier: "primary"}}, []string{"no_remote"}},
		{"liveness states pass through",
			[]PathInfo{{State: "validating", Tier: "primary"}, {State: "rejoining", Tier: "backup"}, {State: "down", Tier: "primary"}},
			[]string{"validating", "rejoining", "down"}},
	}
	for _, tt := range tests {
		setStatuses(tt.paths)
		for i, p := range tt.paths {
			if p.Status != tt.want[i] {
				t.Errorf("%s: path %d (%s, %s, usable %v): status %q, want %q", tt.name, i, p.State, p.Tier, p.Usable, p.Status, tt.want[i])
			}
		}
	}
}
