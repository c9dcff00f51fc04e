#!/usr/bin/env python3
"""The fast tier of the test suite (./scripts/test.sh --fast), for the edit-test loop.

    fast_tests.py BUILD_DIR [--jobs N] [--list]

Runs every unit-tier test ctest knows (everything but the labels e2e, fuzz, setup, paper and bench) except those
tests/tiers/slow.txt names: the exactness comparisons that start the Python references and the extractor metrics at
their real input sizes, which the whole suite (./scripts/test.sh) runs.

It runs them through the test binaries directly rather than one ctest process per test: a binary linked with the
pinned CUDA LibTorch maps about 3 GB of libraries and spends about half a second relocating them at every start,
which for 460 tests was most of the tier's time. Each binary runs its selected tests in a few chunks
(--gtest_filter), chunks of all binaries spread over --jobs workers; a failing chunk prints its output.
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import time

EXCLUDED_LABELS = "e2e|fuzz|setup|paper|bench"
CHUNK_TESTS = 40  # tests per process: few enough starts, chunks small enough to balance two workers


def slow_patterns(source_dir):
    lines = (source_dir / "tests" / "tiers" / "slow.txt").read_text().splitlines()
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def property_of(test, name, default=None):
    for prop in test.get("properties", []):
        if prop["name"] == name:
            return prop["value"]
    return default


def plan(build_dir, slow):
    listing = subprocess.run(["ctest", "--show-only=json-v1", "-LE", EXCLUDED_LABELS], cwd=build_dir, check=True,
                             capture_output=True, text=True).stdout
    chunks, skipped_slow = [], 0
    by_binary = {}
    for test in json.loads(listing)["tests"]:
        name = test["name"].split("  #")[0]
        if slow.search(name):
            skipped_slow += 1
            continue
        command = test["command"]
        cwd = property_of(test, "WORKING_DIRECTORY", str(build_dir))
        gtest_filter = next((a for a in command[1:] if a.startswith("--gtest_filter=")), None)
        if gtest_filter:
            by_binary.setdefault((command[0], cwd), []).append(gtest_filter[len("--gtest_filter="):])
        else:
            will_fail = str(property_of(test, "WILL_FAIL", "false")).lower() in ("true", "1", "on")
            chunks.append((name, command, cwd, 1, will_fail))
    for (binary, cwd), filters in sorted(by_binary.items()):
        for start in range(0, len(filters), CHUNK_TESTS):
            part = filters[start:start + CHUNK_TESTS]
            label = f"{pathlib.Path(binary).name} [{start + 1}-{start + len(part)} of {len(filters)}]"
            chunks.append((label, [binary, "--gtest_brief=1", "--gtest_filter=" + ":".join(part)], cwd, len(part), False))
    return chunks, skipped_slow


def run(chunk):
    label, command, cwd, count, will_fail = chunk
    start = time.monotonic()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    # A ctest WILL_FAIL test (a lint shown to catch its fixture) passes when its command fails.
    code = (0 if result.returncode != 0 else 1) if will_fail else result.returncode
    return label, count, code, time.monotonic() - start, result.stdout + result.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=pathlib.Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--list", action="store_true", help="print the chunks and run nothing")
    args = parser.parse_args()
    build_dir = args.build_dir.resolve()
    source_dir = pathlib.Path(__file__).resolve().parent.parent
    chunks, skipped_slow = plan(build_dir, slow_patterns(source_dir))
    tests = sum(c[3] for c in chunks)
    print(f"fast tier: {tests} tests in {len(chunks)} processes on {args.jobs} workers; {skipped_slow} slow tests left to "
          f"the whole suite (tests/tiers/slow.txt); labels {EXCLUDED_LABELS} left out")
    if args.list:
        for label, command, cwd, count, will_fail in chunks:
            print(f"  {label}: {count} tests")
        return 0
    start = time.monotonic()
    failed = []
    # Longest first (by test count): the big binaries' chunks do not end up last on one worker.
    ordered = sorted(chunks, key=lambda c: -c[3])
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for label, count, code, seconds, output in pool.map(run, ordered):
            status = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"  {label}: {count} tests, {seconds:.1f} s, {status}", flush=True)
            if code != 0:
                failed.append(label)
                print(output)
    elapsed = time.monotonic() - start
    print(f"fast tier: {tests} tests, {len(failed)} failing process{'es' if len(failed) != 1 else ''}, {elapsed:.0f} s")
    for label in failed:
        print(f"  failed: {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
