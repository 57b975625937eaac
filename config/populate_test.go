package config

import (
	"reflect"
	"testing"
)

func TestPopulate(t *testing.T) {
	cases := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "empty gets defaults",
			in:   Config{},
			want: Config{TUN: TUN{Name: "bt0", WhileDown: WhileDownBlock, Table: DefaultTunnelTable, FWMark: DefaultFWMark}, Scheduler: "eat", TableBase: DefaultTableBase},
		},
		{
			name: "uplink table and tier by index",
			in:   Config{Uplinks: []Uplink{{Name: "a"}, {Name: "b", Table: 7}, {Name: "c", Tier: TierBackup}}},
			want: Config{TUN: TUN{Name: "bt0", WhileDown: WhileDownBlock, Table: DefaultTunnelTable, FWMark: DefaultFWMark}, Scheduler: "eat", TableBase: DefaultTableBase, Uplinks: []Uplink{
				{Name: "a", Table: DefaultTableBase, Tier: TierPrimary},
				{Name: "b", Table: 7, Tier: TierPrimary},
				{Name: "c", Table: DefaultTableBase + 2, Tier: TierBackup},
			}},
		},
		{
			name: "table_base numbers the auto tables",
			in:   Config{TableBase: 1000, Uplinks: []Uplink{{Name: "a"}, {Name: "b", Table: 7}}},
			want: Config{TUN: TUN{Name: "bt0", WhileDown: WhileDownBlock, Table: DefaultTunnelTable, FWMark: DefaultFWMark}, Scheduler: "eat", TableBase: 1000, Uplinks: []Uplink{
				{Name: "a", Table: 1000, Tier: TierPrimary},
				{Name: "b", Table: 7, Tier: TierPrimary},
			}},
		},
		{
			name: "listen port",
			in:   Config{Listen: &Listen{}},
			want: Config{TUN: TUN{Name: "bt0", WhileDown: WhileDownBlock, Table: DefaultTunnelTable, FWMark: DefaultFWMark}, Scheduler: "eat", Listen: &Listen{Port: 7350}},
		},
		{
			name: "set values kept, mtu stays auto",
			in:   Config{TUN: TUN{Name: "x", Table: 5, FWMark: 6}, Scheduler: "drr", Listen: &Listen{Port: 9}},
			want: Config{TUN: TUN{Name: "x", WhileDown: WhileDownBlock, Table: 5, FWMark: 6}, Scheduler: "drr", Listen: &Listen{Port: 9}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			populate(&got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("populate:\n got %+v\nwant %+v", got, tc.want)
			}
			populate(&got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("populate is not idempotent: %+v", got)
			}
		})
	}
}
