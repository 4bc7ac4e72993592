package embedded

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeAddrIsAFreeLoopbackPortBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < lowPort || p >= highPort {
			t.Fatalf("FreeAddr = %s, want 127.0.0.1 and a port in [%d, %d)", addr, lowPort, highPort)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s, given as free: %v", addr, err)
		}
		ln.Close()
	}
}

// TestFreeAddrNeverHandsOutAPortTwice: a stack picks all its ports before
// its processes listen, so two picks of one port would reach two
// listeners. 2,000 picks from the 12,768 ports below the ephemeral range
// would repeat one about 150 times if drawn independently.
func TestFreeAddrNeverHandsOutAPortTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("FreeAddr handed out %s twice", addr)
		}
		seen[addr] = true
	}
}
