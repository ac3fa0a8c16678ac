#!/bin/sh
# A minimal MDA for fetchmail and getmail: store stdin as one file in the
# directory $1. With $2, linger that many seconds after reading: getmail 6.18
# loses the SIGCHLD of a child that exits before it starts waiting ("waiting
# child pid N timed out"), which a machine under load makes likely.
set -e
dir=$1
n=$(date +%s%N).$$
cat >"$dir/.tmp.$n"
mv "$dir/.tmp.$n" "$dir/$n"
if [ -n "${2:-}" ]; then sleep "$2"; fi
