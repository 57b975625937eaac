//go:build !linux

package main

import (
	"errors"
	"syscall"
)

func checkMPTCP() error { return errors.New("mptcp is only supported on linux") }

func setCC(_ syscall.RawConn, name string) error {
	if name == "" {
		return nil
	}
	return errors.New("-cc is only supported on linux")
}

func mptcpFallback(syscall.RawConn) (bool, error) { return true, nil }
