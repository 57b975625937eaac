//go:build !linux

package main

// Offload is what the running kernel supports; nothing off Linux.
type Offload struct{ TunUSO, UDPGSO, UDPGRO bool }

// String formats o as "tun_uso=no udp_gso=no udp_gro=no".
func (o Offload) String() string { return "tun_uso=no udp_gso=no udp_gro=no" }

// ProbeOffload reports no offloads off Linux.
func ProbeOffload() Offload { return Offload{} }
