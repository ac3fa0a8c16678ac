package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

// attrBackend is memBackend whose mailboxes add attrs to the login line.
type attrBackend struct {
	*memBackend
	attrs []slog.Attr
}

func (b attrBackend) Login(ctx context.Context, user, pass string, info daemon.ConnInfo) (daemon.Mailbox, error) {
	mb, err := b.memBackend.Login(ctx, user, pass, info)
	if err != nil {
		return nil, err
	}
	return attrMailbox{mb, b.attrs}, nil
}

type attrMailbox struct {
	daemon.Mailbox
	attrs []slog.Attr
}

func (m attrMailbox) LoginAttrs() []slog.Attr { return m.attrs }

// TestLoginAttrs: what a LoginAttrer mailbox has to say comes last on the
// login line; without one the line is as before.
func TestLoginAttrs(t *testing.T) {
	for _, tt := range []struct {
		attrs []slog.Attr
		tail  string
	}{
		{nil, " octets=3\n"},
		{[]slog.Attr{slog.Int("tmp_removed", 4)}, " octets=3 tmp_removed=4\n"},
	} {
		mb := newMemBackend()
		mb.addUser("u", "p", memMessage{data: []byte("x")})
		logs := &syncBuffer{}
		srv := daemon.New(attrBackend{mb, tt.attrs}, testConfig(), slog.New(slog.NewTextHandler(logs, nil)))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l, daemon.ModePlain) }()
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, conn)
		c.expect("+OK POP3 server ready")
		c.cmd("USER u", "+OK")
		c.send("PASS p")
		c.line()
		c.send("QUIT")
		c.line()
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		srv.Shutdown(ctx)
		cancel()
		<-served
		var line string
		for _, ln := range strings.SplitAfter(logs.String(), "\n") {
			if strings.Contains(ln, " msg=login ") {
				line = ln
			}
		}
		if !strings.HasSuffix(line, tt.tail) || !sessionIDRE.MatchString(line) && strings.Contains(sessionIDRE.ReplaceAllString(line, "session=ID"), " remote_ip=127.0.0.1 session=ID user=u mech=USER ") {
			t.Errorf("login line %q, want it to end in %q", line, tt.tail)
		}
	}
}
