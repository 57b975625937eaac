package linkemu

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"50mbit", 50e6, false},
		{"20Mbit", 20e6, false},
		{"1.5gbit", 15e8, false},
		{"512kbit", 512e3, false},
		{"100bit", 100, false},
		{"1mbps", 8e6, false},
		{"1000", 1000, false},
		{"0", 0, false},
		{"unlimited", 0, false},
		{"", 0, true},
		{"mbit", 0, true},
		{"-5mbit", 0, true},
		{"NaNmbit", 0, true},
		{"1e20", 0, true},
		{"10 furlongs", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRate(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseRate(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFormatRateRoundTrip(t *testing.T) {
	for _, r := range []int64{0, 1, 999, 1000, 20e6, 50e6, 1e9, 1234567} {
		s := FormatRate(r)
		got, err := ParseRate(s)
		if err != nil || got != r {
			t.Errorf("FormatRate(%d) = %q, parses back to %d, %v", r, s, got, err)
		}
	}
}

func TestParamsSet(t *testing.T) {
	base := Params{RateBps: 1e6, Delay: time.Millisecond}
	tests := []struct {
		name    string
		kvs     []string
		want    Params
		wantErr bool
	}{
		{"rate", []string{"rate=20mbit"}, Params{RateBps: 20e6, Delay: time.Millisecond}, false},
		{"several", []string{"delay=30ms", "loss=1", "queue=9000", "jitter=2ms", "dist=normal", "reorder=true"},
			Params{RateBps: 1e6, Delay: 30 * time.Millisecond, Loss: 1, QueueBytes: 9000,
				Jitter: 2 * time.Millisecond, NormalJitter: true, Reorder: true}, false},
		{"loss percent sign", []string{"loss=2.5%"}, Params{RateBps: 1e6, Delay: time.Millisecond, Loss: 2.5}, false},
		{"cut", []string{"cut=1"}, Params{RateBps: 1e6, Delay: time.Millisecond, Cut: true}, false},
		{"unknown key", []string{"speed=1"}, base, true},
		{"no value", []string{"rate="}, base, true},
		{"no equals", []string{"rate"}, base, true},
		{"bad duration", []string{"delay=10"}, base, true},
		{"bad dist", []string{"dist=pareto"}, base, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			var err error
			for _, kv := range tc.kvs {
				if err = p.Set(kv); err != nil {
					break
				}
			}
			if (err != nil) != tc.wantErr || p != tc.want {
				t.Errorf("got %+v, %v; want %+v, err %v", p, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParamsStringRoundTrip(t *testing.T) {
	p := Params{RateBps: 20e6, QueueBytes: 1000, Delay: 3 * time.Millisecond, Jitter: time.Millisecond,
		NormalJitter: true, Reorder: true, Loss: 0.5, Cut: true}
	var q Params
	for _, kv := range splitFields(p.String()) {
		if err := q.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	if q != p {
		t.Errorf("round trip %+v -> %q -> %+v", p, p.String(), q)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		ok   bool
	}{
		{"zero", Params{}, true},
		{"negative queue", Params{QueueBytes: -1}, false},
		{"negative delay", Params{Delay: -1}, false},
		{"negative jitter", Params{Jitter: -1}, false},
		{"loss over 100", Params{Loss: 101}, false},
	}
	for _, tc := range tests {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
}
