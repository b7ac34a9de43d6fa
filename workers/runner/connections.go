package runner

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// establishedConnections counts the open TCP connections accepted on a
// loopback port: the requests a runner killed now would drop. It reads
// /proc/net/tcp and tcp6 and returns 0 where they do not exist.
func establishedConnections(port int) int {
	n := 0
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		n += countEstablished(path, port)
	}
	return n
}

func countEstablished(path string, port int) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	const established = "01"
	n := 0
	scanner := bufio.NewScanner(f)
	scanner.Scan() // header
	for scanner.Scan() {
		// sl local_address rem_address st ...; addresses are HEXIP:HEXPORT.
		fields := strings.Fields(scanner.Text())
		if len(fields) < 4 || fields[3] != established {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			n++
		}
	}
	return n
}
