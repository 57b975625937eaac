// Command msgpipe sends numbered messages from one program to another over every local
// address it is given, with the bond library (github.com/bondtun/bondtun/bond): no TUN, no
// root. The receiver checks the order and reports what arrived.
//
//	msgpipe genkey > server.key; msgpipe pubkey < server.key
//	msgpipe listen -addr 127.0.0.1:7350 -key server.key -peer CLIENT_PUBLIC_KEY
//	msgpipe send -to 127.0.0.1:7350 -from 127.0.0.2,127.0.0.3 -key client.key \
//	        -peer SERVER_PUBLIC_KEY -bytes 64MiB
//
// The listener prints, when the sender is done:
//
//	LIBRARY paths=2 messages=47935 bytes=67108864 lost=0 reordered=0 reader_dropped=0 mbps=812.4 shares=0.52,0.48
//
// paths: the paths that carried at least 1 % of the datagrams; lost: messages never
// delivered (from the gaps in their numbers), reader_dropped of them because this reader
// fell ReceiveQueue messages behind; reordered: messages delivered out of order or twice
// (always 0: the connection keeps the order); shares: each path's part of the received
// datagrams.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bondtun/bondtun/bond"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "genkey":
		var k bond.PrivateKey
		if k, err = bond.GenerateKey(); err == nil {
			fmt.Println(k.SecretText())
		}
	case "pubkey":
		err = pubkey()
	case "listen":
		err = listen(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "msgpipe:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: msgpipe genkey | pubkey | listen -addr A -key F -peer K | send -to A -from A1,A2 -key F -peer K [-bytes N] [-size N]")
	os.Exit(2)
}

func pubkey() error {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	k, err := bond.ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	fmt.Println(k.Public())
	return nil
}

func loadKeys(keyFile, peer string) (bond.PrivateKey, bond.PublicKey, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return bond.PrivateKey{}, bond.PublicKey{}, err
	}
	k, err := bond.ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		return bond.PrivateKey{}, bond.PublicKey{}, fmt.Errorf("%s: %w", keyFile, err)
	}
	p, err := bond.ParsePublicKey(peer)
	if err != nil {
		return bond.PrivateKey{}, bond.PublicKey{}, fmt.Errorf("-peer: %w", err)
	}
	return k, p, nil
}

func logger(verbose bool) *slog.Logger {
	if !verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func listen(args []string) error {
	fs := flag.NewFlagSet("listen", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7350", "`HOST:PORT` to listen on")
	also := fs.String("addrs", "", "comma-separated addresses to listen on and advertise (a path end each; default: -addr's)")
	keyFile := fs.String("key", "", "this end's private key `FILE`")
	peer := fs.String("peer", "", "the sender's public `KEY`")
	verbose := fs.Bool("v", false, "log the session layer")
	fs.Parse(args)
	key, peerKey, err := loadKeys(*keyFile, *peer)
	if err != nil {
		return err
	}
	cfg := &bond.ListenConfig{PrivateKey: key, Peers: []bond.Peer{{Name: "sender", Key: peerKey}}, Logger: logger(*verbose)}
	if *also != "" {
		for _, a := range strings.Split(*also, ",") {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("-addrs: %w", err)
			}
			cfg.Addresses = append(cfg.Addresses, ip)
		}
	}
	ln, err := bond.Listen(*addr, cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(os.Stderr, "msgpipe: listening on port %d\n", ln.Port())
	c, err := ln.Accept(context.Background())
	if err != nil {
		return err
	}
	defer c.Close()
	return receive(c)
}

// receive reads until the sender closes, then prints the LIBRARY line.
func receive(c *bond.Conn) error {
	buf := make([]byte, c.MaxMessageSize())
	var n, bytes, reordered uint64
	var next uint64 // the next number expected
	var first, last time.Time
	var paths []pathCount
	for {
		m, err := c.ReadMessage(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if m < 8 {
			return fmt.Errorf("a message of %d bytes: not from msgpipe send", m)
		}
		now := time.Now()
		if n == 0 {
			first = now
		}
		last = now
		seq := binary.BigEndian.Uint64(buf)
		if seq < next {
			reordered++
		} else {
			next = seq + 1
		}
		n++
		bytes += uint64(m)
		if n%1024 == 0 {
			paths = countPaths(c, paths) // the paths go when the session ends: count while it runs
		}
	}
	paths = countPaths(c, paths)
	var rx uint64
	for _, p := range paths {
		rx += p.rx
	}
	used, shares := 0, []string{}
	for _, p := range paths {
		if rx > 0 && p.rx*100 >= rx {
			used++
		}
		if rx > 0 {
			shares = append(shares, strconv.FormatFloat(float64(p.rx)/float64(rx), 'f', 2, 64))
		}
	}
	mbps := 0.0
	if d := last.Sub(first).Seconds(); d > 0 {
		mbps = float64(bytes) * 8 / d / 1e6
	}
	fmt.Printf("LIBRARY paths=%d messages=%d bytes=%d lost=%d reordered=%d reader_dropped=%d mbps=%.1f shares=%s\n",
		used, n, bytes, next-min(next, n-reordered), reordered, c.Stats().Dropped, mbps, strings.Join(shares, ","))
	return nil
}

type pathCount struct {
	name string
	rx   uint64
}

func countPaths(c *bond.Conn, prev []pathCount) []pathCount {
	ps := c.Paths()
	if len(ps) == 0 {
		return prev
	}
	out := make([]pathCount, len(ps))
	for i, p := range ps {
		out[i] = pathCount{p.Name, p.RxPackets}
	}
	return out
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	to := fs.String("to", "127.0.0.1:7350", "the listener's `HOST:PORT`")
	from := fs.String("from", "", "comma-separated local `ADDRESSES` to send from, one uplink each (default: the kernel's choice)")
	keyFile := fs.String("key", "", "this end's private key `FILE`")
	peer := fs.String("peer", "", "the listener's public `KEY`")
	total := fs.String("bytes", "64MiB", "how much to send (suffixes KiB, MiB, GiB)")
	size := fs.Int("size", bond.DefaultMaxMessageSize, "message size in bytes (at least 8)")
	verbose := fs.Bool("v", false, "log the session layer")
	fs.Parse(args)
	key, peerKey, err := loadKeys(*keyFile, *peer)
	if err != nil {
		return err
	}
	limit, err := parseBytes(*total)
	if err != nil {
		return err
	}
	if *size < 8 || *size > bond.DefaultMaxMessageSize {
		return fmt.Errorf("-size %d outside 8..%d", *size, bond.DefaultMaxMessageSize)
	}
	cfg := &bond.Config{PrivateKey: key, PeerKey: peerKey, Logger: logger(*verbose)}
	if *from != "" {
		for _, a := range strings.Split(*from, ",") {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("-from: %w", err)
			}
			cfg.Uplinks = append(cfg.Uplinks, bond.Uplink{Addr: ip})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := bond.Dial(ctx, *to, cfg)
	if err != nil {
		return err
	}
	batch := make([][]byte, 32)
	for i := range batch {
		batch[i] = make([]byte, *size)
		rand.Read(batch[i][8:])
	}
	start := time.Now()
	var seq, sent uint64
	for sent < limit { // whole messages: the last batch may pass the limit by < one message
		k := min(uint64(len(batch)), (limit-sent+uint64(*size)-1)/uint64(*size))
		for i := range k {
			binary.BigEndian.PutUint64(batch[i], seq)
			seq++
		}
		if _, err := c.WriteMessages(batch[:k]); err != nil {
			return err
		}
		sent += k * uint64(*size)
	}
	// Let the last messages arrive (and their repairs) before the BYE ends the session.
	time.Sleep(500 * time.Millisecond)
	d := time.Since(start)
	fmt.Fprintf(os.Stderr, "msgpipe: sent %d messages, %d bytes in %.2f s\n", seq, sent, d.Seconds())
	return c.Close()
}

func parseBytes(s string) (uint64, error) {
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("-bytes %q: want a positive number, optionally with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}
