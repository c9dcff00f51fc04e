// The leaderboard as one HTML page: built from the JSON leaderboard (so the two never disagree on rows, ranks or
// numbers) plus what only a page shows: samples, loss curves and provenance.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/version.h"
#include "asg/html.h"

namespace asg {

std::string render_leaderboard_html(const Registry& registry, const LeaderboardOptions& options);

namespace {

std::string number_cell(const nlohmann::json& stat) {
  if (!stat["mean"].is_number())
    return "<td class=\"num\" data-value=\"\"></td>";
  const double mean = stat["mean"].get<double>();
  auto f = [](double v) { return std::fabs(v) >= 1000 ? fmt::format("{:.1f}", v) : fmt::format("{:.4f}", v); };
  const std::string text = stat["std"].is_number() ? fmt::format("{} ± {}", f(mean), f(stat["std"].get<double>())) : f(mean);
  return fmt::format("<td class=\"num\" data-value=\"{:.17g}\">{}</td>", mean, html::escape(text));
}

std::string provenance(const Registry& registry, const nlohmann::json& runs, const std::string& protocol, const std::string& run_url_prefix) {
  std::string items;
  for (const auto& run : runs) {
    const std::string id = run["id"].get<std::string>();
    std::vector<std::string> plugins;
    for (const auto& p : registry.plugins(id))
      plugins.push_back(fmt::format("{} {} {} ({})", html::escape(p.slot), html::escape(p.name), html::escape(p.version),
                                    html::escape(p.library_sha256.substr(0, 12))));
    std::string commit = run["commit"].get<std::string>();
    if (run["dirty"].get<bool>()) commit += "+dirty";
    const std::string shown_id = run_url_prefix.empty() ? fmt::format("<code>{}</code>", html::escape(id))
                                                        : fmt::format("<a href=\"{}/{}\"><code>{}</code></a>", html::escape(run_url_prefix),
                                                                      html::url_encode(id), html::escape(id));
    items += fmt::format("<li>{}{} seed {} · commit <code>{}</code> · config <code>{}</code> · experiment {} · protocol "
                         "<code>{}</code><br>plugins: {}</li>",
                         shown_id, run.contains("result_set") ? fmt::format(" (eval {})", run["result_set"].get<int64_t>()) : "",
                         run["seed"].get<int64_t>(), html::escape(commit.empty() ? "unknown" : commit),
                         html::escape(run["config_hash"].get<std::string>().substr(0, 12)), html::escape(run["experiment"].get<std::string>()),
                         html::escape(protocol.substr(0, 12)), plugins.empty() ? "(not recorded)" : fmt::format("{}", fmt::join(plugins, ", ")));
  }
  return fmt::format("<details><summary>{} run{}</summary><ul>{}</ul></details>", runs.size(), runs.size() == 1 ? "" : "s", items);
}

}  // namespace

std::string render_leaderboard_html(const Registry& registry, const LeaderboardOptions& options) {
  const auto board = nlohmann::json::parse(render_leaderboard(registry, options, LeaderboardFormat::Json));
  const std::string rows_kind = board["rows"].get<std::string>();
  const std::string label_header = rows_kind == "group_by" ? options.group_by : "name";
  std::string body = fmt::format("<h1>Leaderboard: {}</h1>\n<p class=\"note\">{}{}; click a column header to sort. Written by asg {} "
                                 "from {}.</p>\n",
                                 html::escape(options.benchmark),
                                 rows_kind == "runs"    ? "one row per run"
                                 : rows_kind == "seeds" ? "one row per config: its runs differ only by seed (mean ± sample std, n)"
                                                        : "one row per value of " + html::escape(options.group_by) + " (mean ± sample std, n)",
                                 options.where.empty() ? "" : "; only runs with " + html::escape(fmt::format("{}", fmt::join(options.where, ", "))),
                                 ASG_VERSION, html::escape(registry.path().string()));
  const auto& sections = board["sections"];
  for (size_t s = 0; s < sections.size(); ++s) {
    const auto& section = sections[s];
    const std::string protocol = section["protocol_hash"].get<std::string>();
    std::string title;
    if (s == 0)
      title = fmt::format("Protocol {} (ranked by {}, {} is better)", protocol.empty() ? "not recorded" : protocol.substr(0, 12),
                          section["rank_by"].get<std::string>(), section["higher_is_better"].get<bool>() ? "higher" : "lower");
    else
      title = fmt::format("Other protocol {}: not ranked with the above (differs in: {})", protocol.empty() ? "not recorded" : protocol.substr(0, 12),
                          section.value("differs_from_first", std::string("fields not recorded")));
    body += fmt::format("<section data-protocol=\"{}\">\n<h2>{}</h2>\n<table class=\"sortable board\">\n<thead><tr><th data-type=\"number\">rank</th>"
                        "<th data-type=\"text\">{}</th><th data-type=\"number\">n</th>",
                        html::escape(protocol), html::escape(title), html::escape(label_header));
    for (const auto& m : section["metrics"])
      body += fmt::format("<th data-type=\"number\" title=\"{} is better\">{} {}</th>", m["higher_is_better"].get<bool>() ? "higher" : "lower",
                          html::escape(m["key"].get<std::string>()), m["higher_is_better"].get<bool>() ? "↑" : "↓");
    body += "<th data-type=\"text\">samples</th><th data-type=\"text\">training loss</th><th data-type=\"text\">provenance</th></tr></thead>\n<tbody>\n";
    size_t row_index = 0;
    for (const auto& row : section["rows"]) {
      const std::string newest = row["runs"][0]["id"].get<std::string>();
      const std::string label = row["label"].get<std::string>();
      body += fmt::format("<tr data-run=\"{}\"><td class=\"num\" data-value=\"{}\">{}</td><td data-value=\"{}\">{}</td><td class=\"num\" "
                          "data-value=\"{}\">{}</td>",
                          html::escape(newest), row["rank"].get<int64_t>(), row["rank"].get<int64_t>(), html::escape(label), html::escape(label),
                          row["n"].get<int64_t>(), row["n"].get<int64_t>());
      for (const auto& m : section["metrics"]) body += number_cell(row["metrics"][m["key"].get<std::string>()]);
      std::string samples, curve;
      if (row_index++ < options.html_media_rows) {
        for (const auto& a : html::sample_artifacts(registry, newest, options.samples_per_row))
          samples += html::sample_img(options.runs_dir, options.media_url_prefix, newest, a);
        curve = html::loss_curve_svg(registry.metric_history(newest, "train/loss"), "loss-" + newest);
      }
      body += fmt::format("<td data-value=\"\">{}</td><td data-value=\"\">{}</td><td data-value=\"\">{}</td></tr>\n", samples, curve,
                          provenance(registry, row["runs"], protocol, options.run_url_prefix));
    }
    body += "</tbody>\n</table>\n</section>\n";
  }
  return html::page("Leaderboard: " + options.benchmark, body);
}

}  // namespace asg
