// Command bondtun bonds several uplinks into one encrypted tunnel.
//
// Usage:
//
//	bondtun genkey                 print a new private key
//	bondtun pubkey < private.key   print the public key of a private key
//	bondtun check -c FILE          validate a config and the host as up would, changing nothing
//	bondtun up -c FILE             bring the tunnel up (foreground; Ctrl-C or SIGTERM tears it down)
//	bondtun status [-c FILE] [--json]  show running tunnels' sessions and paths (docs/STATUS.md)
//	bondtun status [-c FILE] --trace F  write a tunnel's flight recorder to F (CSV, docs/TRACE.md)
//	bondtun tier -c FILE UPLINK T  switch an uplink to primary, backup or disabled
//	bondtun reload -c FILE         make a running up re-read FILE (as SIGHUP does)
//	bondtun down -c FILE           stop a running up; remove what a crashed one left behind
//	bondtun version                print the version (also --version, -V)
//	bondtun help [COMMAND|exit]    show help, or the exit codes
//
// Exit codes: 0 success or a clean stop, 1 error, 2 usage error or a configuration that
// does not load, 3 refused by the server after authentication, 4 missing privileges
// (exitcode.go; docs/DEPLOY.md "Exit codes").
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

type command struct {
	name    string
	summary string // one line for the command list
	usage   string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
	details string // more for `bondtun help COMMAND`; may be empty
}

var commands []command

func init() {
	commands = []command{
		{"genkey", "print a new private key", "bondtun genkey", runGenkey, ""},
		{"pubkey", "read a private key on stdin, print its public key", "bondtun pubkey < private.key", runPubkey, ""},
		{"check", "validate a configuration and the host as `up` would, changing nothing", "bondtun check -c FILE", runCheck,
			"Loads FILE (syntax, every field, the keys), then reads the host: the uplinks' interfaces\n" +
				"and addresses (missing now: a warning), routes `up` would replace or that shadow the\n" +
				"tunnel's, uplink tables another program uses, a running tunnel of FILE. Exit 0 with a\n" +
				"summary, or 1 with each error as FILE:LINE: FIELD: MESSAGE."},
		{"up", "bring the tunnel up and run in the foreground", "bondtun up -c FILE [-v]", runUp,
			"SIGINT and SIGTERM (or `bondtun down -c FILE`) tear it down; SIGHUP (or `bondtun reload`)\n" +
				"re-reads FILE and applies peers, routes and log_level (-v pins debug) without a restart;\n" +
				"SIGUSR1 writes the flight recorder beside the control socket.\n\n" + exitDetails},
		{"status", "show running tunnels: each path's state, RTT, loss, rate, share", "bondtun status [-c FILE] [--json|-json] [--trace FILE|-]", runStatus,
			"Without -c, every tunnel whose control socket is in /run/bondtun; with -c, FILE's in this\n" +
				"network namespace. --json prints the schema of docs/STATUS.md; --trace writes the\n" +
				"flight recorder as CSV (docs/TRACE.md)."},
		{"tier", "switch an uplink of a running client to primary, backup or disabled", "bondtun tier -c FILE UPLINK primary|backup|disabled", runTier, ""},
		{"reload", "make a running `up` re-read its configuration, as SIGHUP does", "bondtun reload -c FILE", runReload,
			"The running `up` of FILE loads it again and applies what may change at run time: a\n" +
				"server's peers (added, changed, removed: a removed peer's session ends), a client's\n" +
				"uplinks (added, removed, by name; the others' paths are not touched), the inner\n" +
				"routes, the gateway's peer sets, log_level. A file that fails to validate or that changes\n" +
				"a key fixed for the run (tun.name, tun.addresses, listen.port, …; docs/CONFIG.md) is\n" +
				"refused whole: the tunnel runs on unchanged, and reload prints the error and exits 1."},
		{"down", "stop a running `up`; remove what a crashed one left", "bondtun down -c FILE", runDown,
			"Asks FILE's running `up` to shut down over its control socket and waits for its\n" +
				"teardown, then removes bondtun's rules and routes in FILE's tables, the device and\n" +
				"stale control sockets."},
		{"version", "print the version stamped at build time (also --version, -V)", "bondtun version | --version | -V", runVersion, ""},
		{"help", "show help for a command, or the exit codes", "bondtun help [COMMAND|exit]", runHelp, ""},
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
		code := exitCode(err)
		switch {
		case code == exitOK:
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "bondtun %s: %v\nusage: %s\n", name, err, c.usage)
		default:
			fmt.Fprintf(stderr, "bondtun %s: %v\n", name, err)
		}
		return code
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
	fmt.Fprintln(w)
	printExitCodes(w)
}

func runHelp(args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) == 0 {
		printHelp(stdout)
		return nil
	}
	if args[0] == "exit" {
		printExitCodes(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			fmt.Fprintf(stdout, "usage: %s\n\n%s\n", c.usage, c.summary)
			if c.details != "" {
				fmt.Fprintf(stdout, "\n%s\n", c.details)
			}
			return nil
		}
	}
	return usageErr("unknown command %q", args[0])
}
