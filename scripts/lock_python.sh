#!/usr/bin/env bash
# Regenerates requirements.lock from requirements.in: every package pinned to an exact version with the
# sha256 of each of its files on the package index (pip-compile --generate-hashes). Run it after editing
# requirements.in, then ./scripts/setup.sh (which makes .venv anew from the new lock) and the whole suite.
# pip-tools runs from a throwaway environment, so it is not part of the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
/usr/bin/python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q pip-tools==7.6.2
# --allow-unsafe: setuptools, which torch requires at run time, is pinned and hashed like the rest.
"$tools/venv/bin/pip-compile" --generate-hashes --allow-unsafe --strip-extras --no-header --no-emit-find-links --quiet \
  -o requirements.lock requirements.in
echo "lock_python.sh: requirements.lock written ($(grep -c '^[a-z]' requirements.lock) packages)"
