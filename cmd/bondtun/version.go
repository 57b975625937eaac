package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/bondtun/bondtun/session"
)

// version is stamped at build time with
//
//	go build -ldflags "-X main.version=$(git describe --always --dirty)" ./cmd/bondtun
//
// as the project's scripts do (scripts/lib/version.sh). An unstamped build reports what
// the Go toolchain recorded instead (see versionString).
var version = ""

// versionString is the version to print: the stamped one; else the module version of a
// `go install bondtun/cmd/bondtun@VERSION` build; else the VCS revision the toolchain
// records when it builds inside a git checkout (with "-dirty" for uncommitted changes);
// else "dev".
func versionString(stamped string, info *debug.BuildInfo, ok bool) string {
	if stamped != "" {
		return stamped
	}
	if !ok || info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func currentVersion() string {
	info, ok := debug.ReadBuildInfo()
	return versionString(version, info, ok)
}

func runVersion(args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return usageErr("takes no arguments")
	}
	fmt.Fprintf(stdout, "bondtun %s (protocol %d)\n", currentVersion(), session.ProtocolVersion)
	return nil
}
