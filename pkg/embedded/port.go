package embedded

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Ports handed out by FreeAddr lie below Linux's default ephemeral range
// (32768–60999), from which the kernel picks the local ports of outgoing
// connections and of listeners on port 0. A port found free in that range
// and then released is soon taken by some connection of a busy machine (a
// Kafka client's, say) before the process meant to listen on it does.
const (
	lowPort  = 20000
	highPort = 32768
)

// handedOut holds the ports FreeAddr returned in this process, which it
// never returns again: a stack picks all its ports before its processes
// listen on them, so a port probed free and handed out twice would reach
// two listeners (seen: dev's lake and another of its processes given the
// same admin port). Process-wide by nature, as the ports are.
var handedOut sync.Map // port → struct{}

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// process started next to listen on, and not returned before in this
// process. It tries ports below the ephemeral range first, then lets the
// kernel pick one.
func FreeAddr() (string, error) {
	for range 50 {
		port := lowPort + rand.IntN(highPort-lowPort) // #nosec G404 -- picks a port, not a secret
		if _, taken := handedOut.LoadOrStore(port, struct{}{}); taken {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if ln, err := net.Listen("tcp", addr); err == nil {
			_ = ln.Close() // only probing that the port is free
			return addr, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
