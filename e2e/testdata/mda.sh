#!/bin/sh
# A minimal MDA for fetchmail: store stdin as one file in the directory $1.
set -e
dir=$1
n=$(date +%s%N).$$
cat >"$dir/.tmp.$n"
mv "$dir/.tmp.$n" "$dir/$n"
