#!/usr/bin/env python3
"""Drive pop3d with Python's poplib and print what it saw as JSON.

Usage: poplib_client.py MODE HOST PORT USER PASS CAFILE DELETE
  MODE    plain | stls | ssl (POP3_SSL)
  CAFILE  PEM file of the CA to trust ("" for plain)
  DELETE  comma-separated message numbers to DELE before QUIT ("" for none)

Bodies are reassembled as CRLF-terminated lines (poplib strips the line ends
and the dot-stuffing) and printed base64-encoded. Exits non-zero on any error.
"""
import base64
import json
import poplib
import ssl
import sys


def body(lines):
    return base64.b64encode(b"".join(l + b"\r\n" for l in lines)).decode()


def main():
    mode, host, port, user, password, cafile, delete = sys.argv[1:8]
    port = int(port)
    ctx = None
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    if mode == "ssl":
        c = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
    else:
        c = poplib.POP3(host, port, timeout=30)
    out = {"welcome": c.getwelcome().decode()}
    out["capa_before"] = sorted(c.capa().keys())
    if mode == "stls":
        out["stls"] = c.stls(context=ctx).decode()
        out["capa_after"] = sorted(c.capa().keys())
        out["cipher"] = c.sock.cipher()[0]
    out["user"] = c.user(user).decode()
    out["pass"] = c.pass_(password).decode()
    count, size = c.stat()
    out["stat"] = [count, size]
    resp, lines, _ = c.list()
    out["list"] = [[int(x) for x in l.split()] for l in lines]
    resp, lines, _ = c.uidl()
    out["uidl"] = [[int(l.split()[0]), l.split()[1].decode()] for l in lines]
    out["retr"] = {}
    out["retr_octets"] = {}
    out["top0"] = {}
    out["top1"] = {}
    for n in range(1, count + 1):
        resp, lines, octets = c.retr(n)
        out["retr"][n] = body(lines)
        out["retr_status"] = resp.decode()
        out["retr_octets"][n] = octets
        resp, lines, _ = c.top(n, 0)
        out["top0"][n] = body(lines)
        resp, lines, _ = c.top(n, 1)
        out["top1"][n] = body(lines)
    out["dele"] = []
    for n in [int(x) for x in delete.split(",") if x]:
        out["dele"].append(c.dele(n).decode())
    out["quit"] = c.quit().decode()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
