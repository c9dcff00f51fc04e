// The torch-free `asg data` tools: decoding every manifest row on threads, packing shards, stats, frames as PNG.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <optional>
#include <map>
#include <mutex>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "asg/data/tar_shards.h"
#include "asg/data/tools.h"
#include "asg/error.h"
#include "asg/files.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

// A row's sticker bytes and the name errors call it by: its file, or its sample in a shard.
std::string row_bytes(const Manifest& manifest, size_t row, std::string* name) {
  if (manifest.shards().empty()) {
    *name = manifest.file(row).string();
    return read_text_file(manifest.file(row));
  }
  const Manifest::Row r = manifest.row(row);
  const std::string_view at(r.path);
  const size_t hash = at.rfind('#');
  const fs::path shard = manifest.root() / std::string(at.substr(0, hash));
  ShardReader reader(shard, std::stoull(std::string(at.substr(hash + 1))));
  auto sample = reader.next();
  if (!sample) throw data_error(fmt::format("{}: no sample at the indexed offset (the shard changed)", shard.string()));
  const ShardSampleInfo info = describe_shard_sample(*sample, shard, "caption");
  if (info.media.empty()) throw data_error(info.problem);
  *name = fmt::format("{}:{}.{}", shard.string(), sample->key, info.media);
  const auto& bytes = sample->parts.at(info.media);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

void for_each_decoded(const Manifest& manifest, const DecodeLimits& limits, int64_t threads,
                      const std::function<void(size_t, const DecodedSticker*, const std::string&)>& visit) {
  // Workers decode ahead into a bounded window; the calling thread visits rows in order.
  struct Result {
    std::optional<DecodedSticker> sticker;
    std::string error;
    bool done = false;
  };
  const size_t n = manifest.size();
  const size_t window = static_cast<size_t>(std::max<int64_t>(1, threads)) * 8;
  std::vector<Result> results(n);
  std::mutex mutex;
  std::condition_variable changed;
  size_t next_claim = 0, visited = 0;
  bool stop = false;
  auto work = [&] {
    for (;;) {
      size_t row;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stop || next_claim >= n || next_claim < visited + window; });
        if (stop || next_claim >= n) return;
        row = next_claim++;
      }
      Result r;
      std::string name = std::string(manifest.id(row));
      try {
        if (manifest.shards().empty()) {
          r.sticker = read_sticker(manifest.file(row), limits);
        } else {
          const std::string bytes = row_bytes(manifest, row, &name);
          r.sticker = decode_sticker({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, name, limits);
        }
      } catch (const Error& e) {
        r.error = e.what();
      } catch (const std::exception& e) {
        r.error = fmt::format("{}: {}", name, e.what());
      }
      r.done = true;
      {
        std::lock_guard<std::mutex> lock(mutex);
        results[row] = std::move(r);
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int64_t i = 0; i < std::max<int64_t>(1, threads); ++i) pool.emplace_back(work);
  try {
    for (size_t row = 0; row < n; ++row) {
      Result r;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return results[row].done; });
        r = std::move(results[row]);
        results[row] = Result{};
        visited = row + 1;
      }
      changed.notify_all();
      visit(row, r.sticker ? &*r.sticker : nullptr, r.error);
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    changed.notify_all();
    for (auto& t : pool) t.join();
    throw;
  }
  for (auto& t : pool) t.join();
}

PackSummary pack_shards(const Manifest& manifest, const fs::path& out, int64_t per_shard) {
  if (per_shard < 1) throw config_error("--samples-per-shard must be at least 1");
  fs::create_directories(out);
  PackSummary summary;
  std::unique_ptr<ShardWriter> writer;
  int64_t in_shard = 0;
  for (size_t i = 0; i < manifest.size(); ++i) {
    if (!writer || in_shard == per_shard) {
      if (writer) writer->close();
      summary.files.push_back(out / fmt::format("shard-{:06}.tar", summary.shards++));
      writer = std::make_unique<ShardWriter>(summary.files.back());
      in_shard = 0;
    }
    const Manifest::Row row = manifest.row(i);
    std::string source_name;
    const std::string bytes = row_bytes(manifest, i, &source_name);
    // The member's extension says what the content is (never what the source file was named).
    const uint8_t* head = reinterpret_cast<const uint8_t*>(bytes.data());
    MediaFormat format = detect_format(head, std::min<size_t>(bytes.size(), 16));
    if (format == MediaFormat::Unknown) format = format_from_extension(source_name);
    const std::string ext = format == MediaFormat::Unknown ? "bin" : media_format_names().name(format);
    const std::string key = fmt::format("{:08}", summary.samples);
    nlohmann::json meta = {{"id", std::string(row.id)}, {"caption", std::string(row.caption)}, {"split", split_name_of(row.split)}};
    if (!row.labels.empty()) meta["labels"] = row.labels;
    if (!row.keyframes.empty()) meta["keyframe_idx"] = row.keyframes;
    const std::string json = meta.dump();
    writer->add(key + "." + (ext == "jpeg" ? std::string("jpg") : ext), bytes.data(), bytes.size());
    writer->add(key + ".json", json.data(), json.size());
    ++in_shard;
    ++summary.samples;
  }
  if (writer) writer->close();
  return summary;
}

std::string dataset_stats(const Manifest& manifest, const DecodeLimits& limits, int64_t threads, bool json) {
  // Frame-count bins as in the VSD2M frame histogram (which counts animated stickers only): 2-10, 11-20,
  // ..., 131-140, then >= 141; static stickers (1 frame) are counted apart.
  std::vector<std::string> bin_names{"1 (static)", "2-10"};
  for (int lo = 11; lo <= 131; lo += 10) bin_names.push_back(fmt::format("{}-{}", lo, lo + 9));
  bin_names.push_back(">=141");
  std::vector<int64_t> bins(bin_names.size(), 0);
  std::map<std::string, int64_t> formats;
  std::vector<double> durations_s, widths, heights, file_kb;
  int64_t alpha = 0, bad = 0, decoded = 0;
  for_each_decoded(manifest, limits, threads, [&](size_t, const DecodedSticker* s, const std::string&) {
    if (!s) {
      ++bad;
      return;
    }
    ++decoded;
    const auto frames = static_cast<int64_t>(s->animation.frames.size());
    const size_t bin = frames <= 1 ? 0 : frames <= 10 ? 1 : frames >= 141 ? bin_names.size() - 1 : static_cast<size_t>((frames - 1) / 10 + 1);
    ++bins[bin];
    ++formats[media_format_names().name(s->format)];
    double total_ms = 0;
    for (const auto& f : s->animation.frames) total_ms += f.duration_ms <= 10 ? 100 : f.duration_ms;
    if (frames > 1) durations_s.push_back(total_ms / 1000.0);
    widths.push_back(s->animation.width);
    heights.push_back(s->animation.height);
    file_kb.push_back(static_cast<double>(s->encoded_bytes) / 1024.0);
    alpha += s->has_alpha ? 1 : 0;
  });
  auto quantile = [](std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  if (json) {
    nlohmann::json j;
    j["rows"] = manifest.size();
    j["rejected_rows"] = manifest.rejected().size();
    j["undecodable"] = bad;
    j["decoded"] = decoded;
    for (size_t i = 0; i < bins.size(); ++i) j["frames_histogram"][bin_names[i]] = bins[i];
    j["formats"] = formats;
    j["with_alpha"] = alpha;
    j["duration_s"] = {{"median", quantile(durations_s, 0.5)}, {"p95", quantile(durations_s, 0.95)}};
    j["width"] = {{"median", quantile(widths, 0.5)}, {"max", quantile(widths, 1.0)}};
    j["height"] = {{"median", quantile(heights, 0.5)}, {"max", quantile(heights, 1.0)}};
    j["file_kb"] = {{"median", quantile(file_kb, 0.5)}, {"p95", quantile(file_kb, 0.95)}};
    return j.dump(2) + "\n";
  }
  std::string out = fmt::format("{}: {} rows ({} rejected before decoding), {} decoded, {} undecodable\n",
                                manifest.source().string(), manifest.size(), manifest.rejected().size(), decoded, bad);
  out += "frames per sticker:\n";
  const int64_t most = std::max<int64_t>(1, *std::max_element(bins.begin(), bins.end()));
  for (size_t i = 0; i < bins.size(); ++i)
    out += fmt::format("  {:>10} {:>8}  {}\n", bin_names[i], bins[i], std::string(static_cast<size_t>(40 * bins[i] / most), '#'));
  out += "formats:";
  for (const auto& [f, c] : formats) out += fmt::format(" {} {}", f, c);
  out += fmt::format("\nwith alpha: {} of {}\n", alpha, decoded);
  out += fmt::format("animated duration (s): median {:.2f}, p95 {:.2f}\n", quantile(durations_s, 0.5), quantile(durations_s, 0.95));
  out += fmt::format("canvas: median {}x{}, max {}x{}\n", quantile(widths, 0.5), quantile(heights, 0.5), quantile(widths, 1.0),
                     quantile(heights, 1.0));
  out += fmt::format("file size (KiB): median {:.1f}, p95 {:.1f}\n", quantile(file_kb, 0.5), quantile(file_kb, 0.95));
  return out;
}

int64_t export_frames(const fs::path& file, const fs::path& dir, const DecodeLimits& limits) {
  const DecodedSticker sticker = read_sticker(file, limits);
  fs::create_directories(dir);
  const Animation& a = sticker.animation;
  for (size_t t = 0; t < a.frames.size(); ++t) {
    const cv::Mat rgba(a.height, a.width, CV_8UC4, const_cast<uint8_t*>(a.frames[t].rgba.data()));
    cv::Mat bgra;
    cv::cvtColor(rgba, bgra, cv::COLOR_RGBA2BGRA);
    const fs::path png = dir / fmt::format("frame_{:04}.png", t);
    if (!cv::imwrite(png.string(), bgra)) throw data_error(fmt::format("{}: cannot write the PNG file", png.string()));
  }
  return static_cast<int64_t>(a.frames.size());
}

}  // namespace asg
