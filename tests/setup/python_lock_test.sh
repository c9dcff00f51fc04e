#!/usr/bin/env bash
# scripts/setup_python.sh against locks it must refuse, in a throwaway environment:
#  1. a package file whose sha256 is not the pinned one: setup stops (exit 1) with pip's hash message and
#     marks nothing installed;
#  2. a lock line without a hash: refused by --require-hashes;
#  3. a lock file that does not exist: exit 2, naming it.
# The wheel is six 1.16.0 (11 kB) from the package index, the registry setup.sh installs from.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# six-1.16.0-py2.py3-none-any.whl's real sha256 is d5c0...; this lock pins another.
cat > "$work/wrong_hash.lock" <<'LOCK'
six==1.16.0 \
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000
LOCK
out=$(ASG_VENV="$work/venv" ASG_REQUIREMENTS_LOCK="$work/wrong_hash.lock" "$repo/scripts/setup_python.sh" 2>&1)
rc=$?
[ "$rc" -eq 1 ] || fail "wrong hash: exit $rc, expected 1
$out"
grep -q "DO NOT MATCH THE HASHES" <<<"$out" || fail "wrong hash: pip's hash message missing
$out"
grep -q "a hash mismatch means a package file is not the pinned one" <<<"$out" || fail "wrong hash: setup's own message missing
$out"
[ ! -e "$work/venv/.asg-lock-sha256" ] || fail "wrong hash: the environment was marked installed"
"$work/venv/bin/python" -c "import six" 2>/dev/null && fail "wrong hash: six was installed anyway"

printf 'six==1.16.0\n' > "$work/no_hash.lock"
out=$(ASG_VENV="$work/venv2" ASG_REQUIREMENTS_LOCK="$work/no_hash.lock" "$repo/scripts/setup_python.sh" 2>&1)
rc=$?
[ "$rc" -eq 1 ] || fail "no hash: exit $rc, expected 1
$out"
grep -qi "hash" <<<"$out" || fail "no hash: no word of the missing hash
$out"

out=$(ASG_VENV="$work/venv3" ASG_REQUIREMENTS_LOCK="$work/missing.lock" "$repo/scripts/setup_python.sh" 2>&1)
rc=$?
[ "$rc" -eq 2 ] || fail "missing lock: exit $rc, expected 2
$out"
grep -q "missing.lock does not exist" <<<"$out" || fail "missing lock: file not named
$out"
[ ! -e "$work/venv3" ] || fail "missing lock: an environment was made"
echo "python lock refusals: 3 passed, 0 failed"
