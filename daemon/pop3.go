// Package daemon is the POP3 engine of pop3d: listeners, sessions, the RFC
// 1939 state machine, TLS, limits and logging. It knows nothing of where
// mail is stored or how passwords are checked; a Backend does that.
//
// It implements:
//   - RFC 1939, Post Office Protocol - Version 3 (USER, PASS, STAT, LIST,
//     RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL, and APOP when enabled);
//   - RFC 2449, POP3 Extension Mechanism (CAPA, PIPELINING, RESP-CODES,
//     LOGIN-DELAY, EXPIRE (enforced at UPDATE), IMPLEMENTATION, the
//     255-octet command line limit);
//   - RFC 3206, the SYS and AUTH response codes;
//   - RFC 2595, STLS;
//   - RFC 5034, the SASL AUTH command, with the PLAIN mechanism (RFC 4616);
//   - RFC 8314, implicit TLS on a separate port (POP3S);
//   - the HAProxy PROXY protocol, versions 1 and 2, from trusted sources.
package daemon
