package session

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// clockReaders are the functions of package time that read the wall clock.
var clockReaders = map[string]bool{"Now": true, "Since": true, "Until": true}

// clockAllowed are the only functions, by file and name, that may read the wall clock in the
// packages clockPackages lists: the engine's default clock and its net.Conn deadlines, and
// the timer queue's default clock.
var clockAllowed = map[string]bool{
	"clock.go:wallClock":            true,
	"clock.go:ioDeadline":           true,
	"internal/timerq/timerq.go:New": true,
}

// clockPackages are the engine (this package) and the packages under it, relative to it.
var clockPackages = []string{".", "../sched", "../reorder", "../liveness", "../pathstat", "../path",
	"../aqm", "../flightrec", "../classify", "../framing", "../crypto", "../internal/timerq"}

// clockReads lists where src, a Go file called name, reads the wall clock (time.Now,
// time.Since, time.Until, called or taken as a value), as "name:line func".
func clockReads(fset *token.FileSet, name string, src any) ([]string, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	timeName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "" {
		return nil, nil
	}
	var out []string
	for _, d := range f.Decls {
		fn := "(top level)"
		if fd, ok := d.(*ast.FuncDecl); ok {
			fn = fd.Name.Name
		}
		ast.Inspect(d, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || !clockReaders[sel.Sel.Name] {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName {
				out = append(out, fmt.Sprintf("%s:%d %s", name, fset.Position(sel.Pos()).Line, fn))
			}
			return true
		})
	}
	return out, nil
}

// TestNoWallClock: the engine reads the time only through its node's clock (clock.go), and the
// packages under it never read a clock (their callers pass now in). A time.Now, time.Since or
// time.Until anywhere else outside tests fails it.
func TestNoWallClock(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, dir := range clockPackages {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.ToSlash(strings.TrimPrefix(file, "../"))
			reads, err := clockReads(fset, name, src)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, r := range reads {
				at, fn, _ := strings.Cut(r, " ")
				file, _, _ := strings.Cut(at, ":")
				if !clockAllowed[file+":"+fn] {
					t.Errorf("%s reads the wall clock; take the node's clock (session/clock.go) or a now from the caller", r)
				}
			}
		}
	}
	if checked < 40 {
		t.Fatalf("checked only %d files: the package list is stale", checked)
	}
}

// TestClockReads: the check finds a read of the clock however it is spelled.
func TestClockReads(t *testing.T) {
	src := `package p
import tm "time"
var clock = tm.Now
func f() { _ = tm.Since(tm.Time{}); _ = tm.Now().Add(1) }
func g() tm.Duration { return tm.Second }
`
	got, err := clockReads(token.NewFileSet(), "p.go", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p.go:3 (top level)", "p.go:4 f", "p.go:4 f"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
