package daemon_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pop3d/pop3d/daemon"
)

func ExampleWriteMessage() {
	// LF line endings, a line starting with a dot, no final newline.
	msg := "Subject: hi\n\n.signature\nbye"
	var out strings.Builder
	n, err := daemon.WriteMessage(&out, strings.NewReader(msg))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n%d octets\n", out.String(), n)
	// Output:
	// "Subject: hi\r\n\r\n..signature\r\nbye\r\n.\r\n"
	// 32 octets
}

// A Server with STLS on one listener and implicit TLS on another, shut
// down on a signal. The backend comes from the store and password file.
func ExampleServer() {
	var backend daemon.Backend // e.g. an adapter over maildir and htpasswd
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	certs, err := daemon.NewCertReloader("/etc/pop3d/cert.pem", "/etc/pop3d/key.pem", logger)
	if err != nil {
		logger.Error("tls", "err", err)
		return
	}
	cfg := daemon.DefaultConfig()
	cfg.Implementation = "pop3d-1.0"
	cfg.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	srv := daemon.New(backend, cfg, logger)

	plain, _ := net.Listen("tcp", ":110")
	implicit, _ := net.Listen("tcp", ":995")
	go srv.Serve(plain, daemon.ModePlain)
	go srv.Serve(implicit, daemon.ModeTLS)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
