#!/usr/bin/env python3
"""Run a list of poplib steps against pop3d and print each outcome as JSON.

Usage: poplib_steps.py HOST PORT PROXY STEPS_JSON
  PROXY       a PROXY v1 header line to send first ("" for none), for a
              server that trusts this client as a proxy
  STEPS_JSON  a JSON list of steps, each a list: ["capa"], ["user", U],
              ["pass", P], ["apop", U, P], ["stat"], ["retr", N],
              ["top", N, K], ["dele", N], ["quit"]

Prints {"welcome": ..., "steps": [...]}: for each step its answer line (for
capa the capability lines, for retr/top the number of body lines), or
"ERR: <server line>" when poplib raised error_proto; later steps are not
run after an error that closed the connection.
"""
import json
import poplib
import sys


class ProxyPOP3(poplib.POP3):
    def __init__(self, host, port, header):
        self._header = header
        super().__init__(host, port, timeout=30)

    def _create_socket(self, timeout):
        s = super()._create_socket(timeout)
        if self._header:
            s.sendall(self._header.encode() + b"\r\n")
        return s


def main():
    host, port, header, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    c = ProxyPOP3(host, port, header)
    out = {"welcome": c.getwelcome().decode(), "steps": []}
    for step in steps:
        op, args = step[0], step[1:]
        try:
            if op == "capa":
                caps = c.capa()
                r = sorted((k + " " + " ".join(v)).strip() for k, v in caps.items())
            elif op == "user":
                r = c.user(args[0]).decode()
            elif op == "pass":
                r = c.pass_(args[0]).decode()
            elif op == "apop":
                r = c.apop(args[0], args[1]).decode()
            elif op == "stat":
                r = list(c.stat())
            elif op == "retr":
                r = len(c.retr(args[0])[1])
            elif op == "top":
                r = len(c.top(args[0], args[1])[1])
            elif op == "dele":
                r = c.dele(args[0]).decode()
            elif op == "quit":
                r = c.quit().decode()
            else:
                raise SystemExit("unknown step " + op)
        except poplib.error_proto as e:
            r = "ERR: " + e.args[0].decode(errors="replace")
        out["steps"].append(r)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
