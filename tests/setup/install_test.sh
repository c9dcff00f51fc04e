#!/usr/bin/env bash
# install_test.sh SOURCE_DIR BUILD_DIR: a researcher's path with only an installed ASG Lab, in a temporary prefix.
#   install; `asg new plugin --kind temporal` outside the tree; build it against find_package(asg); its
#   conformance test (ctest -> asg plugins test); its example experiment through the installed asg; the run
#   recorded with the plugin's name, version and library sha256; the prefix moved and all of it again.
#   Refusals: a taken name; a plugin configured as C++17 (at configure time).
# This is the code docs/write-a-plugin.md walks through.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export HOME="$work" XDG_CONFIG_HOME="$work/config"  # no trusted folders but the test's own
unset ASG_PLUGIN_PATH ASG_BENCHMARK_PATH

step() { echo; echo "== $*"; }
fail() { echo "FAIL: $*"; exit 1; }

step "install into $work/asg"
cmake --install "$build" --prefix "$work/asg" > install.log
[ -x "$work/asg/bin/asg" ] || fail "no bin/asg"
[ -f "$work/asg/lib/cmake/asg/asgConfig.cmake" ] || fail "no asgConfig.cmake"
ls "$work/asg/lib/asg/plugins/"asg_temporal_sti.so > /dev/null || fail "the built-in plugins were not installed"

# The installed asg finds its own plugins and benchmarks, not the build tree's.
"$work/asg/bin/asg" plugins > plugins.txt
grep -q "$work/asg/lib/asg/plugins/asg_temporal_sti.so" plugins.txt || { cat plugins.txt; fail "asg does not list the installed plugins"; }
! grep -q "$build/plugins" plugins.txt || fail "the installed asg reads the build tree's plugins"
"$work/asg/bin/asg" benchmarks | grep -q "synthetic-stickers-v2-16px" || fail "the installed benchmark definitions are not found"

step "asg new plugin"
"$work/asg/bin/asg" new plugin --kind temporal my_mixer --dir my_mixer
for f in CMakeLists.txt my_mixer.cpp README.md experiment.toml; do [ -f "my_mixer/$f" ] || fail "scaffold lacks $f"; done
if "$work/asg/bin/asg" new plugin --kind temporal sti --dir taken > taken.txt 2>&1; then fail "a taken name was accepted"; fi
grep -q "the name 'sti' is taken" taken.txt || { cat taken.txt; fail "the refusal does not say the name is taken"; }

step "build it against the installed package"
cmake -S my_mixer -B my_mixer/build -G Ninja -DCMAKE_PREFIX_PATH="$work/asg" > configure.log || { cat configure.log; fail "configure"; }
cmake --build my_mixer/build
[ -f my_mixer/build/asg_temporal_my_mixer.so ] || fail "no asg_temporal_my_mixer.so"

step "its conformance test"
(cd my_mixer/build && ctest --output-on-failure -V) > conformance.log 2>&1 || { cat conformance.log; fail "the conformance test"; }
grep -E "tests (passed|PASSED)|conformance tests of" conformance.log
grep -q "TemporalConformance" conformance.log || fail "the conformance suite did not run"

run_and_check() {  # $1: the asg binary
  "$1" --allow-plugin-path run my_mixer/experiment.toml --registry runs/registry.sqlite --runs-dir runs > run.log 2>&1 ||
    { cat run.log; fail "the example experiment did not run"; }
  grep -q FINISHED run.log || { cat run.log; fail "the run did not finish"; }
  local id sha
  id=$(sed -n 's/^run \([0-9]\{8\}-[0-9]\{6\}-[0-9a-f]\{6\}\) .*/\1/p' run.log | head -1)
  [ -n "$id" ] || { cat run.log; fail "no run id in the run's output"; }
  "$1" runs show "$id" --json --registry runs/registry.sqlite > show.json
  sha=$(sha256sum my_mixer/build/asg_temporal_my_mixer.so | cut -d' ' -f1)
  python3 -c '
import json, sys
run = json.load(open(sys.argv[1]))
uses = [p for p in run["plugins"] if p["name"] == "my_mixer"]
assert uses and uses[0]["version"] == "0.1.0" and uses[0]["library_sha256"] == sys.argv[2], run["plugins"]
' show.json "$sha" || fail "run $id is not recorded with my_mixer 0.1.0 and its library's sha256"
  echo "run $id recorded with my_mixer 0.1.0, library sha256 ${sha:0:16}"
}

step "its example experiment, through the installed asg"
run_and_check "$work/asg/bin/asg"

step "a metric, the same way"
"$work/asg/bin/asg" new plugin --kind metric my_coverage --dir my_coverage > /dev/null
cmake -S my_coverage -B my_coverage/build -G Ninja -DCMAKE_PREFIX_PATH="$work/asg" > configure_metric.log 2>&1 ||
  { cat configure_metric.log; fail "configure the metric"; }
cmake --build my_coverage/build
(cd my_coverage/build && ctest --output-on-failure -V) > metric_conformance.log 2>&1 ||
  { cat metric_conformance.log; fail "the metric's conformance test"; }
grep -q "MetricConformance" metric_conformance.log || fail "the metric conformance suite did not run"
"$work/asg/bin/asg" --allow-plugin-path run my_coverage/experiment.toml --registry runs/registry.sqlite --runs-dir runs > metric_run.log 2>&1 ||
  { cat metric_run.log; fail "the metric's example experiment"; }
grep -q "my_coverage" metric_run.log || { cat metric_run.log; fail "the run does not report my_coverage"; }

step "an unknown kind is refused naming the templates"
if "$work/asg/bin/asg" new plugin --kind widget w > widget.log 2>&1; then fail "a kind without a template was accepted"; fi
grep -q "no template for that kind (templates: metric, temporal" widget.log || { cat widget.log; fail "the refusal does not list the templates"; }

step "the prefix moved"
mv "$work/asg" "$work/moved"
run_and_check "$work/moved/bin/asg"
"$work/moved/bin/asg" plugins test my_mixer --plugin-path my_mixer/build/asg_temporal_my_mixer.so > moved_conformance.log 2>&1 ||
  { cat moved_conformance.log; fail "asg plugins test from the moved prefix"; }

step "a plugin configured as C++17 is refused at configure time"
if cmake -S my_mixer -B cxx17 -G Ninja -DCMAKE_PREFIX_PATH="$work/moved" -DCMAKE_CXX_STANDARD=17 > cxx17.log 2>&1; then
  fail "a C++17 plugin was configured"
fi
grep -q "CMAKE_CXX_STANDARD is 17, but a plugin must be" cxx17.log || { cat cxx17.log; fail "the refusal does not say why"; }
echo; echo "install test: all checks passed"
