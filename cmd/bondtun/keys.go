package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"

	"github.com/bondtun/bondtun/crypto"
)

func runGenkey(args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return usageErr("takes no arguments")
	}
	k, err := crypto.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k.SecretText()) // the one place the secret is printed: to its owner
	return nil
}

func runPubkey(args []string, stdin io.Reader, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return usageErr("takes no arguments; the private key comes on stdin")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return err
	}
	k, err := crypto.ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	fmt.Fprintln(stdout, k.Public().String())
	return nil
}
