#include "asg/html.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

namespace asg::html {

namespace fs = std::filesystem;

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string loss_curve_svg(const std::vector<MetricPoint>& history, const std::string& id, size_t max_points) {
  std::vector<const MetricPoint*> points;
  for (const auto& p : history)
    if (std::isfinite(p.value)) points.push_back(&p);
  if (points.empty()) return "";
  // Evenly thinned, the last point always kept.
  std::vector<const MetricPoint*> shown;
  const size_t stride = std::max<size_t>(1, (points.size() + max_points - 1) / max_points);
  for (size_t i = 0; i < points.size(); i += stride) shown.push_back(points[i]);
  if (shown.back() != points.back()) shown.push_back(points.back());
  double lo = shown.front()->value, hi = lo;
  int64_t first = shown.front()->step, last = shown.back()->step;
  for (const auto* p : shown) {
    lo = std::min(lo, p->value);
    hi = std::max(hi, p->value);
  }
  constexpr double kWidth = 160, kHeight = 48;
  std::string coords;
  for (const auto* p : shown) {
    const double x = last == first ? 0 : kWidth * static_cast<double>(p->step - first) / static_cast<double>(last - first);
    const double y = hi == lo ? kHeight / 2 : kHeight * (1 - (p->value - lo) / (hi - lo));
    coords += fmt::format("{:.1f},{:.1f} ", x, y);
  }
  return fmt::format(
      "<svg id=\"{}\" class=\"curve\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">"
      "<title>{}: {} points, steps {}..{}, {:.4g}..{:.4g}</title><polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" "
      "points=\"{}\"/></svg>",
      escape(id), kWidth, kHeight, kWidth, kHeight, escape(shown.front()->key), escape(shown.front()->key), points.size(), first, last,
      lo, hi, coords);
}

std::vector<Artifact> sample_artifacts(const Registry& registry, const std::string& run_id, size_t limit) {
  std::vector<Artifact> samples, grids;
  for (const auto& a : registry.artifacts(run_id)) {
    if (a.path.rfind("samples/", 0) != 0) continue;
    const std::string ext = fs::path(a.path).extension().string();
    if (ext != ".gif" && ext != ".webp" && ext != ".png") continue;
    (fs::path(a.path).stem() == "grid" ? grids : samples).push_back(a);
  }
  if (samples.empty()) samples = grids;
  if (samples.size() > limit) samples.resize(limit);
  return samples;
}

std::string mime_type(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".gif") return "image/gif";
  if (ext == ".webp") return "image/webp";
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  if (ext == ".toml" || ext == ".log" || ext == ".tsv" || ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::string sample_img(const fs::path& runs_dir, const std::string& url_prefix, const std::string& run_id, const Artifact& artifact) {
  const std::string alt = escape(fmt::format("{} of run {}", artifact.path, run_id));
  if (!url_prefix.empty())
    return fmt::format("<img src=\"{}\" alt=\"{}\">", escape(url_prefix + "/" + run_id + "/" + artifact.path), alt);
  std::ifstream in(runs_dir / run_id / artifact.path, std::ios::binary);
  if (!in) return fmt::format("<span class=\"missing\">{} is not on this machine</span>", escape(artifact.path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string raw = bytes.str();
  std::string encoded(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  encoded.resize(static_cast<size_t>(n));
  return fmt::format("<img src=\"data:{};base64,{}\" alt=\"{}\">", mime_type(artifact.path), encoded, alt);
}

std::string page(const std::string& title, const std::string& body, const std::string& extra_script) {
  // Sorting: a click on a header orders the rows of its table by that column (numbers by data-value, text
  // otherwise), a second click reverses. Everything inline: the page opens with no network.
  static const char* kStyle = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: middle; }
th { cursor: pointer; user-select: none; background: #f6f8fa; }
th[aria-sort=ascending]::after { content: " \25B2"; } th[aria-sort=descending]::after { content: " \25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { image-rendering: pixelated; height: 64px; margin-right: 4px; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 8px 8px; }
details { font-size: 12px; } code, pre { font: 12px ui-monospace, monospace; }
.note { color: #57606a; } .missing { color: #9a6700; font-size: 12px; }
)css";
  static const char* kSort = R"js(
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('thead th').forEach(function (other) { other.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = th.dataset.type === 'number';
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        var c;
        if (numeric) {
          var fx = parseFloat(x), fy = parseFloat(y);
          if (isNaN(fx) !== isNaN(fy)) return isNaN(fx) ? 1 : -1;  // empty cells last, either way
          c = fx - fy;
        } else {
          c = String(x).localeCompare(String(y));
        }
        return ascending ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
)js";
  return fmt::format("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{}</style>\n</head>\n"
                     "<body>\n{}\n<script>{}{}</script>\n</body>\n</html>\n",
                     escape(title), kStyle, body, kSort, extra_script);
}

}  // namespace asg::html
