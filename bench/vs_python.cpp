// Benchmark: the quickstart training step in the C++ framework against the same model and step written
// in Python PyTorch (bench/python/quickstart_step.py, run by the reference environment's torch: the same
// LibTorch the build links, so the same oneDNN kernels), on the same batch, the same threads and the same initial weights.
//
// The model is built exactly as `asg run` builds it (asg::build_experiment on the experiment file) and
// trained by asg::DiffusionTrainer::step. The Python replica runs in a child process, receives the C++
// weights and a probe batch, and must reproduce the C++ forward output, loss and gradient norm before
// anything is timed. Then the sides take turns, a round of steps each, alternating which goes first, so
// machine noise hits both alike; only one side computes at a time. The report is the ratio of median
// step times (first round dropped as warm-up).
//
// Python styles: "idiomatic" is how diffusers/ModelScope write it (per-frame cross-attention on
// repeated caption tokens, Conv3d temporal layers, per-tensor AdamW and EMA); "matched" copies the
// framework's structural choices, so its ratio is what is left for the language and the framework.
//
//   asg_bench_vs_python [--experiment FILE] [--rounds N] [--steps-per-round N] [--threads N]
//                       [--styles idiomatic,matched] [--python PATH] [--check-target X]
// --check-target X exits 1 when the C++ step is not at least X times faster than idiomatic Python.
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "asg/build.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/trainer.h"
#include "asg/allocator.h"

namespace fs = std::filesystem;

namespace {

// A child process we talk to by lines over its stdin/stdout; its stderr stays ours.
class LineChild {
 public:
  explicit LineChild(const std::vector<std::string>& argv) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      std::fprintf(stderr, "asg_bench_vs_python: cannot run %s: %s\n", args[0], std::strerror(errno));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    to_ = fdopen(to_child[1], "w");
    from_ = fdopen(from_child[0], "r");
  }
  ~LineChild() {
    if (to_) {
      std::fputs("quit\n", to_);
      std::fclose(to_);
    }
    if (from_) std::fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  LineChild(const LineChild&) = delete;
  LineChild& operator=(const LineChild&) = delete;

  std::string ask(const std::string& command) {
    std::fprintf(to_, "%s\n", command.c_str());
    std::fflush(to_);
    return read_line();
  }
  std::string read_line() {
    std::string line;
    for (int c; (c = std::fgetc(from_)) != EOF && c != '\n';) line += static_cast<char>(c);
    if (line.empty()) throw std::runtime_error("the Python replica exited early (its error is above)");
    return line;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

// The replica covers the quickstart's architecture; refuse anything it would silently get wrong.
void check_replicable(const asg::Experiment& exp) {
  auto refuse = [&](const std::string& what) {
    throw asg::config_error(fmt::format("{}: the Python replica (bench/python/quickstart_step.py) covers the quickstart "
                                        "architecture only: {}",
                                        exp.file.string(), what));
  };
  const auto& text = exp.slot("text_encoder");
  const auto& backbone = exp.slot("backbone");
  const auto& temporal = exp.slot("temporal");
  if (text.plugin != "word_embedding") refuse("[text_encoder] plugin must be word_embedding");
  if (backbone.plugin != "unet3d") refuse("[backbone] plugin must be unet3d");
  if (temporal.plugin != "temporal_conv") refuse("[temporal] plugin must be temporal_conv");
  const auto& b = backbone.params;
  if (b.integer("layers_per_level") != 1 || b.real("dropout") != 0 || !b.boolean("frame_embedding") ||
      !b.boolean("coord_channels") || b.integers("channels").front() % 2 != 0)
    refuse("[backbone] needs layers_per_level = 1, dropout = 0, frame_embedding, coord_channels and an even channels[0]");
  if (temporal.params.real("dropout") != 0 || temporal.params.integer("width_multiplier") != 1)
    refuse("[temporal] needs dropout = 0 and width_multiplier = 1");
  if (exp.diffusion.str("schedule") != "cosine" || exp.diffusion.str("prediction") != "v")
    refuse("[diffusion] needs schedule = \"cosine\" and prediction = \"v\"");
  if (exp.train.real("weight_decay") != 0 || exp.train.real("grad_clip") <= 0 || exp.train.real("ema_decay") <= 0 ||
      exp.train.real("high_noise_fraction") != 0)
    refuse("[train] needs weight_decay = 0, grad_clip > 0, ema_decay > 0 and high_noise_fraction = 0");
}

}  // namespace

int main(int argc, char** argv) try {
  std::signal(SIGPIPE, SIG_IGN);  // a replica that died must surface as an error here, not kill us
  fs::path experiment = fs::path(ASG_SOURCE_DIR) / "experiments/quickstart.toml";
  fs::path replica = fs::path(ASG_SOURCE_DIR) / "bench/python/quickstart_step.py";
  std::string python = ASG_PYTHON;
  int rounds = 6, per_round = 6, threads = 2;
  double check_target = 0;
  std::vector<std::string> styles = {"idiomatic", "matched"};
  const std::string usage =
      "valid: --experiment FILE, --rounds N, --steps-per-round N, --threads N, --styles idiomatic,matched, --python PATH, "
      "--replica PATH, --check-target X";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      fmt::print(stderr, "asg_bench_vs_python: '{}' needs a value or is unknown ({})\n", a, usage);
      return 2;
    }
    std::string v = argv[++i];
    auto number = [&](auto parse) {
      try {
        return parse(v);
      } catch (const std::exception&) {
        throw std::runtime_error(fmt::format("{} {}: not a number", a, v));
      }
    };
    auto integer = [&] { return number([](const std::string& x) { return std::stoi(x); }); };
    if (a == "--experiment") experiment = v;
    else if (a == "--rounds") rounds = integer();
    else if (a == "--steps-per-round") per_round = integer();
    else if (a == "--threads") threads = integer();
    else if (a == "--styles") styles = split(v, ',');
    else if (a == "--python") python = v;
    else if (a == "--replica") replica = v;
    else if (a == "--check-target") check_target = number([](const std::string& x) { return std::stod(x); });
    else {
      fmt::print(stderr, "asg_bench_vs_python: unknown argument '{}' ({})\n", a, usage);
      return 2;
    }
  }
  if (rounds < 2 || per_round < 1 || threads < 1) {
    fmt::print(stderr, "asg_bench_vs_python: needs --rounds >= 2 (the first is warm-up), --steps-per-round >= 1, --threads >= 1\n");
    return 2;
  }
  for (const auto& s : styles)
    if (s != "idiomatic" && s != "matched") {
      fmt::print(stderr, "asg_bench_vs_python: --styles '{}' (valid: idiomatic, matched)\n", s);
      return 2;
    }
  torch::set_num_threads(threads);
  const std::string malloc_policy = asg::keep_freed_memory_for_reuse();  // as `asg run` does

  // The model, data and trainer exactly as `asg run` makes them.
  asg::PluginCatalog catalog;
  asg::Experiment exp = asg::load_experiment(experiment, {}, catalog);
  check_replicable(exp);
  const uint64_t seed = static_cast<uint64_t>(exp.runtime.integer("seed"));
  asg::NoiseSchedule schedule = asg::noise_schedule(exp);
  asg::BuiltExperiment built = asg::build_experiment(exp, schedule, seed);
  torch::manual_seed(asg::derive_seed(seed, "train.global"));
  std::vector<asg::Sticker> stickers;
  std::vector<std::string> captions;
  for (int64_t i = 0; i < exp.train.integer("batch_size"); ++i) {
    stickers.push_back(built.dataset->get(asg::Split::Train, i));
    captions.push_back(stickers.back().caption);
  }
  const torch::Tensor x0 = asg::to_model_space(asg::stack_frames(stickers));

  // The exchange file: initial weights, the batch, and a probe whose answer the replica must match.
  // The weights are perturbed first: at initialisation the zero-initialised output layers make the
  // output zero and every gradient above them vanish, so the probe would prove little. (The step costs
  // the same either way; both sides train from these weights.)
  {
    torch::NoGradGuard no_grad;
    auto noise_gen = at::detail::createCPUGenerator(98);
    for (auto& p : built.backbone->parameters()) p.add_(torch::randn(p.sizes(), noise_gen, torch::kFloat) * 0.05);
    for (auto& p : built.text_encoder->parameters()) p.add_(torch::randn(p.sizes(), noise_gen, torch::kFloat) * 0.05);
  }
  c10::Dict<std::string, torch::Tensor> weights;
  for (const auto& item : built.backbone->named_parameters()) weights.insert("backbone." + item.key(), item.value().detach().clone());
  for (const auto& item : built.text_encoder->named_parameters())
    weights.insert("text_encoder." + item.key(), item.value().detach().clone());
  const int64_t batch = x0.size(0);
  auto probe_gen = at::detail::createCPUGenerator(99);
  auto probe_t = torch::linspace(0, schedule.num_timesteps() - 1, batch).to(torch::kLong);
  auto probe_eps = torch::randn(x0.sizes(), probe_gen, torch::kFloat);
  std::vector<std::string> probe_captions(captions);
  probe_captions[0].clear();  // the unconditional path too
  torch::Tensor probe_out;
  double probe_loss = 0, probe_grad_norm = 0;
  {
    auto x_t = schedule.add_noise(x0, probe_eps, probe_t);
    auto out = built.backbone->forward(x_t, probe_t.to(torch::kFloat), built.text_encoder->encode(probe_captions));
    auto loss = torch::mse_loss(out, schedule.target(x0, probe_eps, probe_t));
    loss.backward();
    std::vector<torch::Tensor> norms;
    for (auto& p : built.backbone->parameters()) norms.push_back(p.grad().norm());
    for (auto& p : built.text_encoder->parameters()) norms.push_back(p.grad().norm());
    probe_grad_norm = torch::stack(norms).norm().item<double>();
    probe_loss = loss.item<double>();
    probe_out = out.detach();
    for (auto& p : built.backbone->parameters()) p.mutable_grad() = torch::Tensor();
    for (auto& p : built.text_encoder->parameters()) p.mutable_grad() = torch::Tensor();
  }
  const auto& b = exp.slot("backbone").params;
  const auto& t = exp.slot("text_encoder").params;
  const auto& tc = exp.slot("temporal").params;
  nlohmann::json cfg = {
      {"channels", b.integers("channels")}, {"groups", b.integer("groups")}, {"attention_heads", b.integer("attention_heads")},
      {"attention_from_level", b.integer("attention_from_level")}, {"emb_dim", b.integer("emb_dim")},
      {"frames", built.info.frames}, {"text_dim", t.integer("dim")}, {"buckets", t.integer("buckets")},
      {"max_tokens", t.integer("max_tokens")}, {"ngrams", t.integer("ngrams")},
      {"temporal", {{"layers", tc.integer("layers")}, {"groups", tc.integer("groups")}}},
      {"timesteps", schedule.num_timesteps()}, {"shift", schedule.shift()}, {"lr", exp.train.real("lr")},
      {"warmup_steps", exp.train.integer("warmup_steps")}, {"ema_decay", exp.train.real("ema_decay")},
      {"caption_dropout", exp.train.real("caption_dropout")}, {"grad_clip", exp.train.real("grad_clip")},
      {"seed", static_cast<int64_t>(asg::derive_seed(seed, "train.noise"))}};
  c10::impl::GenericDict blob(c10::StringType::get(), c10::AnyType::get());
  blob.insert("params", weights);
  blob.insert("x0", x0);
  blob.insert("captions", c10::List<std::string>(captions));
  blob.insert("probe_x0", x0);
  blob.insert("probe_t", probe_t);
  blob.insert("probe_eps", probe_eps);
  blob.insert("probe_captions", c10::List<std::string>(probe_captions));
  blob.insert("probe_out", probe_out);
  blob.insert("config", cfg.dump());
  const fs::path exchange = fs::temp_directory_path() / fmt::format("asg_bench_vs_python_{}.pt", getpid());
  {
    auto bytes = torch::pickle_save(blob);
    std::ofstream(exchange, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  asg::DiffusionTrainer trainer(built.text_encoder, built.backbone, schedule, asg::TrainOptions::from(exp.train),
                                torch::Device(torch::kCPU), asg::derive_seed(seed, "train.noise"));
  fmt::print("quickstart training step: {} | {} parameters | batch {} x {} frames x 4 x {}x{} | {} threads\n{}\n",
             exp.file.string(), trainer.parameter_count(), batch, built.info.frames, built.info.height, built.info.width,
             threads, malloc_policy);

  struct Side {
    std::string name;
    std::unique_ptr<LineChild> child;  // null: the C++ framework, in this process
    std::vector<double> times;
  };
  std::vector<Side> sides;
  sides.push_back(Side{"C++ asg framework", nullptr, {}});
  bool faithful = true;
  for (const auto& style : styles) {
    auto child = std::make_unique<LineChild>(std::vector<std::string>{
        python, replica.string(), "--exchange", exchange.string(), "--style", style, "--threads", std::to_string(threads)});
    std::string ready = child->read_line();
    std::string check = child->ask("check");
    // "check out_max_abs_diff=D loss=L grad_norm=G"
    double diff = 0, loss = 0, grad_norm = 0;
    if (std::sscanf(check.c_str(), "check out_max_abs_diff=%lf loss=%lf grad_norm=%lf", &diff, &loss, &grad_norm) != 3)
      throw std::runtime_error("unexpected answer from the replica: " + check);
    const double loss_rel = std::abs(loss - probe_loss) / probe_loss, grad_rel = std::abs(grad_norm - probe_grad_norm) / probe_grad_norm;
    const bool ok = diff < 1e-4 && loss_rel < 1e-4 && grad_rel < 1e-3;
    faithful = faithful && ok;
    fmt::print("  replica '{}' ({}): output max |diff| {:.2e}, loss rel. diff {:.2e}, grad-norm rel. diff {:.2e}: {}\n", style,
               ready, diff, loss_rel, grad_rel, ok ? "same function" : "DIFFERENT FUNCTION");
    sides.push_back(Side{"Python " + style, std::move(child), {}});
  }
  fs::remove(exchange);
  if (!faithful) {
    fmt::print(stderr, "asg_bench_vs_python: the replica does not compute the C++ model's function; timings would be meaningless\n");
    return 1;
  }

  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < sides.size(); ++k) {
      Side& side = sides[(k + static_cast<size_t>(r)) % sides.size()];  // rotate who goes first
      std::vector<double> times;
      if (!side.child) {
        for (int s = 0; s < per_round; ++s) {
          auto start = std::chrono::steady_clock::now();
          trainer.step(x0, captions);
          times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        }
      } else {
        std::istringstream answer(side.child->ask(fmt::format("steps {}", per_round)));
        std::string word;
        answer >> word;
        for (double ms; answer >> ms;) times.push_back(ms);
        if (word != "times" || static_cast<int>(times.size()) != per_round)
          throw std::runtime_error("unexpected answer from the Python replica");
      }
      if (r > 0) side.times.insert(side.times.end(), times.begin(), times.end());  // round 0 is warm-up
    }
  }
  const double cpp = median(sides[0].times);
  fmt::print("{} rounds x {} steps per side (first round dropped), median ms per step:\n", rounds, per_round);
  double idiomatic_ratio = 0;
  for (const auto& side : sides) {
    const double m = median(side.times);
    fmt::print("  {:<24} {:8.2f} ms   {}\n", side.name, m,
               side.child ? fmt::format("C++ is {:.3f}x faster", m / cpp) : std::string("(baseline)"));
    if (side.name == "Python idiomatic") idiomatic_ratio = m / cpp;
  }
  if (check_target > 0) {
    if (idiomatic_ratio == 0) {
      fmt::print(stderr, "--check-target needs the idiomatic style\n");
      return 2;
    }
    fmt::print("target: C++ >= {:.2f}x faster than idiomatic Python: {}\n", check_target,
               idiomatic_ratio >= check_target ? "MET" : "NOT MET");
    return idiomatic_ratio >= check_target ? 0 : 1;
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "asg_bench_vs_python: {}\n", e.what());
  return 1;
}
