package main

import (
	"fmt"
	"io"
	"log/slog"
	"os/user"

	"github.com/pop3d/pop3d/daemon"
	"github.com/pop3d/pop3d/htpasswd"
	"github.com/pop3d/pop3d/maildir"
)

// runCheck is -check: it validates everything it can without binding or
// serving, prints every problem (one per line on stderr) and every warning,
// and exits 1 on any problem, 0 with "pop3d: configuration OK" otherwise.
func runCheck(opts *options, stdout, stderr io.Writer) int {
	problems, warnings := checkAll(opts)
	for _, o := range opts.origins() {
		fmt.Fprintf(stdout, "setting: %s\n", o)
	}
	if s, err := staticUsers(opts.env); err == nil && s != nil {
		fmt.Fprintf(stdout, "users: %d from environment %s (hashed in memory)\n", s.Len(), envAuth)
	}
	cfg, _ := opts.load()
	if cfg.LoginDelay > 0 || cfg.Expire.Set || cfg.APOP {
		fmt.Fprintf(stdout, "policy: login_delay %s, expire %s, apop %s\n", cfg.LoginDelay, cfg.Expire, yesNo(cfg.APOP))
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "pop3d: %d problem(s) found\n", len(problems))
		return exitFail
	}
	fmt.Fprintln(stdout, "pop3d: configuration OK")
	return exitOK
}

// checkAll returns the problems and warnings -check reports. A config file
// with errors is still checked further with the keys that did parse.
func checkAll(opts *options) (problems, warnings []string) {
	cfg, err := opts.load()
	problems = append(problems, errorLines(err)...)
	problems = append(problems, errorLines(cfg.Validate())...)
	warnings = append(cfg.Warnings(), envWarnings(opts.env)...)

	static, err := staticUsers(opts.env)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := clockFromEnv(opts.env); err != nil {
		problems = append(problems, err.Error())
	} else if v, ok := envValue(opts.env, envClockSkew); ok && v != "" {
		warnings = append(warnings, fmt.Sprintf("%s=%s moves the clock of LOGIN-DELAY and EXPIRE: for tests only", envClockSkew, v))
	}
	var pwProblems []htpasswd.Problem
	if !passwdOptional(&cfg, static) {
		pwProblems, err = htpasswd.CheckWith(cfg.PasswdFile, checkExtra)
		if err != nil {
			problems = append(problems, fmt.Sprintf("passwd_file: %v", err))
		}
	}
	for _, p := range pwProblems {
		if p.Warning {
			warnings = append(warnings, p.String())
		} else {
			problems = append(problems, p.String())
		}
	}
	if cfg.AuthHTTPListen != "" || len(cfg.Backends) > 0 {
		problems = append(problems, checkPlacement(&cfg)...)
	}
	if err := maildir.CheckTemplate(cfg.Maildir); err != nil {
		problems = append(problems, fmt.Sprintf("maildir: %v", err))
	}
	if cfg.TLSCert != "" && cfg.TLSKey != "" {
		quiet := slog.New(slog.DiscardHandler)
		if _, err := daemon.NewCertReloader(cfg.TLSCert, cfg.TLSKey, quiet); err != nil {
			problems = append(problems, fmt.Sprintf("tls_cert/tls_key: %v", err))
		}
	}
	if cfg.User != "" {
		if _, err := user.Lookup(cfg.User); err != nil {
			problems = append(problems, fmt.Sprintf("user: %v", err))
		}
	}
	if cfg.Group != "" {
		if _, err := user.LookupGroup(cfg.Group); err != nil {
			problems = append(problems, fmt.Sprintf("group: %v", err))
		}
	}
	return problems, warnings
}

// checkPlacement reports users the auth_http server could not place: a bad
// host= or port= field, or no host= while backends is empty.
func checkPlacement(cfg *Config) []string {
	f, err := htpasswd.Open(cfg.PasswdFile, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil // reported above
	}
	p := placement{backends: cfg.Backends}
	var problems []string
	for _, u := range f.Users() {
		if _, err := p.place(u); err != nil {
			problems = append(problems, fmt.Sprintf("passwd_file: %s: %v", cfg.PasswdFile, err))
		}
	}
	return problems
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
