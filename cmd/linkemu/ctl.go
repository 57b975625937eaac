package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/bondtun/bondtun/linkemu"
)

// The control protocol is one command per line; every reply is zero or more
// lines of output followed by a line "ok" or "error: MESSAGE".
//
//	cut [ab|ba|both]                   drop everything in the direction(s)
//	restore [ab|ba|both]               end a cut
//	set ab|ba|both KEY=VALUE...        change parameters (see linkemu.Params.Set)
//	stats                              print parameters and counters
//
// The direction defaults to both. "ab" is from device A to device B.

// command is a parsed control line.
type command struct {
	verb string   // cut, restore, set, stats
	dirs []string // subset of {"ab", "ba"}
	kvs  []string // for set
}

// parseCommand parses one control line.
func parseCommand(line string) (command, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return command{}, errors.New("empty command")
	}
	c := command{verb: f[0]}
	args := f[1:]
	switch c.verb {
	case "stats":
		if len(args) != 0 {
			return command{}, errors.New("stats takes no arguments")
		}
		return c, nil
	case "cut", "restore", "set":
	default:
		return command{}, fmt.Errorf("unknown command %q (want cut, restore, set, stats)", c.verb)
	}
	c.dirs = []string{"ab", "ba"}
	if len(args) > 0 && !strings.Contains(args[0], "=") {
		switch args[0] {
		case "ab", "ba":
			c.dirs = args[:1]
		case "both":
		default:
			return command{}, fmt.Errorf("bad direction %q (want ab, ba or both)", args[0])
		}
		args = args[1:]
	}
	if c.verb != "set" {
		if len(args) != 0 {
			return command{}, fmt.Errorf("%s takes only a direction", c.verb)
		}
		return c, nil
	}
	if len(args) == 0 {
		return command{}, errors.New("set needs KEY=VALUE arguments")
	}
	// Check the assignments now so that a bad one changes nothing.
	var probe linkemu.Params
	for _, kv := range args {
		if err := probe.Set(kv); err != nil {
			return command{}, err
		}
	}
	c.kvs = args
	return c, nil
}

// emulator is the running program: the two directions of one link.
type emulator struct {
	dirs map[string]*direction
}

// execute runs c and writes its output lines (without the final status).
func (e *emulator) execute(c command, w io.Writer) error {
	if c.verb == "stats" {
		for _, name := range []string{"ab", "ba"} {
			p, st := e.dirs[name].snapshot()
			fmt.Fprintf(w, "%s params %s\n", name, p)
			fmt.Fprintf(w, "%s enqueued=%d/%dB delivered=%d/%dB held=%d/%dB dropped queue=%d slots=%d loss=%d cut=%d big=%d bytes=%d\n",
				name, st.Enqueued, st.EnqueuedBytes, st.Delivered, st.DeliveredBytes, st.Held, st.HeldBytes,
				st.DroppedQueue, st.DroppedSlots, st.DroppedLoss, st.DroppedCut, st.DroppedBig, st.DroppedBytes)
		}
		return nil
	}
	for _, name := range c.dirs {
		err := e.dirs[name].update(func(p *linkemu.Params) error {
			switch c.verb {
			case "cut":
				p.Cut = true
			case "restore":
				p.Cut = false
			case "set":
				for _, kv := range c.kvs {
					if err := p.Set(kv); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// serveCtl accepts control connections until ln is closed.
func (e *emulator) serveCtl(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go e.handleCtl(conn)
	}
}

func (e *emulator) handleCtl(conn net.Conn) {
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	w := bufio.NewWriter(conn)
	for sc.Scan() {
		c, err := parseCommand(sc.Text())
		if err == nil {
			err = e.execute(c, w)
		}
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		} else {
			fmt.Fprintln(w, "ok")
		}
		if w.Flush() != nil {
			return
		}
	}
}

// runCtlClient sends one command to the socket and copies the reply to out.
// It returns an error if the emulator answered "error: ...".
func runCtlClient(sock string, args []string, out io.Writer) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(conn, strings.Join(args, " ")); err != nil {
		return err
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := sc.Text()
		if line == "ok" {
			return nil
		}
		if msg, isErr := strings.CutPrefix(line, "error: "); isErr {
			return errors.New(msg)
		}
		fmt.Fprintln(out, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("connection closed before the reply ended")
}
