// The fixture of the end-to-end tests: a temp folder holding a reduced quickstart (tiny.toml), the registry
// `asg` writes there, and helpers that start, SIGKILL and extend runs of the real binary.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "asg/error.h"
#include "asg/registry.h"
#include "asg_cli.h"
#include "test_paths.h"

namespace asg::testing {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("e2e");
    // A reduced quickstart: the real experiment file with a tiny model and budget.
    std::ofstream(dir_ / "tiny.toml") << asg::testing::reduced_quickstart("tiny", tiny_budget());
  }
  // The sampler, training and evaluation budget of tiny.toml; a suite that needs another one overrides it.
  virtual std::string tiny_budget() const {
    return "[sampler]\nsteps = 4\n[train]\nsteps = 30\nbatch_size = 4\nlog_every = 5\n"
           "[eval]\nnum_samples = 6\nbatch_size = 3\nsave_gifs = 4\ngif_scale = 2\n";
  }
  void TearDown() override {
    ::unsetenv("ASG_BENCHMARK_PATH");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path registry() const { return dir_ / "runs" / "registry.sqlite"; }

  // Starts `asg run tiny.toml` (by default with a budget it will not finish; or any other asg command)
  // and waits until the newest run is RUNNING and has logged `history` training-loss points. Returns its pid, or -1
  // (after killing it) if it never got there.
  pid_t start_endless_run(size_t history,
                          std::vector<std::string> budget = {"--set", "train.steps=100000", "--set", "train.log_every=1"},
                          std::vector<std::string> command = {"run", "tiny.toml"}) {
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(99);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::vector<std::string> args = {"asg"};
      args.insert(args.end(), command.begin(), command.end());
      args.insert(args.end(), budget.begin(), budget.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(asg::testing::asg_binary().c_str(), argv.data());
      _exit(98);
    }
    for (int i = 0; i < 600; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!std::filesystem::exists(registry())) continue;
      try {
        asg::Registry reg(registry());
        auto runs = reg.list_runs();
        if (!runs.empty() && runs[0].status == asg::RunStatus::Running &&
            reg.metric_history(runs[0].id, "train/loss").size() >= history)
          return pid;
      } catch (const asg::Error&) {
      }
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }

  // SIGKILLs the run (no handler can mark it) and returns the id of the newest run in the registry, which
  // must therefore still read RUNNING; "" if it does not. With `own_death`, first waits up to a minute for
  // the process to die by itself (a failpoint that SIGKILLs it): killing it from here could beat the
  // failpoint to it.
  std::string kill_hard(pid_t pid, bool own_death = false) {
    bool exited = false;
    for (int i = 0; own_death && i < 600 && !exited; ++i) {
      exited = waitpid(pid, nullptr, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    asg::Registry reg(registry());
    auto runs = reg.list_runs();
    return !runs.empty() && runs[0].status == asg::RunStatus::Running ? runs[0].id : "";
  }

  // latent.toml: tiny.toml in the latent space of a frame_vae (16x16 frames -> 8x8x4 latents) that asg run
  // trains for 40 steps first.
  void write_latent_experiment(const std::string& extra = "") {
    std::ofstream(dir_ / "latent.toml") << "base = [\"tiny.toml\"]\n[autoencoder]\nplugin = \"frame_vae\"\nchannels = [8, 16]\n"
                                           "train_steps = 40\nlr = 0.003\n"
                                        << extra;
  }

  // Benchmark definitions in defs/, which the asg processes of the test find through ASG_BENCHMARK_PATH (unset
  // in TearDown): e2e-def is tiny.toml's own protocol; e2e-def-more samples 8 clips in 2 steps and ranks by the
  // Fréchet distance; e2e-def-8px pins data of another size.
  void write_definitions() {
    std::filesystem::create_directories(dir_ / "defs");
    std::ofstream(dir_ / "defs/a.toml") << "[benchmark]\nname = \"e2e-def\"\nversion = \"1\"\n[eval]\nnum_samples = 6\n"
                                           "[sampler]\nplugin = \"ddim\"\nsteps = 4\n[[metrics]]\nplugin = \"caption_accuracy\"\n"
                                           "[[metrics]]\nplugin = \"frechet_pixel\"\n";
    std::ofstream(dir_ / "defs/b.toml") << "[benchmark]\nname = \"e2e-def-more\"\nversion = \"1\"\nrank_by = \"frechet_pixel\"\n"
                                           "[eval]\nnum_samples = 8\n[sampler]\nplugin = \"ddim\"\nsteps = 2\n"
                                           "[[metrics]]\nplugin = \"frechet_pixel\"\n";
    std::ofstream(dir_ / "defs/c.toml") << "[benchmark]\nname = \"e2e-def-8px\"\nversion = \"1\"\n[dataset]\n"
                                           "plugin = \"synthetic_stickers\"\nsize = 8\n";
    ::setenv("ASG_BENCHMARK_PATH", (dir_ / "defs").c_str(), 1);  // the asg processes inherit it
  }

  std::filesystem::path dir_;
};

}  // namespace asg::testing
