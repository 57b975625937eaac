package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// uapiTimeout bounds the whole exchange with wireguard-go.
const uapiTimeout = 5 * time.Second

// uapiSet sends the set operation read from r (lines "set=1", "key=value",
// ...; the terminating blank line is added) to the UAPI socket and checks
// the answer.
func uapiSet(socket string, r io.Reader) error {
	req, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return err
	}
	body := strings.TrimRight(string(req), "\n")
	if !strings.HasPrefix(body, "set=1\n") {
		return errors.New("uapi: the request must start with set=1")
	}
	c, err := net.DialTimeout("unix", socket, uapiTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(uapiTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, body+"\n\n"); err != nil {
		return err
	}
	var resp strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() && sc.Text() != "" {
		resp.WriteString(sc.Text())
		resp.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	errno, err := ParseErrno(resp.String())
	if err != nil {
		return err
	}
	if errno != 0 {
		return fmt.Errorf("uapi: wireguard-go answered errno=%d", errno)
	}
	return nil
}

// ParseErrno returns the errno of a UAPI answer: lines "key=value", one of
// them "errno=N". Any other key is ignored.
func ParseErrno(resp string) (int, error) {
	for line := range strings.Lines(resp) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok || k != "errno" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("uapi: bad errno %q", v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("uapi: no errno in answer %q", resp)
}
