// Command wgkey is the helper of scripts/bench-speed.sh. It does the three
// things the script cannot do in bash:
//
//	wgkey genkey        print a new WireGuard key pair as "PRIVATE_HEX PUBLIC_HEX"
//	wgkey uapi SOCKET   send stdin to a wireguard-go UAPI socket; fail unless it answers errno=0
//	wgkey offload       probe the kernel: "tun_uso=yes|no udp_gso=yes|no udp_gro=yes|no"
//
// Keys are printed in hex because that is what the UAPI protocol takes, so
// the benchmark needs neither the wg tool nor base64 conversions. The offload
// probe creates a transient TUN device, so run it inside a network namespace.
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
)

const usage = "usage: wgkey genkey | wgkey uapi SOCKET < config | wgkey offload"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 1 && args[0] == "genkey":
		var seed [32]byte
		if _, err = rand.Read(seed[:]); err == nil {
			var kp Keypair
			if kp, err = NewKeypair(seed); err == nil {
				_, err = fmt.Fprintln(stdout, kp)
			}
		}
	case len(args) == 2 && args[0] == "uapi":
		err = uapiSet(args[1], stdin)
	case len(args) == 1 && args[0] == "offload":
		_, err = fmt.Fprintln(stdout, ProbeOffload())
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "wgkey: %v\n", err)
		return 1
	}
	return 0
}
