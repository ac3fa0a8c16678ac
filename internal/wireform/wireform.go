// Package wireform holds the one definition of the POP3 wire form of a
// stored message, used by the engine that sends it (package daemon) and by
// the store that announces its size (package maildir), so that the octets
// sent and the octets announced cannot disagree.
//
// The wire form W(file) of a message file (RFC 1939 section 3, RFC 5322
// line ends): every LF not preceded by CR becomes CRLF, a bare CR passes
// through, a non-empty file whose last byte is not LF gets CRLF appended,
// and an empty file has no lines. On the wire each line of W starting with
// "." is dot-stuffed and ".\r\n" ends the multi-line response; sizes (LIST,
// STAT, "+OK n octets") count W without stuffing and terminator.
//
// Encoder and Counter are the fast implementations; Reference, Stuff and
// TopReference are the same rules written out literally, slow, for tests.
package wireform
