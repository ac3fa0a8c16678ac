package htpasswd

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// seedHashes adds every committed vector and some broken forms to f.
func seedHashes(f *testing.F, add func(string)) {
	for _, name := range []string{"vectors.txt", "refused.txt"} {
		for _, v := range readVectors(f, name) {
			add(v.hash)
		}
	}
	for _, s := range []string{"", "{", "{}", "{SHA", "$", "$$", "$2y$", "$6$rounds=", "$6$rounds=5000$",
		"$y$", "$y$j$$", "$argon2id$v=19$m=,t=,p=$$", "_", "{PLAIN.HEX}zz", "{SSHA512.B64}="} {
		add(s)
	}
}

// cheap reports whether verifying v costs little enough to run in a fuzz
// loop: the point is the parsing and the libraries' handling of odd input.
func cheap(v verifier) bool {
	switch v := v.(type) {
	case bcryptVerifier:
		return v.cost <= 5
	case shaCryptVerifier:
		return v.rounds <= 5000
	case yescryptVerifier, argon2Verifier:
		return false
	}
	return true
}

// FuzzParseHash: no input makes parsing, or verifying a cheap hash, panic,
// and nothing that is not a {PLAIN} hash accepts its own text as password.
func FuzzParseHash(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s, "Tr0ub4dor&3") })
	f.Fuzz(func(t *testing.T, hash, pass string) {
		v, info, err := parseHash(hash)
		if err != nil {
			if v != nil {
				t.Fatalf("parseHash(%q) returned a verifier and error %v", hash, err)
			}
			return
		}
		if cheap(v) {
			v.verify([]byte(pass))
			if !info.plaintext && v.verify([]byte(hash)) {
				t.Fatalf("hash %q accepts itself as the password", hash)
			}
		}
		_ = v.class()
	})
}

func FuzzParseBcrypt(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseBcrypt(s)
		if err == nil && cheap(v) {
			v.verify([]byte("x"))
		}
	})
}

func FuzzParseShaCrypt(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []*shaCryptKind{&apr1Crypt, &md5Crypt, &sha256Crypt, &sha512Crypt} {
			v, err := parseShaCrypt(s, kind)
			if err == nil && cheap(v) {
				v.verify([]byte("x"))
			}
		}
	})
}

func FuzzParseYescrypt(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseYescrypt(s)
		if err == nil {
			// What the parser accepts, yescrypt-go must too (no KDF run:
			// an unsupported setting fails before it).
			y := v.(yescryptVerifier)
			if !isYescryptB64(strings.Split(y.hash, "$")[3]) {
				t.Fatalf("accepted salt that yescrypt-go cannot decode: %q", s)
			}
		}
	})
}

func FuzzParseArgon2(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseArgon2(s)
		if err == nil {
			a := v.(argon2Verifier)
			if a.p < 1 || a.t < 1 || a.m < 8*uint32(a.p) || a.m > argonMaxMemory || len(a.sum) < 4 {
				t.Fatalf("accepted out-of-range parameters: %q", s)
			}
		}
	})
}

func FuzzParseDovecot(f *testing.F) {
	seedHashes(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		v, _, err := parseDovecot("{" + s)
		if err == nil && cheap(v) {
			v.verify([]byte("x"))
		}
	})
}

// FuzzParseLine: no line panics parseLine or parse; a line is a comment,
// an error, or a user with a hash and, if any, an absolute home.
func FuzzParseLine(f *testing.F) {
	for _, l := range strings.Split(sampleFile, "\n") {
		f.Add(l)
	}
	f.Add("u:h:1:2:g:/home/u:/bin/sh:extra:more:fields")
	f.Add("u:h::::")
	f.Fuzz(func(t *testing.T, s string) {
		l, skip, err := parseLine(s)
		switch {
		case skip:
			if l.user != "" || l.hash != "" || l.home != "" || l.extra != nil || err != nil {
				t.Fatalf("skipped line %q returned %+v, %v", s, l, err)
			}
		case err == nil:
			if l.user == "" || l.hash == "" || strings.ContainsAny(l.user, ":\n") {
				t.Fatalf("parseLine(%q) = %+v", s, l)
			}
			if l.home != "" && l.home[0] != '/' {
				t.Fatalf("relative home from %q", s)
			}
		}
		parse([]byte(s+"\n"+s), "f", func(Problem) {})
	})
}

// FuzzEditLines: setting a user's password and reading the file back gives
// that hash for the user, and every line for other users is unchanged.
func FuzzEditLines(f *testing.F) {
	f.Add([]byte(sampleFile), "alice", false)
	f.Add([]byte(sampleFile), "zed", false)
	f.Add([]byte(sampleFile), "frank", true)
	f.Add([]byte("a:b\r\nc:d"), "c", false)
	f.Fuzz(func(t *testing.T, data []byte, user string, del bool) {
		if validUser(user) != nil {
			return
		}
		const h = "{SHA}h0Vy56WuaklGamrFeLmK26eMaqY="
		hash := h
		if del {
			hash = ""
		}
		out, found := editLines(data, user, hash, del)
		others := func(b []byte) []byte {
			var keep [][]byte
			for _, ln := range bytes.SplitAfter(b, []byte("\n")) {
				l, _, _ := parseLine(strings.TrimSuffix(string(ln), "\n"))
				if l.user != user {
					keep = append(keep, bytes.TrimSuffix(bytes.TrimSuffix(ln, []byte("\n")), []byte("\r")))
				}
			}
			return bytes.Join(keep, []byte("\n"))
		}
		if a, b := others(data), others(out); !bytes.Equal(bytes.TrimRight(a, "\r\n"), bytes.TrimRight(b, "\r\n")) {
			t.Fatalf("other lines changed:\n%q\n%q", a, b)
		}
		tab := parse(out, "f", func(Problem) {})
		e, ok := tab.lookup(user)
		switch {
		case del && ok:
			t.Fatalf("user %q still present after delete (found=%v): %q", user, found, out)
		case !del && !ok, !del && !e.refused && e.hash != h:
			t.Fatalf("user %q: entry %+v after set: %q", user, e, out)
		case !del && e.refused && !bytes.Contains(out, []byte(user+":"+h)):
			// A line refused for another reason (a relative home) keeps
			// that reason, but gets the new hash.
			t.Fatalf("user %q: hash not written: %q", user, out)
		}
	})
}

// FuzzParseFile: the compact table answers every user with what the
// user's first line says, the way a map of parsed lines would.
func FuzzParseFile(f *testing.F) {
	f.Add(sampleFile)
	f.Add("a:" + hSHA + "\r\nb:" + hSHA + ":1:2::/home/b::\na:" + hApr1 + "\n\n#c:x\nd:\n" + strings.Repeat("u", 256) + ":" + hSHA)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tab := parseText(s, "f", nil, func(Problem) {})
		want := map[string]entry{}
		for n, text := range strings.Split(s, "\n") {
			l, skip, err := parseLine(text)
			if skip || l.user == "" {
				continue
			}
			if _, dup := want[l.user]; dup {
				continue
			}
			if err == nil {
				_, _, err = parseHash(l.hash)
			}
			if err != nil {
				want[l.user] = entry{line: n + 1, refused: true}
			} else {
				want[l.user] = entry{hash: l.hash, home: l.home, extra: l.extra, line: n + 1}
			}
		}
		if len(tab.users) != len(want) {
			t.Fatalf("%d users, want %d", len(tab.users), len(want))
		}
		for u, w := range want {
			if got, ok := tab.lookup(u); !ok || !reflect.DeepEqual(got, w) {
				t.Fatalf("lookup(%q) = %+v, %v; want %+v", u, got, ok, w)
			}
		}
	})
}
