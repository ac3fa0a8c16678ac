package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/pop3d/pop3d/internal/pop3test"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the octets the client read.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// dialCounting is dial with the octets read added to n.
func dialCounting(t *testing.T, addr string, n *atomic.Int64) *pop3test.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := pop3test.New(t, countingConn{c, n})
	p.ExpectOK("greeting")
	return p
}

// httpGet returns the status and body of url.
func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// parseMetrics reads the Prometheus text format into series -> value; a
// series is the name with its labels as printed (sorted by name).
func parseMetrics(t *testing.T, text []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// promtool runs promtool with stdin and fails the test on a non-zero exit.
func promtool(t *testing.T, stdin []byte, args ...string) {
	t.Helper()
	path := requireTool(t, "promtool")
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitMetric polls /metrics until series has value v.
func waitMetric(t *testing.T, base, series string, v float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, text := httpGet(t, base+"/metrics")
		if parseMetrics(t, text)[series] == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %v:\n%s", series, v, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetrics: scripted sessions against the real binary, then /metrics
// holds exactly what they did, and promtool accepts the exposition.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	msgs := s.deliverShapes(t, alice)
	if len(msgs) < 2 {
		t.Fatal("need two messages")
	}
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServer(t, s, "-metrics-listen", maddr, "-max-connections-per-ip", "2", "-control-socket", "")
	base := "http://" + maddr

	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("/healthz while serving: %d %q", code, body)
	}

	var read atomic.Int64
	// 1. USER/PASS, RETR, DELE, QUIT: UPDATE removes one message.
	p := dialCounting(t, srv.addr, &read)
	p.Login(alice, alicePass)
	p.Multi("RETR 1")
	p.OK("DELE 2")
	p.Quit()
	// Closing at once, as real clients do, ends the server's linger: the
	// session no longer counts against the per-IP limit.
	p.Close()
	// 2. A wrong password, then QUIT in AUTHORIZATION.
	p = dialCounting(t, srv.addr, &read)
	p.OK("USER " + alice)
	if r := p.Cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Fatalf("wrong password: %q", r)
	}
	p.Quit()
	p.Close()
	// 3. AUTH PLAIN, then the client drops the connection.
	p = dialCounting(t, srv.addr, &read)
	p.AuthPlain(bob, bobPass)
	p.Close()
	waitMetric(t, base, `pop3d_sessions_ended_total{how="dropped"}`, 1)
	// 4. Two connections held, a third refused by the per-IP limit.
	h1 := dialCounting(t, srv.addr, &read)
	h2 := dialCounting(t, srv.addr, &read)
	c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	refusal, _ := io.ReadAll(c)
	c.Close()
	if string(refusal) != "-ERR [SYS/TEMP] too many connections\r\n" {
		t.Fatalf("third connection: %q", refusal)
	}
	h1.Quit()
	h2.Quit()
	h1.Close()
	h2.Close()

	// Sessions end after the client saw the last byte: wait for the gauge.
	var m map[string]float64
	var text []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, text = httpGet(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d\n%s", code, text)
		}
		m = parseMetrics(t, text)
		if m["pop3d_connections_active"] == 0 && m[`pop3d_sessions_ended_total{how="dropped"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions still active:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]float64{
		`pop3d_connections_total{listener="pop3"}`:                         6,
		`pop3d_connections_total{listener="pop3s"}`:                        0,
		`pop3d_connections_active`:                                         0,
		`pop3d_connections_refused_total{reason="max_per_ip"}`:             1,
		`pop3d_connections_refused_total{reason="max_connections"}`:        0,
		`pop3d_logins_total{mechanism="user",result="success"}`:            1,
		`pop3d_logins_total{mechanism="user",result="failure"}`:            1,
		`pop3d_logins_total{mechanism="plain",result="success"}`:           1,
		`pop3d_logins_total{mechanism="plain",result="failure"}`:           0,
		`pop3d_logins_total{mechanism="user",result="in_use"}`:             0,
		`pop3d_auth_duration_seconds_count`:                                3,
		`pop3d_mailbox_open_seconds_count`:                                 2,
		`pop3d_mailbox_messages_count`:                                     2,
		`pop3d_mailbox_messages_sum`:                                       float64(len(msgs)),
		`pop3d_commands_total{command="USER",result="ok"}`:                 2,
		`pop3d_commands_total{command="PASS",result="ok"}`:                 1,
		`pop3d_commands_total{command="PASS",result="err"}`:                1,
		`pop3d_commands_total{command="AUTH",result="ok"}`:                 1,
		`pop3d_commands_total{command="RETR",result="ok"}`:                 1,
		`pop3d_commands_total{command="DELE",result="ok"}`:                 1,
		`pop3d_commands_total{command="QUIT",result="ok"}`:                 4,
		`pop3d_messages_retrieved_total`:                                   1,
		`pop3d_messages_deleted_total`:                                     1,
		`pop3d_bytes_sent_total`:                                           float64(read.Load()),
		`pop3d_sessions_ended_total{how="quit"}`:                           4,
		`pop3d_sessions_ended_total{how="dropped"}`:                        1,
		`pop3d_sessions_ended_total{how="timeout"}`:                        0,
		`pop3d_update_failures_total`:                                      0,
		`pop3d_build_info{goversion="` + goVersion(t) + `",version="dev"}`: 1,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("%s missing", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing: Go or process collector not registered", k)
		}
	}
	// No label carries what a client sent.
	for k := range m {
		if strings.Contains(k, alice) || strings.Contains(k, "bob") {
			t.Errorf("a user name in a series: %s", k)
		}
	}
	promtool(t, text, "check", "metrics")
	checkDashboard(t, m)

	// Still served while pop3d runs; the process ends cleanly.
	srv.stop()
	if strings.Contains(srv.stderr.String(), "metrics server failed") {
		t.Errorf("metrics server failed:\n%s", srv.stderr.String())
	}
}

// goVersion is the runtime.Version() the test binary was built with, the
// same toolchain that built pop3d.
func goVersion(t *testing.T) string {
	t.Helper()
	out := runCmd(t, time.Minute, []string{"GOTOOLCHAIN=local"}, "go", "env", "GOVERSION")
	return strings.TrimSpace(string(out))
}

// TestAlertRules: the shipped alert rules pass promtool check rules, and
// their unit tests (contrib/prometheus/alerts_test.yml) pass promtool test
// rules.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool(t, nil, "check", "rules", "../contrib/prometheus/alerts.yml")
	promtool(t, nil, "test", "rules", "../contrib/prometheus/alerts_test.yml")
}

// checkDashboard checks the shipped Grafana dashboard against a scrape:
// valid JSON, every query names only metrics pop3d serves, and every query,
// with Grafana's variables filled in, is PromQL that promtool accepts.
func checkDashboard(t *testing.T, scraped map[string]float64) {
	t.Helper()
	data, err := os.ReadFile("../contrib/grafana/pop3d.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("pop3d.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("pop3d.json: no title, uid or panels")
	}
	names := map[string]bool{}
	for series := range scraped {
		name, _, _ := strings.Cut(series, "{")
		names[name] = true
	}
	metricRE := regexp.MustCompile(`\bpop3d_[a-z_]+`)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				if !names[m] {
					t.Errorf("panel %q: %s is not served", p.Title, m)
				}
			}
			expr := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(tg.Expr)
			n++
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, strconv.Quote(expr))
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, nil, "check", "rules", f)
}
