// Command bench runs pop3d and Dovecot's POP3 server side by side over the
// same generated Maildirs and password file, interleaved (A B A B), and
// prints a table of medians with pop3d/Dovecot ratios (issue 6).
//
//	go run ./bench -pop3d bin/pop3d            # full run, under 10 minutes
//	BENCH_QUICK=1 go run ./bench -pop3d bin/pop3d   # under a minute
//
// Progress goes to stderr, the table to stdout and to -out.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// config sizes one run.
type config struct {
	quick         bool
	seed          uint64
	cacheDir      string // generated Maildirs, kept between runs
	workers       int    // generator goroutines
	sizes         []int  // login-stat and list-uidl mailboxes
	firstRounds   []int  // rounds per size for first logins
	repeatRounds  []int  // rounds per size for repeat logins
	listRounds    []int
	retrMB        int // retr-all mailbox size in MiB of wire octets
	retrRounds    int
	concUsers     int
	concMsgs      int   // messages per concurrent user; all are retrieved
	concClients   []int // client counts; each must divide concUsers
	concDur       time.Duration
	concRounds    int
	idleConns     int
	idleMsgs      int
	dele          int // messages DELEted in dele-quit
	deleRounds    int
	bcryptUsers   int
	bcryptDur     time.Duration
	verifyContent bool     // compare every retrieved byte with the file (slow; the smoke test)
	only          []string // scenarios to run; empty = all
}

func fullConfig() config {
	return config{
		seed: 42, workers: 2,
		sizes: []int{1000, 10000, 100000}, firstRounds: []int{5, 3, 3},
		repeatRounds: []int{21, 15, 11}, listRounds: []int{11, 9, 9},
		retrMB: 200, retrRounds: 7,
		concUsers: 200, concMsgs: 20, concClients: []int{50, 200}, concDur: 4 * time.Second, concRounds: 3,
		idleConns: 1000, idleMsgs: 3,
		dele: 10000, deleRounds: 5,
		bcryptUsers: 100, bcryptDur: 3 * time.Second,
	}
}

func quickConfig() config {
	return config{
		quick: true, seed: 42, workers: 2,
		sizes: []int{1000, 10000}, firstRounds: []int{3, 1}, repeatRounds: []int{9, 5}, listRounds: []int{5, 3},
		retrMB: 40, retrRounds: 2,
		concUsers: 200, concMsgs: 20, concClients: []int{50, 200}, concDur: time.Second, concRounds: 1,
		idleConns: 100, idleMsgs: 3,
		dele: 2000, deleRounds: 2,
		bcryptUsers: 100, bcryptDur: time.Second,
	}
}

var scenarioNames = []string{"idle", "login-stat", "list-uidl", "retr-all", "retr-all-tls", "concurrent", "concurrent-tls", "dele-quit", "bcrypt", "poll", "tls-profile"}

func main() {
	pop3dBin := flag.String("pop3d", "", "pop3d binary to measure (empty: Dovecot only)")
	dovecotBin := flag.String("dovecot", "dovecot", `Dovecot binary ("none": pop3d only)`)
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0", "quick mode (default from BENCH_QUICK)")
	cacheDir := flag.String("cache", "/var/tmp/pop3d-bench", "where generated Maildirs are kept between runs")
	out := flag.String("out", "bench/out/results.txt", "also write the table here (empty: no file)")
	only := flag.String("only", "", "comma-separated scenarios to run: "+strings.Join(scenarioNames, ","))
	seed := flag.Uint64("seed", 42, "generator seed")
	cpuprofile := flag.String("cpuprofile", "", "write the bench tool's own CPU profile here")
	keep := flag.Bool("keep", false, "keep the work directory (server copies of the Maildirs, logs)")
	flag.Parse()

	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	cfg.seed = *seed
	cfg.cacheDir = *cacheDir
	if *only != "" {
		cfg.only = strings.Split(*only, ",")
		for _, s := range cfg.only {
			if !contains(scenarioNames, s) {
				fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (have %s)\n", s, strings.Join(scenarioNames, ","))
				os.Exit(2)
			}
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dov := ""
	if *dovecotBin != "none" {
		var err error
		if dov, err = findDovecot(*dovecotBin); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	b := &bench{cfg: cfg, pop3dBin: *pop3dBin, dovecotBin: dov, keep: *keep, progressW: os.Stderr}
	if *out != "" {
		b.outDir = filepath.Dir(*out)
	}
	err := b.run(ctx)
	table := b.table()
	fmt.Print(table)
	if *out != "" && len(b.rows) > 0 {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
			_ = os.WriteFile(*out, []byte(table), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if len(b.problems) > 0 {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// findDovecot returns the Dovecot binary, installing Debian's dovecot-pop3d
// when it is missing and we may.
func findDovecot(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	if bin != "dovecot" || os.Geteuid() != 0 {
		return "", fmt.Errorf("%s not found: apt-get install dovecot-core dovecot-pop3d (or -dovecot none)", bin)
	}
	fmt.Fprintln(os.Stderr, "bench: installing dovecot-pop3d with apt-get")
	cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "dovecot-core", "dovecot-pop3d")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get install dovecot-pop3d: %w", err)
	}
	return exec.LookPath(bin)
}

// bench is one run.
type bench struct {
	cfg        config
	pop3dBin   string
	dovecotBin string
	keep       bool
	outDir     string // where profiles go ("": the work directory)
	progressW  io.Writer

	start    time.Time
	data     *dataset
	work     string // per-run directory: server Maildir copies, password file
	passwd   string
	servers  []*server      // pop3d first when present
	pool     *x509.CertPool // trusts the servers' certificate
	rows     []row
	notes    []string
	problems []string // wrong octet counts, errors: the run fails
	printed  int      // rows already shown as progress
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.progressW, "[%5.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) problem(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.problems = append(b.problems, s)
	b.progress("PROBLEM: %s", s)
}

func (b *bench) want(s string) bool {
	return len(b.cfg.only) == 0 || contains(b.cfg.only, s)
}

func (b *bench) run(ctx context.Context) (err error) {
	b.start = time.Now()
	raiseFileLimit()
	if b.pop3dBin == "" && b.dovecotBin == "" {
		return errors.New("nothing to measure: give -pop3d and/or Dovecot")
	}
	if b.dovecotBin != "" && os.Geteuid() != 0 {
		return errors.New("dovecot needs root here (it runs mail processes as the Maildir owner): run as root or with -dovecot none")
	}
	if b.data, err = openDataset(b.cfg.cacheDir, b.cfg.seed, b.progress); err != nil {
		return err
	}
	if err := b.data.prepare(&b.cfg); err != nil {
		return fmt.Errorf("generating Maildirs: %w", err)
	}
	removeStaleWork(b.cfg.cacheDir)
	b.work, err = os.MkdirTemp(b.cfg.cacheDir, "work-")
	if err != nil {
		return err
	}
	_ = os.Chmod(b.work, 0o755)
	if !b.keep {
		defer func() {
			b.progress("removing %s", b.work)
			_ = os.RemoveAll(b.work)
		}()
	} else {
		defer b.progress("work directory kept: %s", b.work)
	}

	users := []string{"retr"}
	var passwdUsers []string
	for _, n := range b.cfg.sizes {
		users = append(users, bigUser(n))
		passwdUsers = append(passwdUsers, "first"+fmt.Sprint(n))
	}
	for i := range b.cfg.concUsers {
		users = append(users, concUser(i))
	}
	for i := range b.cfg.idleConns {
		users = append(users, idleUser(i))
	}
	passwdUsers = append(passwdUsers, users...)
	passwdUsers = append(passwdUsers, "dele")
	for i := range b.cfg.bcryptUsers {
		users = append(users, bcryptUser(i)) // in the password file with bcrypt hashes
	}
	b.passwd = filepath.Join(b.work, "passwd")
	if err := writePasswd(b.passwd, passwdUsers, b.cfg.bcryptUsers); err != nil {
		return err
	}

	cert, key, pool, err := writeCert(b.work)
	if err != nil {
		return err
	}
	b.pool = pool
	if b.pop3dBin != "" {
		root := filepath.Join(b.work, "pop3d")
		if err := b.data.copyUsers(root, users); err != nil {
			return err
		}
		s, err := newPop3d(b.pop3dBin, root, b.passwd, b.work, cert, key)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, s)
	}
	if b.dovecotBin != "" {
		root := filepath.Join(b.work, "dovecot")
		if err := b.data.copyUsers(root, users); err != nil {
			return err
		}
		// Short base_dir: Dovecot's unix socket paths must stay under 108 bytes.
		base, err := os.MkdirTemp("", "pdb-")
		if err != nil {
			return err
		}
		_ = os.Chmod(base, 0o755)
		if b.keep {
			defer b.progress("Dovecot directory kept: %s", base)
		} else {
			defer os.RemoveAll(base)
		}
		s, err := newDovecot(b.dovecotBin, base, root, b.passwd, b.data.own.UID, b.data.own.GID, cert, key)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, s)
	}
	for _, s := range b.servers {
		if err := s.start(ctx); err != nil {
			return err
		}
		defer s.stop()
		b.progress("%s listening on %s", s.name, s.addr)
	}
	if len(b.servers) > 1 {
		b.notes = append(b.notes, "A B A B interleaving: every round runs pop3d then Dovecot; one unmeasured warm-up round first (none for first logins: each round is a fresh hard-linked copy of the Maildir, no index or size cache, its files read into the page cache beforehand for both servers).")
	}
	b.notes = append(b.notes, "Passwords: {SHA} (htpasswd -s) for every user on both servers; the bcrypt rows use $2y$ cost 10 (htpasswd -B). Mailboxes: half the names Postfix-style (no size), half Dovecot-style with ,S= and ,W=; 5% in new/.")
	if b.dovecotBin != "" {
		v, _ := exec.Command(b.dovecotBin, "--version").Output()
		b.notes = append(b.notes, "Dovecot "+strings.TrimSpace(string(v))+": service_count = 0 and process_min_avail = 2 for pop3-login and pop3 (long-lived, pre-forked, reused processes), process/client limits raised, pop3_uidl_format = %f (the Maildir base name, as pop3d), auth cache off (default, as pop3d), pop3_no_flag_updates = no (default: RETR+QUIT marks seen, as pop3d's mark_read = yes), pop3_lock_session = no (default; pop3d always locks), mail_fsync = optimized (default), info_log_path = /dev/null (pop3d runs at log_level warn).")
	}
	load0 := loadAvg()
	defer func() {
		b.notes = append(b.notes, fmt.Sprintf("Machine: %d CPUs; load average %s at start, %s at end (other work on the machine inflates every figure; compare ratios).", runtime.NumCPU(), load0, loadAvg()))
	}()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"login-stat", b.loginStat},
		{"list-uidl", b.listUIDL},
		{"retr-all", b.retrAll},
		{"retr-all-tls", b.retrAllTLS},
		{"concurrent", b.concurrent},
		{"concurrent-tls", b.concurrentTLS},
		{"dele-quit", b.deleQuit},
		{"bcrypt", b.bcrypt},
		{"poll", b.poll},
		{"tls-profile", b.tlsProfile},
		// Last: Dovecot keeps a process per idle connection until its
		// idle_kill (a minute) ends them, a thousand exits in the middle
		// of whatever runs then (they doubled Dovecot's 1k login times).
		{"idle", b.idle},
	}
	for _, st := range steps {
		if !b.want(st.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range b.servers {
			select {
			case <-s.done:
				return fmt.Errorf("%s died: %s", s.name, s.logTail())
			default:
			}
		}
		b.progress("scenario %s", st.name)
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	b.progress("done in %s", time.Since(b.start).Round(time.Second))
	return nil
}

// removeStaleWork removes work directories left by runs that were killed
// (older than a full run could last; a concurrent run's is left alone).
func removeStaleWork(cacheDir string) {
	ents, _ := os.ReadDir(cacheDir)
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "work-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 2*time.Hour {
			_ = os.RemoveAll(filepath.Join(cacheDir, e.Name()))
		}
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
