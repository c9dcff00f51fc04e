#!/usr/bin/env bash
# Makes the project's Python environment (.venv, git-ignored) from requirements.lock: the pinned PyTorch
# wheel whose LibTorch the C++ build links, NVIDIA's nvcc and CUDA headers of the same CUDA, and the
# exactness references (diffusers, transformers, open_clip, ...). Every file is checked against the lock's
# sha256 (pip --require-hashes), so a fresh machine gets byte-identical packages, and a wheel whose hash is
# not the pinned one stops the setup. Idempotent: when .venv already holds this lock, it does nothing.
#
# ASG_VENV (default .venv) and ASG_REQUIREMENTS_LOCK (default requirements.lock) choose other paths.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ASG_VENV:-.venv}
lock=${ASG_REQUIREMENTS_LOCK:-requirements.lock}
# Debian's interpreter, not whichever python3 is first on PATH (pyenv's, on some machines): the venv's
# Python is what the build records and the tests run.
python=${ASG_BASE_PYTHON:-/usr/bin/python3}

if [ ! -f "$lock" ]; then
  echo "setup_python.sh: $lock does not exist (valid: a pip lock file with --hash lines, e.g. requirements.lock)" >&2
  exit 2
fi
stamp="$venv/.asg-lock-sha256"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  echo "setup_python.sh: $venv matches $lock"
  exit 0
fi

# A venv made from another lock is made anew, so that nothing the new lock does not name stays behind.
rm -rf "$venv"
"$python" -m venv "$venv"
echo "setup_python.sh: installing $lock into $venv (hashes required)"
start=$(date +%s)
# --only-binary: nothing is compiled from source, so what is installed is exactly the hashed wheel.
if ! "$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary :all: \
    -r "$lock"; then
  echo "setup_python.sh: installing $lock failed (see pip's message above: a hash mismatch means a package file is not" \
       "the pinned one; nothing was marked installed, and the next run tries again)" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "setup_python.sh: $venv ready in $(( $(date +%s) - start )) s"
