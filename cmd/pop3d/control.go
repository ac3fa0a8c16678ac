package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The control socket: `pop3d who` and `pop3d kick` talk to the running
// daemon over a Unix socket (control_socket). A request is one line, "who"
// or "kick TARGET"; the answer is text up to the end of the connection,
// whose first line is "ok" or "error: MESSAGE".
const (
	controlMode     = 0o600
	controlTimeout  = 5 * time.Second // a whole request and answer
	maxControlLine  = 1024
	maxControlDrain = 64 << 10
	controlOK       = "ok"
	controlErrorPre = "error: "
)

// controlServer answers the control socket.
type controlServer struct {
	l      *net.UnixListener
	reg    *registry
	logger *slog.Logger
}

// listenControl creates the control socket at path. A stale socket left by
// a crash is replaced; a live one (another pop3d) and anything that is not a
// socket are not touched.
func listenControl(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control_socket %s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("control_socket %s: another pop3d is serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control_socket %s: removing the stale socket: %w", path, err)
		}
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("control_socket %s: %w (under systemd, RuntimeDirectory= creates it)", path, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control_socket: %w", err)
	}
	// Peer credentials are checked too, so the moment before the chmod
	// lets nobody in.
	if err := os.Chmod(path, controlMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("control_socket: %w", err)
	}
	return l, nil
}

// serve answers requests until the listener is closed.
func (c *controlServer) serve() {
	for {
		conn, err := c.l.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.logger.Error("control socket accept failed", "err", err)
			}
			return
		}
		go c.answer(conn)
	}
}

// answer handles one request.
func (c *controlServer) answer(conn *net.UnixConn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(controlTimeout))
	// Whatever the client sent beyond the request is read before closing,
	// so that the answer is not lost to a connection reset.
	defer func() {
		conn.CloseWrite()
		io.Copy(io.Discard, io.LimitReader(conn, maxControlDrain))
	}()
	uid, err := peerUID(conn)
	// Root, and the user pop3d runs as; mode 0600 says the same.
	if err != nil || (uid != 0 && uid != os.Geteuid()) {
		c.logger.Warn("control socket: request refused", "peer_uid", uid, "err", err)
		fmt.Fprintf(conn, "%spermission denied\n", controlErrorPre)
		return
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxControlLine), maxControlLine).ReadString('\n')
	if err != nil {
		fmt.Fprintf(conn, "%srequest not understood\n", controlErrorPre)
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	w := bufio.NewWriter(conn)
	defer w.Flush()
	switch {
	case cmd == "who" && arg == "":
		fmt.Fprintln(w, controlOK)
		c.reg.writeWho(w, time.Now())
	case cmd == "kick" && arg != "":
		n := c.reg.kick(arg)
		c.logger.Info("kick", "target", arg, "sessions", n)
		fmt.Fprintf(w, "%s\n%d\n", controlOK, n)
	default:
		fmt.Fprintf(w, "%sunknown request %q\n", controlErrorPre, cmd)
	}
}

// peerUID returns the user id of the process at the other end.
func peerUID(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

// controlRequest sends one request to the control socket at path and
// returns the answer after its "ok" line.
func controlRequest(ctx context.Context, path, request string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("control socket %s: %w (is pop3d running with this control_socket?)", path, err)
		}
		return "", fmt.Errorf("control socket %s: %w", path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, request+"\n"); err != nil {
		return "", fmt.Errorf("control socket %s: %w", path, err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("control socket %s: %w", path, err)
	}
	first, rest, _ := strings.Cut(string(answer), "\n")
	if first == controlOK {
		return rest, nil
	}
	if msg, ok := strings.CutPrefix(first, controlErrorPre); ok {
		return "", fmt.Errorf("control socket %s: %s", path, msg)
	}
	return "", fmt.Errorf("control socket %s: unexpected answer %q", path, first)
}

// runControl is `pop3d who` and `pop3d kick`: it finds the control socket
// from -control-socket or the config file and asks the daemon.
func runControl(name string, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("pop3d "+name, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		if name == "who" {
			fmt.Fprintf(stderr, "Usage:\n  pop3d who [-config FILE] [-control-socket PATH]\n\nLists the live sessions.\n\nFlags:\n")
		} else {
			fmt.Fprintf(stderr, "Usage:\n  pop3d kick [-config FILE] [-control-socket PATH] USER|SESSION-ID\n\n"+
				"Ends the session with that id, or else every session of that user, as a shutdown does.\n\nFlags:\n")
		}
		flags.PrintDefaults()
	}
	configPath := flags.String("config", defaultConfigPath, "config `file` naming control_socket")
	socket := flags.String("control-socket", "", "control socket `path` (default: control_socket of the config file)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	var target string
	switch {
	case name == "who" && flags.NArg() == 0:
	case name == "kick" && flags.NArg() == 1 && flags.Arg(0) != "":
		target = flags.Arg(0)
	default:
		flags.Usage()
		return exitUsage
	}
	path := *socket
	if path == "" {
		explicit := false
		flags.Visit(func(f *flag.Flag) {
			if f.Name == "config" {
				explicit = true
			}
		})
		cfg, err := LoadConfig(*configPath, explicit)
		if err != nil {
			printErrors(stderr, err)
			return exitFail
		}
		if cfg.ControlSocket == "" {
			fmt.Fprintf(stderr, "pop3d %s: control_socket is off in %s; set it or use -control-socket\n", name, *configPath)
			return exitFail
		}
		path = cfg.ControlSocket
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	request := "who"
	if name == "kick" {
		request = "kick " + target
	}
	answer, err := controlRequest(ctx, path, request)
	if err != nil {
		fmt.Fprintf(stderr, "pop3d %s: %v\n", name, err)
		return exitFail
	}
	if name == "who" {
		io.WriteString(stdout, answer)
		return exitOK
	}
	n, err := strconv.Atoi(strings.TrimSpace(answer))
	if err != nil {
		fmt.Fprintf(stderr, "pop3d kick: unexpected answer %q\n", answer)
		return exitFail
	}
	fmt.Fprintf(stdout, "kicked %d session(s)\n", n)
	if n == 0 {
		fmt.Fprintf(stderr, "pop3d kick: no session with id or user %q\n", target)
		return exitFail
	}
	return exitOK
}
