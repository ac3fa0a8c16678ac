// Package mailgen writes deterministic, realistic Maildirs for the benchmark:
// mostly 2-20 KB text messages, about 10% of 50-500 KB with a base64
// attachment, about one in a thousand of 5 MB; LF line endings as MTAs write
// them; body lines starting with "."; 5% in new/, the rest in cur/ with
// flags; file names in the forms Postfix and Dovecot deliver.
//
// Message i of a stream depends only on (seed, stream, i), so a mailbox of n
// messages is a prefix of any longer mailbox of the same stream, and the same
// seed always gives the same bytes and names.
package mailgen

import (
	"encoding/base64"
	"fmt"
	"github.com/pop3d/pop3d/internal/wireform"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version changes whenever the output for a given seed changes, so caches of
// generated Maildirs can be keyed by it.
const Version = 1

// HugeSize is the size of the rare large messages.
const HugeSize = 5 << 20

// Message describes one generated message file.
type Message struct {
	Name     string // path relative to the Maildir, "new/..." or "cur/..."
	Unique   string // the unique part of the name (before ":2,"): the UIDL both servers report
	DiskSize int64  // bytes in the file
	WireSize int64  // len(Wire(file)): the octet count POP3 announces
}

// Generator produces messages for one seed. It is safe for concurrent use.
type Generator struct {
	seed     uint64
	poolOnce sync.Once
	pool     []byte // base64 text in 76-column lines, attachments are slices of it
}

// New returns a Generator for seed.
func New(seed uint64) *Generator {
	return &Generator{seed: seed}
}

const poolLine = 77 // 76 base64 characters and LF

func (g *Generator) base64Pool() []byte {
	g.poolOnce.Do(func() {
		rng := rand.New(rand.NewPCG(g.seed, 0x6261736536340a))
		raw := make([]byte, 57*((HugeSize+1<<20)/poolLine+1)) // 57 raw bytes per 76-char line
		for i := 0; i+8 <= len(raw); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				raw[i+j] = byte(v >> (8 * j))
			}
		}
		pool := make([]byte, 0, len(raw)/57*poolLine)
		line := make([]byte, 76)
		for i := 0; i+57 <= len(raw); i += 57 {
			base64.StdEncoding.Encode(line, raw[i:i+57])
			pool = append(pool, line...)
			pool = append(pool, '\n')
		}
		g.pool = pool
	})
	return g.pool
}

var words = strings.Fields(`the of and to in is for on that with as was at by it from be this
have or are an not but which one all were when there can more if will about out up their
said what its time only new would into also other some could them these two may then first
any like now such over our even most after made many before must through back years where
much your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under never
day same another know while last might us great old year off come since against go came
right used take three meeting invoice report server mailbox quarterly schedule attached
please regards thanks review draft budget project deadline customer delivery shipment`)

var firstNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter"}
var domains = []string{"example.com", "example.net", "example.org", "mail.example", "corp.example.com", "lists.example.org"}
var flagSets = []string{"S", "S", "S", "RS", "S", "FS", "S", "", "ST", "S"}

// baseTime is the delivery time of message 0; later messages are later.
const baseTime = 1700000000

// Message generates message i of stream: its file name relative to the
// Maildir and its bytes.
func (g *Generator) Message(stream uint64, i int) (name string, unique string, content []byte) {
	rng := rand.New(rand.NewPCG(g.seed^(stream*0x9e3779b97f4a7c15), uint64(i)*0xbf58476d1ce4e5b9+stream))
	ts := int64(baseTime) + int64(i)*37 + int64(rng.IntN(30))

	var b strings.Builder
	to := fmt.Sprintf("user%d@example.org", stream)
	from := fmt.Sprintf("%s <%s@%s>", firstNames[rng.IntN(len(firstNames))],
		strings.ToLower(firstNames[rng.IntN(len(firstNames))]), domains[rng.IntN(len(domains))])
	date := time.Unix(ts, 0).UTC().Format(time.RFC1123Z)
	fmt.Fprintf(&b, "Return-Path: <bounce-%d@%s>\n", rng.IntN(100000), domains[rng.IntN(len(domains))])
	fmt.Fprintf(&b, "Delivered-To: %s\n", to)
	fmt.Fprintf(&b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.example.org (Postfix) with ESMTPS id %X\n\tfor <%s>; %s\n",
		rng.IntN(9), domains[rng.IntN(len(domains))], rng.IntN(9), domains[rng.IntN(len(domains))], 1+rng.IntN(250), rng.Uint32(), to, date)
	fmt.Fprintf(&b, "Date: %s\nFrom: %s\nTo: %s\n", date, from, to)
	b.WriteString("Subject: ")
	b.WriteString(sentence(rng, 3+rng.IntN(6)))
	fmt.Fprintf(&b, "\nMessage-ID: <%d.%x@%s>\nMIME-Version: 1.0\n", ts, rng.Uint64(), domains[rng.IntN(len(domains))])

	class := rng.Float64()
	var attach int
	switch {
	case class < 0.001:
		attach = HugeSize
	case class < 0.10:
		// Log-uniform between 50 and 500 KB: small attachments are more common.
		attach = int(50e3 * math.Pow(10, rng.Float64()))
	}
	textSize := 2000 + rng.IntN(18000)
	if attach == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\n\n")
		body(&b, rng, textSize-b.Len())
	} else {
		boundary := fmt.Sprintf("=_%016x", rng.Uint64())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\nThis is a MIME message.\n\n--%s\nContent-Type: text/plain; charset=utf-8\n\n", boundary, boundary)
		body(&b, rng, 500+rng.IntN(3000))
		fmt.Fprintf(&b, "\n--%s\nContent-Type: application/octet-stream; name=\"file%d.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"file%d.bin\"\n\n", boundary, i, i)
		pool := g.base64Pool()
		lines := (attach + poolLine - 1) / poolLine
		start := rng.IntN(len(pool)/poolLine-lines) * poolLine
		b.Write(pool[start : start+lines*poolLine])
		fmt.Fprintf(&b, "--%s--\n", boundary)
	}
	content = []byte(b.String())

	wire := WireSize(content)
	if rng.IntN(2) == 0 {
		// Postfix: T.VdevIinoMusec.host, no size in the name.
		unique = fmt.Sprintf("%d.V803I%xM%d.mx", ts, 0x40000+i, rng.IntN(1000000))
	} else {
		// Dovecot LDA: T.MusecPpid.host,S=disk,W=wire.
		unique = fmt.Sprintf("%d.M%dP%d.mx,S=%d,W=%d", ts, rng.IntN(1000000), 1000+i, len(content), wire)
	}
	if rng.IntN(20) == 0 {
		name = "new/" + unique
	} else {
		name = "cur/" + unique + ":2," + flagSets[rng.IntN(len(flagSets))]
	}
	return name, unique, content
}

func sentence(rng *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[rng.IntN(len(words))]
	}
	s := strings.Join(ws, " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// body writes about n bytes of text in lines of up to 76 characters. Some
// lines start with "." (and some are exactly "."), to exercise dot-stuffing.
func body(b *strings.Builder, rng *rand.Rand, n int) {
	end := b.Len() + n
	col := 0
	for b.Len() < end {
		switch r := rng.IntN(200); {
		case r == 0 && col == 0:
			b.WriteString(".\n")
			continue
		case r < 5 && col == 0:
			b.WriteString("..")
			col += 2
		case r < 12 && col > 0:
			b.WriteString(".\n")
			col = 0
			continue
		case r < 16 && col > 0:
			b.WriteString("\n\n")
			col = 0
			continue
		}
		w := words[rng.IntN(len(words))]
		if col+len(w)+1 > 76 {
			b.WriteByte('\n')
			col = 0
		}
		if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteByte('\n')
}

// WireSize returns len(Wire(b)) without building it.
func WireSize(b []byte) int64 {
	var c wireform.Counter
	c.Count(b)
	return c.Size()
}

// Wire returns the bytes RETR sends for a file with content b, before
// dot-stuffing: bare LF becomes CRLF, a bare CR passes through, and a final
// CRLF is added to a non-empty file that does not end in LF. Both follow
// the one definition in internal/wireform.
func Wire(b []byte) []byte { return wireform.Reference(b) }

// Owner is the owner given to generated files and directories; a negative
// UID leaves ownership alone.
type Owner struct{ UID, GID int }

// WriteMaildir creates the Maildir dir (tmp/, new/, cur/, mode 0700) and
// writes messages [from, n) of stream into it, each with its delivery time
// as mtime, using workers goroutines. It returns the descriptions of
// messages [from, n).
func (g *Generator) WriteMaildir(dir string, stream uint64, from, n, workers int, own Owner) ([]Message, error) {
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("mailgen: %w", err)
		}
		if err := chown(p, own); err != nil {
			return nil, err
		}
	}
	if workers < 1 {
		workers = 1
	}
	msgs := make([]Message, n-from)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < n; i += workers {
				name, unique, content := g.Message(stream, i)
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, content, 0o600); err != nil {
					errs[w] = fmt.Errorf("mailgen: %w", err)
					return
				}
				ts := time.Unix(deliveryTime(unique), 0)
				if err := os.Chtimes(p, ts, ts); err != nil {
					errs[w] = fmt.Errorf("mailgen: %w", err)
					return
				}
				if err := chown(p, own); err != nil {
					errs[w] = err
					return
				}
				msgs[i-from] = Message{Name: name, Unique: unique, DiskSize: int64(len(content)), WireSize: WireSize(content)}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

func deliveryTime(unique string) int64 {
	t, _ := strconv.ParseInt(unique[:strings.IndexByte(unique, '.')], 10, 64)
	return t
}

func chown(p string, own Owner) error {
	if own.UID < 0 {
		return nil
	}
	if err := os.Lchown(p, own.UID, own.GID); err != nil {
		return fmt.Errorf("mailgen: %w", err)
	}
	return nil
}
