#!/usr/bin/env python3
"""Log in through a POP3 proxy with Python's poplib and print what happened
as JSON; errors are reported, not raised.

Usage: cluster_client.py MODE HOST PORT USER PASS CAFILE DELETE
  MODE    stls | ssl (POP3_SSL) | plain
  CAFILE  PEM file of the certificate to trust ("" for plain)
  DELETE  comma-separated message numbers to DELE before QUIT

Output: {"stage": where it stopped ("done" when all went well), "error":
the server's -ERR line or the exception, "login_seconds": from PASS to its
answer, "bodies": base64 of each message, "quit": the QUIT answer}.
"""
import base64
import json
import poplib
import ssl
import sys
import time


def main():
    mode, host, port, user, password, cafile, delete = sys.argv[1:8]
    out = {"stage": "connect", "error": "", "bodies": []}
    try:
        ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        if mode == "ssl":
            c = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
        else:
            c = poplib.POP3(host, int(port), timeout=30)
        out["welcome"] = c.getwelcome().decode()
        if mode == "stls":
            out["stage"] = "stls"
            c.stls(context=ctx)
        out["stage"] = "user"
        c.user(user)
        out["stage"] = "pass"
        start = time.monotonic()
        try:
            c.pass_(password)
        finally:
            out["login_seconds"] = time.monotonic() - start
        out["stage"] = "transaction"
        count, _ = c.stat()
        for n in range(1, count + 1):
            _, lines, _ = c.retr(n)
            out["bodies"].append(base64.b64encode(b"".join(l + b"\r\n" for l in lines)).decode())
        for n in [int(x) for x in delete.split(",") if x]:
            c.dele(n)
        out["stage"] = "quit"
        out["quit"] = c.quit().decode()
        out["stage"] = "done"
    except (poplib.error_proto, OSError, EOFError) as e:
        msg = e.args[0] if e.args else str(e)
        out["error"] = msg.decode() if isinstance(msg, bytes) else str(e)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
