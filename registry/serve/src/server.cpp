#include "asg/server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "asg/error.h"
#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/html.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

std::string format_time(int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A page's script may carry a value only as a JSON literal, with "</" broken so that no value can end the script.
std::string script_literal(const std::string& value) {
  std::string json = nlohmann::json(value).dump();
  std::string out;
  for (size_t i = 0; i < json.size(); ++i) {
    out += json[i];
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') out += "\\";
  }
  return out;
}

class Pages {
 public:
  explicit Pages(const ServeOptions& options) : options_(options) {}

  // Every request reads through its own read-only connection: a Registry is used from one thread at a time.
  Registry open() const { return Registry(options_.registry_path, Registry::OpenMode::ReadOnly); }

  std::string index() const {
    Registry registry = open();
    std::set<std::string> benchmarks;
    for (const auto& r : registry.list_runs("", RunStatus::Finished))
      if (!r.benchmark.empty() && r.role == RunRole::Run) benchmarks.insert(r.benchmark);
    for (const auto& set : registry.result_sets())
      if (set.status == RunStatus::Finished) benchmarks.insert(set.benchmark);
    std::string body = fmt::format("<h1>ASG Lab registry</h1>\n<p class=\"note\">{} (read-only)</p>\n<h2>Leaderboards</h2>\n<ul>\n",
                                   html::escape(options_.registry_path.string()));
    for (const auto& b : benchmarks)
      body += fmt::format("<li><a href=\"/leaderboard/{}\">{}</a></li>\n", html::url_encode(b), html::escape(b));
    if (benchmarks.empty()) body += "<li>no finished benchmark runs yet</li>\n";
    body += "</ul>\n<h2>Compare</h2>\n<form action=\"/compare\" method=\"get\"><input name=\"runs\" placeholder=\"run id\"> "
            "<input name=\"runs\" placeholder=\"run id\"> <button>compare</button></form>\n";
    RunQuery query;
    query.with_large_texts = false;
    query.limit = 50;
    body += "<h2>Newest runs</h2>\n<table class=\"sortable\"><thead><tr><th data-type=\"text\">run</th><th data-type=\"text\">status</th>"
            "<th data-type=\"text\">name</th><th data-type=\"text\">benchmark</th><th data-type=\"text\">created</th></tr></thead><tbody>\n";
    for (const auto& r : registry.list_runs(query))
      body += fmt::format("<tr><td data-value=\"{0}\"><a href=\"/runs/{1}\"><code>{0}</code></a></td><td data-value=\"{2}\">{2}</td>"
                          "<td data-value=\"{3}\">{3}{5}</td><td data-value=\"{4}\">{4}</td><td data-value=\"{6}\">{7}</td></tr>\n",
                          html::escape(r.id), html::url_encode(r.id), status_name(r.status), html::escape(r.name), html::escape(r.benchmark),
                          r.role == RunRole::Run ? "" : fmt::format(" [{}]", run_role_name(r.role)), r.created_ms, format_time(r.created_ms));
    body += "</tbody></table>\n";
    return html::page("ASG Lab registry", body);
  }

  std::string leaderboard(const std::string& benchmark, const httplib::Request& request) const {
    Registry registry = open();
    LeaderboardOptions options;
    options.benchmark = benchmark;
    options.individual_runs = request.has_param("runs") && request.get_param_value("runs") == "1";
    if (request.has_param("group_by")) options.group_by = request.get_param_value("group_by");
    for (size_t i = 0; i < request.get_param_value_count("where"); ++i) options.where.push_back(request.get_param_value("where", i));
    options.runs_dir = options_.runs_dir;
    options.media_url_prefix = "/files";
    options.run_url_prefix = "/runs";
    std::string page = render_leaderboard(registry, options, LeaderboardFormat::Html);
    // The page links back to the index.
    const std::string marker = "<body>\n";
    page.insert(page.find(marker) + marker.size(), "<p><a href=\"/\">registry</a></p>\n");
    return page;
  }

  std::string run(const std::string& id_or_prefix) const {
    Registry registry = open();
    const RunRecord r = registry.resolve_run(id_or_prefix);
    std::string body = fmt::format("<p><a href=\"/\">registry</a></p>\n<h1>Run <code>{}</code>: {}</h1>\n<p id=\"status\">{}{}</p>\n",
                                   html::escape(r.id), html::escape(r.name), status_name(r.status),
                                   r.error.empty() ? "" : " · " + html::escape(r.error));
    body += "<table>\n";
    auto field = [&](const std::string& name, const std::string& value) {
      body += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html::escape(name), html::escape(value));
    };
    field("role", run_role_name(r.role));
    if (r.parent_run_id) field("parent", *r.parent_run_id);
    field("benchmark", r.benchmark.empty() ? "(none)" : r.benchmark);
    field("experiment", r.experiment_path);
    field("seed", std::to_string(r.seed));
    field("created", format_time(r.created_ms));
    field("commit", (r.git_commit.empty() ? std::string("unknown") : r.git_commit) + (r.git_dirty ? " (dirty)" : ""));
    field("config hash", r.config_hash);
    field("method hash", r.method_hash);
    field("protocol hash", r.protocol_hash);
    field("host", r.host_json);
    body += "</table>\n<h2>Training loss</h2>\n<div id=\"curve\">" +
            html::loss_curve_svg(registry.metric_history(r.id, "train/loss"), "loss-" + r.id) + "</div>\n";
    body += "<h2>Samples</h2>\n<p>";
    for (const auto& a : html::sample_artifacts(registry, r.id, 8)) body += html::sample_img(options_.runs_dir, "/files", r.id, a);
    body += "</p>\n<h2>Results</h2>\n<table class=\"sortable\"><thead><tr><th data-type=\"text\">metric</th><th data-type=\"number\">value</th>"
            "</tr></thead><tbody>\n";
    for (const auto& v : registry.results(r.id))
      body += fmt::format("<tr><td data-value=\"{0}\">{0} {1}</td><td class=\"num\" data-value=\"{2:.17g}\">{2:.6g}</td></tr>\n",
                          html::escape(v.key), v.higher_is_better ? "↑" : "↓", v.value);
    body += "</tbody></table>\n<h2>Plugins</h2>\n<table><thead><tr><th>slot</th><th>plugin</th><th>version</th><th>library sha256</th></tr></thead><tbody>\n";
    for (const auto& p : registry.plugins(r.id))
      body += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n", html::escape(p.slot), html::escape(p.name),
                          html::escape(p.version), html::escape(p.library_sha256));
    body += "</tbody></table>\n";
    RunQuery children;
    children.parent_run_id = r.id;
    children.with_large_texts = false;
    const auto kids = registry.list_runs(children);
    if (!kids.empty()) {
      body += "<h2>Children</h2>\n<ul>\n";
      for (const auto& c : kids)
        body += fmt::format("<li><a href=\"/runs/{}\"><code>{}</code></a> {} {} {}</li>\n", html::url_encode(c.id), html::escape(c.id),
                            run_role_name(c.role), status_name(c.status), html::escape(c.name));
      body += "</ul>\n";
    }
    body += fmt::format("<h2>Config</h2>\n<pre>{}</pre>\n", html::escape(r.config_text));
    // While the run trains, the curve and the status are fetched again every second.
    const std::string script = fmt::format(R"js(
(function () {{
  var run = {};
  var status = {};
  function refresh() {{
    fetch('/api/runs/' + encodeURIComponent(run) + '/curve').then(function (r) {{ return r.json(); }}).then(function (d) {{
      document.getElementById('curve').innerHTML = d.svg;
      document.getElementById('status').textContent = d.status;
      status = d.status;
      if (status === 'RUNNING' || status === 'QUEUED') setTimeout(refresh, 1000);
    }}).catch(function () {{ setTimeout(refresh, 2000); }});
  }}
  if (status === 'RUNNING' || status === 'QUEUED') setTimeout(refresh, 1000);
}})();
)js",
                                           script_literal(r.id), script_literal(status_name(r.status)));
    return html::page(fmt::format("Run {}: {}", r.id, r.name), body, script);
  }

  std::string curve(const std::string& id_or_prefix) const {
    Registry registry = open();
    const RunRecord r = registry.resolve_run(id_or_prefix);
    const auto history = registry.metric_history(r.id, "train/loss");
    return nlohmann::json{{"status", status_name(r.status)}, {"points", history.size()}, {"svg", html::loss_curve_svg(history, "loss-" + r.id)}}
        .dump();
  }

  // The file, if the run recorded it as an artifact; nothing else under the runs folder is reachable.
  std::optional<std::pair<std::string, std::string>> file(const std::string& id_or_prefix, const std::string& path) const {
    Registry registry = open();
    const RunRecord r = registry.resolve_run(id_or_prefix);
    for (const auto& a : registry.artifacts(r.id)) {
      if (a.path != path) continue;
      std::ifstream in(options_.runs_dir / r.id / a.path, std::ios::binary);
      if (!in) return std::nullopt;
      std::stringstream bytes;
      bytes << in.rdbuf();
      return std::make_pair(bytes.str(), html::mime_type(a.path));
    }
    return std::nullopt;
  }

  std::string compare(const httplib::Request& request) const {
    Registry registry = open();
    std::vector<RunRecord> runs;
    for (size_t i = 0; i < request.get_param_value_count("runs"); ++i) {
      const std::string id = request.get_param_value("runs", i);
      if (!id.empty()) runs.push_back(registry.resolve_run(id));
    }
    // The JSON comparison as tables: one per kind of difference, a column per run.
    const auto j = nlohmann::json::parse(render_comparison(registry, runs, LeaderboardFormat::Json));
    std::string body = "<p><a href=\"/\">registry</a></p>\n<h1>Compare runs</h1>\n<table><thead><tr><th></th>";
    std::string header;
    for (size_t i = 0; i < runs.size(); ++i)
      header += fmt::format("<th><a href=\"/runs/{}\"><code>{}</code></a><br>{}</th>", html::url_encode(runs[i].id), html::escape(runs[i].id),
                            html::escape(runs[i].name));
    body += header + "</tr></thead></table>\n";
    auto cell = [](const nlohmann::json& v) {
      return v.is_null() ? std::string("<td class=\"missing\">(absent)</td>")
                         : fmt::format("<td>{}</td>", html::escape(v.is_string() ? v.get<std::string>() : v.dump()));
    };
    for (const auto& [section, title] : std::vector<std::pair<std::string, std::string>>{{"config", "Config"},
                                                                                          {"plugins", "Plugins"},
                                                                                          {"plugin_libraries", "Plugin libraries (sha256)"},
                                                                                          {"host", "Host and libraries"},
                                                                                          {"hashes", "Hashes"}}) {
      const auto& diffs = j[section];
      if (diffs.empty()) {
        body += fmt::format("<h2>{}: no difference</h2>\n", title);
        continue;
      }
      body += fmt::format("<h2>{} ({} differ{})</h2>\n<table><thead><tr><th>key</th>{}</tr></thead><tbody>\n", title, diffs.size(),
                          diffs.size() == 1 ? "s" : "", header);
      for (const auto& [key, values] : diffs.items()) {
        body += "<tr><td><code>" + html::escape(key) + "</code></td>";
        for (const auto& v : values) body += cell(v);
        body += "</tr>\n";
      }
      body += "</tbody></table>\n";
    }
    body += fmt::format("<h2>Results ({} differ, {} equal)</h2>\n<table><thead><tr><th>metric</th>{}</tr></thead><tbody>\n",
                        j["results"].size(), j["equal_results"].get<int64_t>(), header);
    for (const auto& [key, r] : j["results"].items()) {
      body += fmt::format("<tr><td>{} {}</td>", html::escape(key), r["higher_is_better"].get<bool>() ? "↑" : "↓");
      for (size_t i = 0; i < r["values"].size(); ++i) {
        const auto& v = r["values"][i];
        const auto& d = r["delta_from_first"][i];
        std::string text = v.is_number() ? fmt::format("{:.6g}", v.get<double>()) : "n/a";
        if (i > 0 && d.is_number()) text += fmt::format(" (Δ {:+.4g})", d.get<double>());
        body += "<td class=\"num\">" + html::escape(text) + "</td>";
      }
      body += "</tr>\n";
    }
    body += "</tbody></table>\n";
    return html::page("Compare runs", body);
  }

 private:
  ServeOptions options_;
};

void send_error(httplib::Response& response, int status, const std::string& message) {
  response.status = status;
  response.set_content(html::page(fmt::format("{}", status), fmt::format("<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/\">registry</a></p>", status,
                                                                          html::escape(message))),
                       "text/html; charset=utf-8");
}

// Runs a page handler, turning what it throws into a page: a bad id or key is the client's (404/400), anything
// else the server's (500).
template <typename F>
void respond(httplib::Response& response, F&& make) {
  try {
    make();
  } catch (const Error& e) {
    send_error(response, e.kind() == ErrorKind::Config ? 404 : 500, e.what());
  } catch (const std::exception& e) {
    send_error(response, 500, e.what());
  }
}

}  // namespace

void serve_registry(const ServeOptions& options, const std::function<void(int)>& on_listening, const std::atomic<bool>& stop) {
  { Registry check(options.registry_path, Registry::OpenMode::ReadOnly); }  // refuse an unreadable registry before binding
  Pages pages(options);
  httplib::Server server;
  const char* kHtml = "text/html; charset=utf-8";
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) { respond(res, [&] { res.set_content(pages.index(), kHtml); }); });
  server.Get(R"(/leaderboard/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    respond(res, [&] { res.set_content(pages.leaderboard(req.matches[1].str(), req), kHtml); });
  });
  server.Get(R"(/runs/([A-Za-z0-9_-]+))", [&](const httplib::Request& req, httplib::Response& res) {
    respond(res, [&] { res.set_content(pages.run(req.matches[1].str()), kHtml); });
  });
  server.Get(R"(/api/runs/([A-Za-z0-9_-]+)/curve)", [&](const httplib::Request& req, httplib::Response& res) {
    respond(res, [&] { res.set_content(pages.curve(req.matches[1].str()), "application/json"); });
  });
  server.Get(R"(/files/([A-Za-z0-9_-]+)/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    respond(res, [&] {
      auto f = pages.file(req.matches[1].str(), req.matches[2].str());
      if (!f) return send_error(res, 404, "no such file recorded for this run");
      res.set_content(f->first, f->second);
    });
  });
  server.Get("/compare", [&](const httplib::Request& req, httplib::Response& res) {
    respond(res, [&] { res.set_content(pages.compare(req), kHtml); });
  });
  // Read-only: every other method is refused on every path.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "GET");
    send_error(res, 405, "asg serve is read-only: only GET is answered");
  };
  server.Post(".*", refuse);
  server.Put(".*", refuse);
  server.Patch(".*", refuse);
  server.Delete(".*", refuse);
  server.Options(".*", refuse);
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) send_error(res, 404, "no such page: " + req.path);
  });
  server.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}});

  const int port = options.port == 0 ? server.bind_to_any_port(options.bind) : (server.bind_to_port(options.bind, options.port) ? options.port : -1);
  if (port < 0)
    throw config_error(fmt::format("asg serve: cannot listen on {}:{} (in use, or not an address of this machine; --port P, --bind ADDR)",
                                   options.bind, options.port));
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!stop.load() && !done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  on_listening(port);
  server.listen_after_bind();
  done = true;
  stopper.join();
}

}  // namespace asg
