#include "asg/benchmark_definition.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

#include "asg/error.h"
#include "asg/toml_where.h"
#include "asg/install_layout.h"
#include "asg/path_list.h"
#include "asg/names.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

std::string where(const fs::path& file, const toml::node& node) { return toml_where(file, node); }

const std::vector<std::string>& benchmark_keys() {
  static const std::vector<std::string> keys = {"name", "version", "description", "rank_by", "seeds", "tasks"};
  return keys;
}

// Whether `dotted` ("eval.num_samples", "metrics.fvd.frames", "benchmark.seeds") names a key the definition sets.
bool sets_key(const toml::table& root, const std::string& dotted) {
  const size_t dot = dotted.find('.');
  if (dot == std::string::npos) return false;
  const std::string section = dotted.substr(0, dot);
  const std::string rest = dotted.substr(dot + 1);
  if (section == "metrics") {
    const size_t dot2 = rest.find('.');
    const std::string plugin = rest.substr(0, dot2);
    const auto* metrics = root.get_as<toml::array>("metrics");
    if (!metrics) return false;
    for (const auto& m : *metrics) {
      const auto* t = m.as_table();
      if (!t || t->get_as<std::string>("plugin") == nullptr || t->get_as<std::string>("plugin")->get() != plugin) continue;
      return dot2 == std::string::npos || t->contains(rest.substr(dot2 + 1));
    }
    return false;
  }
  const auto* table = root.get_as<toml::table>(section);
  return table && table->contains(rest);
}

toml::table parse_definition_file(const fs::path& file) {
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw config_error(fmt::format("{}:{}:{}: benchmark definition is not valid TOML: {}", file.string(),
                                   e.source().begin.line, e.source().begin.column, e.description()));
  }
}

// Every top-level key a definition section, [[metrics]] an array of tables, the others tables.
void check_sections(const fs::path& file, const toml::table& root) {
  const auto& sections = benchmark_definition_sections();
  for (auto&& [key, value] : root) {
    const std::string k(key.str());
    if (std::find(sections.begin(), sections.end(), k) == sections.end())
      throw config_error(fmt::format("{}: unknown section '{}' in a benchmark definition (valid: {}).{}", where(file, value), k,
                                     join(sections, ", "), did_you_mean(k, sections)));
    const bool is_metrics = k == "metrics";
    if (is_metrics ? !value.is_array() : !value.is_table())
      throw config_error(fmt::format("{}: '{}' must be {} in a benchmark definition", where(file, value), k,
                                     is_metrics ? "an array of tables ([[metrics]])" : "a table ([" + k + "])"));
  }
}

// [benchmark]: name, version, description, rank_by, seeds, tasks.
void read_header(const fs::path& file, const toml::table& header, BenchmarkDefinition& def) {
  for (auto&& [key, value] : header) {
    const std::string k(key.str());
    if (std::find(benchmark_keys().begin(), benchmark_keys().end(), k) == benchmark_keys().end())
      throw config_error(fmt::format("{}: [benchmark] {}: unknown key in a benchmark definition (valid: {}).{}", where(file, value),
                                     k, join(benchmark_keys(), ", "), did_you_mean(k, benchmark_keys())));
    if (k == "seeds") {
      const auto* seeds = value.as_array();
      if (!seeds) throw config_error(fmt::format("{}: [benchmark] seeds must be a list of integers", where(file, value)));
      for (const auto& s : *seeds) {
        const auto* i = s.as_integer();
        if (!i || i->get() < 0) throw config_error(fmt::format("{}: [benchmark] seeds: every seed must be an integer >= 0", where(file, s)));
        def.seeds.push_back(i->get());
      }
      continue;
    }
    if (k == "tasks") {
      static const std::vector<std::string> valid = {"generation", "image", "interpolation", "prediction"};
      const auto* tasks = value.as_array();
      if (!tasks) throw config_error(fmt::format("{}: [benchmark] tasks must be a list of [eval] tasks ({})", where(file, value), join(valid, ", ")));
      for (const auto& t : *tasks) {
        const auto* name = t.as_string();
        if (!name || std::find(valid.begin(), valid.end(), name->get()) == valid.end())
          throw config_error(fmt::format("{}: [benchmark] tasks: each entry is one of {}", where(file, t), join(valid, ", ")));
        def.tasks.push_back(name->get());
      }
      continue;
    }
    const auto* text = value.as_string();
    if (!text) throw config_error(fmt::format("{}: [benchmark] {} must be a string", where(file, value), k));
    if (k == "name") def.name = text->get();
    else if (k == "version") def.version = text->get();
    else if (k == "description") def.description = text->get();
    else if (k == "rank_by") def.rank_by = text->get();
  }
  if (def.name.empty() || def.version.empty())
    throw config_error(fmt::format("{}: [benchmark] needs a non-empty name and version (version as a string, e.g. \"1\")",
                                   where(file, header)));
}

// A task pinned once; slot tables and metrics naming their plugin.
void check_pinned_slots(const fs::path& file, const toml::table& root, const BenchmarkDefinition& def) {
  if (!def.tasks.empty())
    if (const auto* eval = root.get_as<toml::table>("eval"); eval && eval->contains("task"))
      throw config_error(fmt::format("{}: [eval] task and [benchmark] tasks both say which task is measured (valid: one of them)",
                                     where(file, *eval->get("task"))));
  for (const char* slot : {"dataset", "sampler"}) {
    const auto* t = root.get_as<toml::table>(slot);
    if (t && !t->get_as<std::string>("plugin"))
      throw config_error(fmt::format("{}: [{}] in a benchmark definition needs plugin = \"<name>\"", where(file, *t), slot));
  }
  if (const auto* metrics = root.get_as<toml::array>("metrics")) {
    for (const auto& m : *metrics) {
      const auto* t = m.as_table();
      if (!t || !t->get_as<std::string>("plugin"))
        throw config_error(fmt::format("{}: each [[metrics]] of a benchmark definition is a table with plugin = \"<name>\"",
                                       where(file, m)));
    }
  }
}

// The pinned keys as "section.key" = TOML text, for `asg benchmarks show` and the pinning's messages.
void read_fields(const toml::table& root, BenchmarkDefinition& def) {
  auto add_fields = [&](const toml::table& table, const std::string& prefix) {
    for (auto&& [key, value] : table) {
      std::ostringstream text;
      if (const auto* str = value.as_string()) text << '"' << str->get() << '"';
      else value.visit([&](auto&& n) { text << toml::toml_formatter(n, toml::format_flags::none); });
      def.fields.push_back({prefix + std::string(key.str()), text.str()});
    }
  };
  for (const char* section : {"dataset", "eval", "sampler"})
    if (const auto* t = root.get_as<toml::table>(section)) add_fields(*t, std::string(section) + ".");
  if (const auto* metrics = root.get_as<toml::array>("metrics"))
    for (const auto& m : *metrics) add_fields(*m.as_table(), "metrics." + m.as_table()->get_as<std::string>("plugin")->get() + ".");
}

// [assumptions]: "section.key" = why, each naming a key the definition sets.
void read_assumptions(const fs::path& file, const toml::table& root, const toml::table& assumptions, BenchmarkDefinition& def) {
  for (auto&& [key, value] : assumptions) {
    const std::string k(key.str());
    const auto* text = value.as_string();
    if (!text) throw config_error(fmt::format("{}: [assumptions] \"{}\" must be a string saying why", where(file, value), k));
    if (!sets_key(root, k))
      throw config_error(fmt::format("{}: [assumptions] \"{}\": the definition sets no such key (write \"<section>.<key>\", "
                                     "and \"metrics.<plugin>.<key>\" for a metric)",
                                     where(file, value), k));
    def.assumptions[k] = text->get();
  }
}

// [reproduction]: cuda_abs / cuda_rel, at the top for every metric or under a result key for one.
void read_tolerances(const fs::path& file, const toml::table& reproduction, BenchmarkDefinition& def) {
  auto read_tolerance = [&](const toml::table& table, const std::string& section) {
    BenchmarkDefinition::Tolerance t;
    bool any = false;
    for (auto&& [key, value] : table) {
      const std::string k(key.str());
      if (value.is_table() && section == "reproduction") continue;  // a metric's own, read below
      if (k != "cuda_abs" && k != "cuda_rel")
        throw config_error(fmt::format("{}: [{}] {}: unknown key (valid: cuda_abs, cuda_rel, or a table per result key)",
                                       where(file, value), section, k));
      const auto v = value.value<double>();
      if (!v || !(*v >= 0))
        throw config_error(fmt::format("{}: [{}] {} must be a number >= 0", where(file, value), section, k));
      (k == "cuda_abs" ? t.abs : t.rel) = *v;
      any = true;
    }
    return std::make_pair(t, any);
  };
  auto [all, declared] = read_tolerance(reproduction, "reproduction");
  if (declared) def.cuda_tolerance = all;
  for (auto&& [key, value] : reproduction)
    if (const auto* metric = value.as_table())
      def.metric_tolerances[std::string(key.str())] = read_tolerance(*metric, "reproduction." + std::string(key.str())).first;
}

BenchmarkDefinition parse_definition(const fs::path& file) {
  const toml::table root = parse_definition_file(file);
  check_sections(file, root);
  const auto* header = root.get_as<toml::table>("benchmark");
  if (!header) throw config_error(fmt::format("{}: a benchmark definition needs a [benchmark] table with name and version", file.string()));
  BenchmarkDefinition def;
  def.file = file;
  read_header(file, *header, def);
  check_pinned_slots(file, root, def);
  read_fields(root, def);
  if (const auto* assumptions = root.get_as<toml::table>("assumptions")) read_assumptions(file, root, *assumptions, def);
  if (const auto* reproduction = root.get_as<toml::table>("reproduction")) read_tolerances(file, *reproduction, def);
  return def;
}

}  // namespace

const std::vector<std::string>& benchmark_definition_sections() {
  static const std::vector<std::string> sections = {"benchmark", "dataset", "eval", "sampler", "metrics", "assumptions",
                                                      "reproduction"};
  return sections;
}

std::vector<fs::path> benchmark_search_path() {
  std::vector<fs::path> out = path_list_from_env("ASG_BENCHMARK_PATH");
  std::error_code ec;
  if (const fs::path bundled = bundled_benchmark_dir(); !bundled.empty() && fs::is_directory(bundled, ec)) out.push_back(bundled);
  return out;
}

std::vector<BenchmarkDefinition> discover_benchmarks(const std::vector<fs::path>& search_path) {
  std::vector<BenchmarkDefinition> out;
  for (const auto& dir : search_path) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw config_error(fmt::format("benchmark path entry '{}' is not a directory (ASG_BENCHMARK_PATH holds directories of "
                                     "benchmark definition files, *.toml)",
                                     dir.string()));
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().extension() == ".toml") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      BenchmarkDefinition def = parse_definition(file);
      auto same = std::find_if(out.begin(), out.end(), [&](const BenchmarkDefinition& d) { return d.name == def.name; });
      if (same != out.end()) {
        // An earlier directory of the search path wins, as PATH does; two files in one directory are a mistake.
        if (same->file.parent_path() == def.file.parent_path())
          throw config_error(fmt::format("{} and {} both define benchmark '{}'; rename one", same->file.string(),
                                         def.file.string(), def.name));
        continue;
      }
      out.push_back(std::move(def));
    }
  }
  return out;
}

std::optional<BenchmarkDefinition> find_benchmark(const std::string& name, const std::vector<fs::path>& search_path) {
  for (auto& def : discover_benchmarks(search_path))
    if (def.name == name) return def;
  return std::nullopt;
}

}  // namespace asg
