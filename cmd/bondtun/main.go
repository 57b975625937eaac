// Command bondtun bonds several uplinks into one encrypted tunnel.
//
// Usage:
//
//	bondtun genkey                 print a new private key
//	bondtun pubkey < private.key   print the public key of a private key
//	bondtun up -c FILE             bring the tunnel up (foreground; Ctrl-C tears it down)
//	bondtun status -c FILE [-json] show the sessions and paths of a running tunnel
//	bondtun status -c FILE --trace F  write its flight recorder to F (CSV, docs/TRACE.md)
//	bondtun tier -c FILE UPLINK T  switch an uplink to primary, backup or disabled
//	bondtun down -c FILE           remove what a crashed `up` left behind
//	bondtun version                print the version (also --version, -V)
//	bondtun help [COMMAND]         show help
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

type command struct {
	name    string
	summary string
	usage   string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"genkey", "print a new private key", "bondtun genkey", runGenkey},
		{"pubkey", "read a private key on stdin, print its public key", "bondtun pubkey < private.key", runPubkey},
		{"check", "validate a configuration and the host as `up` would, changing nothing", "bondtun check -c FILE", runCheck},
		{"up", "bring the tunnel up and run in the foreground", "bondtun up -c FILE [-v]", runUp},
		{"status", "show the sessions and paths of a running tunnel, or dump its flight recorder (--trace FILE, docs/TRACE.md)", "bondtun status -c FILE [-json] [--trace FILE|-]", runStatus},
		{"tier", "switch an uplink of a running client to primary, backup or disabled", "bondtun tier -c FILE UPLINK primary|backup|disabled", runTier},
		{"down", "remove the device, routes and rules a crashed `up` left", "bondtun down -c FILE", runDown},
		{"version", "print the version stamped at build time (also --version, -V)", "bondtun version | --version | -V", runVersion},
		{"help", "show help for a command", "bondtun help [COMMAND]", runHelp},
	}
}

// errUsage marks errors after which the usage line is worth printing.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		printHelp(stdout)
		return 0
	case "-V", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(args[1:], stdin, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errHelpShown):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "bondtun %s: %v\nusage: %s\n", name, err, c.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "bondtun %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "bondtun: unknown command %q (try 'bondtun help')\n", name)
	return 2
}

var errHelpShown = errors.New("help shown")

func usageErr(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "bondtun bonds several uplinks (cable, DSL, LTE, …) into one encrypted tunnel.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Quick start: see README.md; example configurations are in configs/.")
}

func runHelp(args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) == 0 {
		printHelp(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			fmt.Fprintf(stdout, "usage: %s\n\n%s\n", c.usage, c.summary)
			return nil
		}
	}
	return usageErr("unknown command %q", args[0])
}
