package embedded

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
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

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// process started next to listen on. It tries ports below the ephemeral
// range first, then lets the kernel pick one.
func FreeAddr() (string, error) {
	for range 50 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowPort+rand.IntN(highPort-lowPort))) // #nosec G404 -- picks a port, not a secret
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
