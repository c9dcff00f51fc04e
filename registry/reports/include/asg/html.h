// HTML pieces shared by the static leaderboard page and asg serve: escaping, the inline loss curve, sample
// images, the page frame with its sorting script. Public to asg serve (registry/serve), which builds on the reports.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "asg/registry.h"

namespace asg::html {

// Text and attribute values: & < > " ' escaped, so no value can open a tag or leave an attribute.
std::string escape(const std::string& text);
// Percent-encoding of a URL path segment or query value (RFC 3986 unreserved characters kept).
std::string url_encode(const std::string& text);

// A polyline of a run's history for `key` ("train/loss"), at most `max_points` points (evenly thinned), as an
// inline <svg> with id `id`; "" when the run logged none.
std::string loss_curve_svg(const std::vector<MetricPoint>& history, const std::string& id, size_t max_points = 300);

// The run's sample files (recorded artifacts under samples/: GIF, WebP, PNG), the grid left out when there are
// others; at most `limit`.
std::vector<Artifact> sample_artifacts(const Registry& registry, const std::string& run_id, size_t limit);

// An <img> of a sample: a data: URI of the file under <runs_dir>/<run id>/ when url_prefix is "", else a link to
// <url_prefix>/<run id>/<path>. A file that is not here becomes a note.
std::string sample_img(const std::filesystem::path& runs_dir, const std::string& url_prefix, const std::string& run_id,
                       const Artifact& artifact);

// MIME type by extension, for the files asg serve sends.
std::string mime_type(const std::string& path);

// <!doctype html> ... with the page's style and the table-sorting script; `body` is inserted as is.
std::string page(const std::string& title, const std::string& body, const std::string& extra_script = "");

}  // namespace asg::html
