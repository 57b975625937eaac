package bond_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"strconv"
	"time"

	"github.com/bondtun/bondtun/bond"
)

// Two ends on one machine: a listener on 127.0.0.1 and a client striping over two local
// source addresses (two paths), exchanging one message each way.
func Example() {
	serverKey, _ := bond.GenerateKey()
	clientKey, _ := bond.GenerateKey()

	ln, err := bond.Listen("127.0.0.1:0", &bond.ListenConfig{
		PrivateKey: serverKey,
		Peers:      []bond.Peer{{Name: "client", Key: clientKey.Public()}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bond.Dial(ctx, "127.0.0.1:"+strconv.Itoa(ln.Port()), &bond.Config{
		PrivateKey: clientKey,
		PeerKey:    serverKey.Public(),
		Uplinks: []bond.Uplink{
			{Name: "a", Addr: netip.MustParseAddr("127.0.0.2")},
			{Name: "b", Addr: netip.MustParseAddr("127.0.0.3")},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	s, err := ln.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.WriteMessage([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, s.MaxMessageSize())
	n, err := s.ReadMessage(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s from %s\n", buf[:n], s.Peer())
	s.WriteMessage([]byte("hi"))
	n, _ = c.ReadMessage(buf)
	fmt.Printf("%s\n", buf[:n])
	// Output:
	// hello from client
	// hi
}
