// Command pop3d is a POP3 server for Maildirs, with virtual users from an
// htpasswd-style password file.
//
// Usage:
//
//	pop3d [-config FILE] [-check] [-version] [-KEY VALUE ...]
//	pop3d passwd [-f FILE] [-scheme bcrypt|sha512-crypt] [-d] USER
//	pop3d who [-config FILE] [-control-socket PATH]
//	pop3d kick [-config FILE] [-control-socket PATH] USER|SESSION-ID
//	pop3d where [-config FILE] USER...
//	pop3d transport-map [-config FILE] [-transport smtp|lmtp] [-port N] [-domain DOMAIN]
//	pop3d uidl [-config FILE] [-KEY VALUE ...] USER
//
// Every key of the config file has a flag (passwd_file is -passwd-file) and
// an environment variable (POP3D_PASSWD_FILE); flags override the
// environment, which overrides the file. POP3D_AUTH="user:password ..."
// adds users kept, hashed, in memory (environment only: flags show in ps).
//
// Exit status: 0 on success (-check found nothing, -version, clean shutdown
// on SIGTERM/SIGINT); 1 when -check found problems, the configuration is
// invalid, or startup or serving failed; 2 for command-line usage errors
// (unknown flag, bad flag value, stray arguments).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pop3d/pop3d/htpasswd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "passwd":
			return htpasswd.RunPasswd(args[1:], stdin, stdout, stderr)
		case "who", "kick":
			return runControl(args[0], args[1:], stdout, stderr)
		case "uidl":
			return runUIDL(args[1:], stdout, stderr)
		case "where":
			return runWhere(args[1:], stdout, stderr)
		case "transport-map":
			return runTransportMap(args[1:], stdout, stderr)
		}
	}
	opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	opts.env = os.Environ()
	if opts.version {
		fmt.Fprintf(stdout, "pop3d %s\n", version)
		return exitOK
	}
	if opts.check {
		return runCheck(opts, stdout, stderr)
	}
	cfg, err := opts.load()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		printErrors(stderr, err)
		return exitFail
	}
	return serve(opts, cfg, stderr)
}

// options is what the command line says.
type options struct {
	configPath     string
	configExplicit bool // -config given: a missing file is an error
	check          bool
	version        bool
	overrides      []override // in command-line order: the last one wins
	env            []string   // the environment, KEY=VALUE (POP3D_*)
}

type override struct {
	key   key
	value string
}

// load reads the config file and applies the environment (POP3D_<KEY>) and
// then the command-line overrides. It is called again on SIGHUP.
func (o *options) load() (Config, error) {
	cfg, err := LoadConfig(o.configPath, o.configExplicit)
	settings, _ := envSettings(o.env)
	err = errors.Join(err, applyEnv(&cfg, settings))
	for _, ov := range o.overrides {
		// Values were checked when the flag was parsed.
		if e := ov.key.set(&cfg, ov.value); e != nil {
			err = errors.Join(err, fmt.Errorf("flag -%s: %w", flagName(ov.key.name), e))
		}
	}
	return cfg, err
}

// keyFlag is the flag.Value of one config key. It checks the value at once
// so that a bad flag is a usage error, and records it as an override.
type keyFlag struct {
	k    key
	opts *options
}

func (f *keyFlag) String() string   { return "" }
func (f *keyFlag) IsBoolFlag() bool { return f.k.isBool }

func (f *keyFlag) Set(v string) error {
	if err := checkValueChars(v); err != nil {
		return err
	}
	var scratch Config
	if err := f.k.set(&scratch, v); err != nil {
		return err
	}
	f.opts.overrides = append(f.opts.overrides, override{key: f.k, value: v})
	return nil
}

// parseArgs parses the command line; errors have already been printed with
// the usage text.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	opts := &options{}
	fs := flag.NewFlagSet("pop3d", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.configPath, "config", defaultConfigPath, "config `file`")
	fs.BoolVar(&opts.check, "check", false, "check the configuration, password file, Maildir template and TLS files, then exit")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")
	for _, k := range keys() {
		usage := k.help + " (config key " + k.name
		if k.def != "" {
			usage += ", default " + k.def
		}
		usage += ")"
		fs.Var(&keyFlag{k: k, opts: opts}, flagName(k.name), usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  pop3d [-config FILE] [-check] [-version] [-KEY VALUE ...]\n"+
			"  pop3d passwd [-f FILE] [-scheme bcrypt|sha512-crypt] [-d] USER\n"+
			"  pop3d who [-config FILE] [-control-socket PATH]\n"+
			"  pop3d kick [-config FILE] [-control-socket PATH] USER|SESSION-ID\n"+
			"  pop3d where [-config FILE] USER...\n"+
			"  pop3d transport-map [-config FILE] [-transport smtp|lmtp] [-port N] [-domain DOMAIN]\n"+
			"  pop3d uidl [-config FILE] [-KEY VALUE ...] USER\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pop3d: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, errors.New("unexpected arguments")
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			opts.configExplicit = true
		}
	})
	return opts, nil
}

// printErrors prints err one line per joined error, each prefixed "pop3d: ".
func printErrors(w io.Writer, err error) {
	for _, line := range errorLines(err) {
		fmt.Fprintf(w, "pop3d: %s\n", line)
	}
}

// errorLines flattens errors.Join trees into one message per problem.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var lines []string
		for _, e := range j.Unwrap() {
			lines = append(lines, errorLines(e)...)
		}
		return lines
	}
	return strings.Split(err.Error(), "\n")
}
