package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// crowdLoginTimeout is short so that the test stays fast.
const crowdLoginTimeout = 2 * time.Second

// dialFrom connects to addr from the loopback source address src.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// TestSilentCrowd: 1000 connections from 250 addresses (127.0.3.x) fill
// every slot and never send a byte. Clients over the limits are refused
// with one log line per address, not one per refusal; the crowd is told
// and cut at login_timeout, after which a real client logs in.
func TestSilentCrowd(t *testing.T) {
	s := newSite(t)
	s.deliverShapes(t, alice)
	const addrs, perAddr = 250, 4
	// One slot more than the crowd takes, for a silent client from
	// 127.0.0.1: then the crowd's addresses are over the per-IP limit
	// while the global one is not yet reached by them alone.
	srv := startServer(t, s, "-login-timeout", crowdLoginTimeout.String(),
		"-max-connections", fmt.Sprint(addrs*perAddr+1), "-max-connections-per-ip", fmt.Sprint(perAddr))

	type held struct {
		c net.Conn
		r *bufio.Reader
	}
	crowd := make([]held, 0, addrs*perAddr)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, addrs)
	start := time.Now()
	for a := 1; a <= addrs; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perAddr {
				c, err := dialFrom(fmt.Sprintf("127.0.3.%d", a), srv.addr)
				if err != nil {
					errs <- err
					return
				}
				r := bufio.NewReader(c)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
					errs <- fmt.Errorf("greeting from 127.0.3.%d: %q, %v", a, l, err)
					c.Close()
					return
				}
				mu.Lock()
				crowd = append(crowd, held{c, r})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, h := range crowd {
			h.c.Close()
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if time.Since(start) >= crowdLoginTimeout {
		t.Skipf("the machine took %s to open the crowd, longer than the login timeout", time.Since(start))
	}

	// A 5th connection from a crowd address is over the per-IP limit;
	// once a silent client from 127.0.0.1 took the last slot, anyone is
	// over the global one; 100 tries each.
	refusedFrom := func(src, limit string) {
		t.Helper()
		for i := range 100 {
			c, err := dialFrom(src, srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if l != "-ERR [SYS/TEMP] too many connections\r\n" {
				t.Fatalf("connection %d from %s (%s full): %q", i+1, src, limit, l)
			}
		}
	}
	refusedFrom("127.0.3.1", "max_connections_per_ip")
	if c, err := dialFrom("127.0.0.1", srv.addr); err != nil {
		t.Fatal(err)
	} else {
		crowd = append(crowd, held{c, bufio.NewReader(c)})
	}
	refusedFrom("127.0.0.1", "max_connections")

	// The crowd is cut at the login timeout, each told why.
	for i, h := range crowd {
		h.c.SetReadDeadline(time.Now().Add(crowdLoginTimeout + 10*time.Second))
		l, err := h.r.ReadString('\n')
		if i == len(crowd)-1 && err == nil && strings.HasPrefix(l, "+OK") {
			l, err = h.r.ReadString('\n') // 127.0.0.1's greeting
		}
		if err != nil || !strings.HasPrefix(l, "-ERR [SYS/TEMP] login timeout") {
			t.Fatalf("silent connection %d: %q, %v", i, l, err)
		}
		h.c.Close()
	}
	// A real client gets in once the slots are free again.
	waitFor(t, "a slot after the login timeout", func() bool {
		c, err := net.DialTimeout("tcp", srv.addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(l, "+OK")
	})
	probe(t, srv.addr, nil)

	// One line per refused address at once, the rest counted in one
	// line (written at the latest at shutdown).
	srv.stop()
	count := func(msg, key, val string) (n int, lines []logLine) {
		for _, l := range srv.logLines() {
			if l["msg"] == msg && strings.HasPrefix(l[key], val) {
				n++
				lines = append(lines, l)
			}
		}
		return n, lines
	}
	for _, tc := range []struct{ src, limit string }{{"127.0.3.1", "max_connections_per_ip"}, {"127.0.0.1", "max_connections"}} {
		if n, _ := count("connection refused", "remote", tc.src+":"); n != 1 {
			t.Errorf("%d %q lines for %s, want 1", n, "connection refused", tc.src)
		}
		// 99 refusals by refusedFrom after the first, and any of the
		// waitFor's tries that came before the slots were free.
		n, lines := count("connections refused", "remote_ip", tc.src)
		if n != 1 || lines[0]["limit"] != tc.limit {
			t.Errorf("%q lines for %s: %v, want one with limit=%s", "connections refused", tc.src, lines, tc.limit)
		} else if c, _ := strconv.Atoi(lines[0]["count"]); c < 99 {
			t.Errorf("%q for %s: count=%d, want >= 99", "connections refused", tc.src, c)
		}
	}
	if n, _ := count("login timeout", "remote_ip", "127.0."); n != addrs*perAddr+1 {
		t.Errorf("%d login timeout lines, want %d", n, addrs*perAddr)
	}
}
