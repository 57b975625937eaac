package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/bondtun/bondtun/session"
)

// Exit codes (`bondtun help exit`, docs/DEPLOY.md "Exit codes"). The systemd unit restarts
// `up` after a failure, except after those a restart cannot fix (RestartPreventExitStatus=
// in configs/bondtun@.service): a file that does not load, missing privileges. Each needs
// the operator. A refusal by the server is restarted: its cure may be on the server.
const (
	exitOK        = 0 // done; for `up`: stopped by SIGINT, SIGTERM or `bondtun down`
	exitError     = 1 // any other error; for `up` possibly transient (a restart may help)
	exitUsage     = 2 // bad command line, or `up`'s configuration does not load or validate
	exitRefused   = 3 // `up`: the server, authenticated, refused us (key, version)
	exitPrivilege = 4 // `up`: a capability or the TUN device's permissions are missing
)

// exitDetails is the help text of the exit codes.
const exitDetails = "0  clean stop (SIGINT, SIGTERM, `bondtun down`), or success\n" +
	"1  an error; for `up` one a restart may cure (host, network, a device left over)\n" +
	"2  usage error, or the configuration does not load or validate (file, syntax, field,\n" +
	"   key file permissions): fix the file\n" +
	"3  up: the server refused this client after authenticating it (wrong key, not among\n" +
	"   its peers, incompatible version): fix the keys or the versions\n" +
	"4  up: missing privileges (CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, access to /dev/net/tun)\n" +
	"The systemd unit restarts `up` after 1 and 3 (a refusal may be cured on the server),\n" +
	"not after 2 or 4 (RestartPreventExitStatus=)."

// codedError is an error that ends the command with a given exit code.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode makes err, if not nil, end the command with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code, err}
}

// exitCode is the exit code of a command that returned err.
func exitCode(err error) int {
	var ce *codedError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, session.ErrRefused):
		return exitRefused
	}
	return exitError
}

// printExitCodes prints the table of exit codes (`bondtun --help`, `bondtun help exit`).
func printExitCodes(w io.Writer) {
	fmt.Fprintf(w, "Exit codes:\n%s\n", exitDetails)
}
