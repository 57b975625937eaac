package main

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// fakeUAPI serves one UAPI connection: it reads the request up to the blank
// line and answers with reply.
func fakeUAPI(t *testing.T, reply string) (string, chan string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "wg.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer c.Close()
		var req strings.Builder
		sc := bufio.NewScanner(c)
		for sc.Scan() && sc.Text() != "" {
			req.WriteString(sc.Text() + "\n")
		}
		c.Write([]byte(reply))
		got <- req.String()
	}()
	return sock, got
}

func TestUAPISet(t *testing.T) {
	sock, got := fakeUAPI(t, "errno=0\n\n")
	if err := uapiSet(sock, strings.NewReader("set=1\nlisten_port=51820\n")); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req != "set=1\nlisten_port=51820\n" {
		t.Errorf("request %q", req)
	}
}

func TestUAPISetError(t *testing.T) {
	sock, got := fakeUAPI(t, "errno=74\n\n")
	err := uapiSet(sock, strings.NewReader("set=1\nbogus=1\n"))
	if err == nil || !strings.Contains(err.Error(), "errno=74") {
		t.Errorf("err = %v", err)
	}
	<-got
}
