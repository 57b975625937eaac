package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bondtun/bondtun/linkemu"
)

func TestParseCommand(t *testing.T) {
	both := []string{"ab", "ba"}
	tests := []struct {
		name    string
		line    string
		want    command
		wantErr bool
	}{
		{"cut default both", "cut", command{verb: "cut", dirs: both}, false},
		{"cut ab", "cut ab", command{verb: "cut", dirs: []string{"ab"}}, false},
		{"restore both", "  restore   both ", command{verb: "restore", dirs: both}, false},
		{"set ab", "set ab rate=20mbit delay=30ms loss=1",
			command{verb: "set", dirs: []string{"ab"}, kvs: []string{"rate=20mbit", "delay=30ms", "loss=1"}}, false},
		{"set without direction", "set loss=2", command{verb: "set", dirs: both, kvs: []string{"loss=2"}}, false},
		{"stats", "stats", command{verb: "stats"}, false},
		{"empty", "   ", command{}, true},
		{"unknown verb", "reboot", command{}, true},
		{"bad direction", "cut up", command{}, true},
		{"cut extra", "cut ab ba", command{}, true},
		{"set nothing", "set ba", command{}, true},
		{"set bad value", "set ab rate=fast", command{}, true},
		{"stats extra", "stats ab", command{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCommand(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got.verb != tc.want.verb || !slices.Equal(got.dirs, tc.want.dirs) || !slices.Equal(got.kvs, tc.want.kvs) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"cut", "restore ba", "set ab rate=20mbit delay=30ms loss=1", "stats", "set both x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseCommand(line)
		if err != nil {
			return
		}
		for _, d := range c.dirs {
			if d != "ab" && d != "ba" {
				t.Fatalf("direction %q from %q", d, line)
			}
		}
		var p linkemu.Params
		for _, kv := range c.kvs {
			if err := p.Set(kv); err != nil {
				t.Fatalf("accepted %q but Set(%q) fails: %v", line, kv, err)
			}
		}
	})
}

// testEmulator returns an emulator over directions without devices, and
// the control socket path it serves.
func testEmulator(t *testing.T) (*emulator, string) {
	t.Helper()
	e := &emulator{dirs: map[string]*direction{}}
	for i, name := range []string{"ab", "ba"} {
		timer, err := newWakeTimer()
		if err != nil {
			t.Fatal(err)
		}
		d := &direction{name: name, timer: timer,
			link: linkemu.New(linkemu.Params{RateBps: 1e6}, 4, 100, rand.New(rand.NewPCG(uint64(i), 0)))}
		t.Cleanup(d.stop)
		e.dirs[name] = d
	}
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go e.serveCtl(ln)
	return e, sock
}

func TestControlSocket(t *testing.T) {
	e, sock := testEmulator(t)
	steps := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(ab, ba linkemu.Params) bool
		wantOut string
	}{
		{"cut ab", []string{"cut", "ab"}, false, func(ab, ba linkemu.Params) bool { return ab.Cut && !ba.Cut }, ""},
		{"restore", []string{"restore"}, false, func(ab, ba linkemu.Params) bool { return !ab.Cut && !ba.Cut }, ""},
		{"set ba", []string{"set", "ba", "rate=20mbit", "delay=30ms", "loss=1"}, false,
			func(ab, ba linkemu.Params) bool {
				return ab.RateBps == 1e6 && ba.RateBps == 20e6 && ba.Delay == 30*time.Millisecond && ba.Loss == 1
			}, ""},
		{"invalid value rejected", []string{"set", "loss=200"}, true, func(ab, ba linkemu.Params) bool { return ab.Loss == 0 }, ""},
		{"stats", []string{"stats"}, false, nil, "ba params rate=20mbit"},
		{"unknown", []string{"frob"}, true, nil, ""},
	}
	for _, s := range steps {
		var out bytes.Buffer
		err := runCtlClient(sock, s.args, &out)
		if (err != nil) != s.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", s.name, err, s.wantErr)
		}
		ab, _ := e.dirs["ab"].snapshot()
		ba, _ := e.dirs["ba"].snapshot()
		if s.check != nil && !s.check(ab, ba) {
			t.Errorf("%s: params ab %v, ba %v", s.name, ab, ba)
		}
		if !strings.Contains(out.String(), s.wantOut) {
			t.Errorf("%s: output %q lacks %q", s.name, out.String(), s.wantOut)
		}
	}
}

func TestMain(m *testing.M) {
	// The netns test re-executes this test binary as the emulator.
	if os.Getenv("LINKEMU_TEST_MAIN") == "1" {
		os.Args = append([]string{"linkemu"}, strings.Fields(os.Getenv("LINKEMU_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
