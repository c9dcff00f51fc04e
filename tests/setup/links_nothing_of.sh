#!/usr/bin/env bash
# links_nothing_of.sh BINARY NAME...: fails when BINARY's resolved shared libraries (ldd: the whole closure)
# include lib<NAME>* for any NAME, printing the offending ones. Used to hold a layer to what it may link:
# e.g. the registry store and its reports link no torch (libtorch*, libc10*) and no media stack.
set -euo pipefail
binary=$1
shift
[ -x "$binary" ] || { echo "links_nothing_of.sh: $binary is not an executable"; exit 2; }
libs=$(ldd "$binary" | awk '{print $1}')
echo "$binary links $(echo "$libs" | wc -l) shared libraries"
bad=""
for name in "$@"; do
  pattern="^lib${name}"
  [ "$name" = torch ] && pattern="^lib(torch|c10)"
  found=$(echo "$libs" | grep -E "$pattern" || true)
  [ -n "$found" ] && bad+="$found"$'\n'
done
if [ -n "$bad" ]; then
  echo "it must link none of: $*; it links:"
  echo -n "$bad"
  exit 1
fi
echo "none of: $*"
