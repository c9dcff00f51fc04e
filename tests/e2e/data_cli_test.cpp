// End-to-end: the data commands and data in runs through the real `asg` binary: inspect, synthesised files,
// bad files skipped and listed, check/stats/index/pack, frame export.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/registry.h"
#include "asg/files.h"

#include "cli_fixture.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using Result = asg::testing::CliResult;
using asg::testing::run_asg;

TEST_F(CliTest, DataInspectDescribesFilesByContentAndRefusesBadOnesInOneLine) {
  asg::Animation a;
  a.width = 3;
  a.height = 2;
  a.loop_count = 0;
  for (int t = 0; t < 3; ++t) {
    asg::RgbaFrame f;
    f.duration_ms = 100 + 50 * t;
    f.rgba.assign(3 * 2 * 4, static_cast<uint8_t>(60 * t));
    f.rgba[3] = 255;  // one opaque pixel, the rest transparent
    a.frames.push_back(f);
  }
  asg::write_gif(dir_ / "s.gif", a);
  asg::write_webp(dir_ / "s.webp", a);
  fs::copy_file(dir_ / "s.webp", dir_ / "named_wrong.gif");
  Result r = run_asg("data inspect --json s.gif s.webp named_wrong.gif", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(R"({"alpha":true,"delays_ms":[100,150,200],"file":"s.gif","format":"gif","frames":3,"height":2,"loop":0,"width":3})"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(R"({"alpha":true,"delays_ms":[100,150,200],"file":"s.webp","format":"webp","frames":3,"height":2,"loop":0,"width":3})"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("warning: named_wrong.gif: the extension says gif but the content is webp; decoded as webp"),
            std::string::npos)
      << r.output;
  Result text = run_asg("data inspect s.gif", dir_);
  EXPECT_NE(text.output.find("s.gif: gif 3x2, 3 frames, delays 100 150 200 ms, loops forever, alpha"), std::string::npos)
      << text.output;

  std::ofstream(dir_ / "bad.gif") << "GIF89a but then nothing";
  Result bad = run_asg("data inspect s.gif bad.gif", dir_);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("s.gif: gif 3x2"), std::string::npos) << "the good file is still described";
  EXPECT_NE(bad.output.find("error: bad.gif: "), std::string::npos) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 2) << "one line per file: " << bad.output;
  Result limited = run_asg("data inspect --max-frames 2 s.webp", dir_);
  EXPECT_EQ(limited.code, 1);
  EXPECT_NE(limited.output.find("data.max_frames"), std::string::npos) << limited.output;
}

TEST_F(CliTest, SynthesisedFilesTrainExactlyAsTheInMemoryDataset) {
  const std::string sizes = " --set dataset.train_size=24 --set dataset.validation_size=0 --set dataset.test_size=6";
  Result in_memory = run_asg("run tiny.toml --set train.steps=12 --set train.log_every=1" + sizes, dir_);
  ASSERT_EQ(in_memory.code, 0) << in_memory.output;
  for (const char* format : {"webp", "gif"}) {
    SCOPED_TRACE(format);
    const std::string out = std::string("synth_") + format;
    Result synth = run_asg(fmt::format("data synth tiny.toml {} --format {}{}", out, format, sizes), dir_);
    ASSERT_EQ(synth.code, 0) << synth.output;
    EXPECT_EQ(fs::file_size(dir_ / out / "manifest.jsonl") > 0, true);
    ASSERT_TRUE(fs::exists(dir_ / out / "train" / fmt::format("train_000023.{}", format))) << synth.output;
    // The [dataset] section synth printed, in an experiment of its own.
    const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
    std::ofstream(dir_ / (out + ".toml")) << "base = [\"tiny.toml\"]\nname = \"tiny-files\"\n" << section;
    Result files = run_asg(fmt::format("run {}.toml --set train.steps=12 --set train.log_every=1", out), dir_);
    ASSERT_EQ(files.code, 0) << files.output;
  }
  asg::Registry reg(registry());
  const auto runs = reg.list_runs();  // newest first: gif files, webp files, in memory
  ASSERT_EQ(runs.size(), 3u);
  const auto reference = reg.metric_history(runs[2].id, "train/loss");
  ASSERT_EQ(reference.size(), 12u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(runs[i].name, "tiny-files");
    const auto history = reg.metric_history(runs[i].id, "train/loss");
    ASSERT_EQ(history.size(), reference.size());
    for (size_t k = 0; k < history.size(); ++k) EXPECT_EQ(history[k].value, reference[k].value) << "step " << history[k].step;
    const auto results = reg.results(runs[i].id), ref_results = reg.results(runs[2].id);
    ASSERT_EQ(results.size(), ref_results.size());
    for (size_t k = 0; k < results.size(); ++k) EXPECT_EQ(results[k].value, ref_results[k].value) << results[k].key;
  }
}

TEST_F(CliTest, BadFilesInARunAreSkippedListedAndFailItOnlyPastTheLimit) {
  Result synth = run_asg("data synth tiny.toml files --set dataset.train_size=20 --set dataset.validation_size=0 "
                         "--set dataset.test_size=4",
                         dir_);
  ASSERT_EQ(synth.code, 0) << synth.output;
  std::ofstream(dir_ / "files/train/train_000003.webp", std::ios::trunc) << "not a webp";  // unsupported content
  fs::resize_file(dir_ / "files/train/train_000007.webp", 20);                             // truncated
  {
    std::ofstream manifest(dir_ / "files/manifest.jsonl", std::ios::app);
    manifest << R"({"id": "escape", "path": "../tiny.toml", "caption": "x", "split": "train"})" "\n";
  }
  const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
  std::ofstream(dir_ / "files.toml") << "base = [\"tiny.toml\"]\nname = \"tiny-files\"\n" << section;
  // 3 bad of 25 rows = 12%: fine under max_bad_fraction = 0.2, listed in the run's data_skipped.tsv.
  Result tolerant = run_asg("run files.toml --set train.steps=8 --set data.max_bad_fraction=0.2", dir_);
  ASSERT_EQ(tolerant.code, 0) << tolerant.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  const std::string report = asg::read_text_file(dir_ / "runs" / run.id / "data_skipped.tsv");
  EXPECT_EQ(report.rfind("id\treason\n", 0), 0u) << report;
  EXPECT_NE(report.find("escape\t'../tiny.toml' leaves the dataset root"), std::string::npos) << report;
  EXPECT_NE(report.find("train_000003.webp: not a sticker format"), std::string::npos) << report;
  EXPECT_NE(report.find("train_000007.webp: "), std::string::npos) << report;
  EXPECT_NE(tolerant.output.find("data: 3 of 25 samples skipped as bad"), std::string::npos) << tolerant.output;
  bool listed = false;
  for (const auto& a : reg.artifacts(run.id)) listed = listed || a.path == "data_skipped.tsv";
  EXPECT_TRUE(listed);
  // The default limit (1%): the run fails with the counts, and the report written so far stays.
  Result strict = run_asg("run files.toml --set train.steps=8", dir_);
  EXPECT_EQ(strict.code, 1) << strict.output;
  EXPECT_NE(strict.output.find("of 25 samples"), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("over [data] max_bad_fraction = 0.01"), std::string::npos) << strict.output;
  const auto failed = reg.list_runs().at(0);
  EXPECT_EQ(failed.status, asg::RunStatus::Failed);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / failed.id / "data_skipped.tsv"));
}

TEST_F(CliTest, DataToolsCheckStatsIndexAndPackAManifest) {
  Result synth = run_asg("data synth tiny.toml files --set dataset.train_size=12 --set dataset.validation_size=0 "
                         "--set dataset.test_size=4 --format gif",
                         dir_);
  ASSERT_EQ(synth.code, 0) << synth.output;
  // check: all good, then one truncated file and one lying extension.
  Result clean = run_asg("data check files/manifest.jsonl --threads 2", dir_);
  EXPECT_EQ(clean.code, 0) << clean.output;
  EXPECT_NE(clean.output.find("files/manifest.jsonl: 16 rows, 0 bad, 0 suspicious"), std::string::npos) << clean.output;
  fs::resize_file(dir_ / "files/train/train_000004.gif", 30);
  fs::copy_file(dir_ / "files/train/train_000005.gif", dir_ / "files/train/x.webp");
  {
    std::ofstream m(dir_ / "files/manifest.jsonl", std::ios::app);
    m << R"({"id": "lies", "path": "train/x.webp", "caption": "x", "split": "train"})" "\n";
  }
  Result dirty = run_asg("data check files/manifest.jsonl", dir_);
  EXPECT_EQ(dirty.code, 1) << dirty.output;
  EXPECT_NE(dirty.output.find("bad train/000004: "), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("suspicious lies: "), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("the extension says webp but the content is gif"), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("17 rows, 1 bad, 1 suspicious"), std::string::npos) << dirty.output;

  // stats: 16 decodable 8-frame GIFs of 16x16 (one undecodable).
  Result stats = run_asg("data stats files/manifest.jsonl --json", dir_);
  ASSERT_EQ(stats.code, 0) << stats.output;
  const auto j = nlohmann::json::parse(stats.output);
  EXPECT_EQ(j["rows"], 17);
  EXPECT_EQ(j["undecodable"], 1);
  EXPECT_EQ(j["frames_histogram"]["2-10"], 16);
  EXPECT_EQ(j["formats"]["gif"], 16);
  EXPECT_EQ(j["width"]["max"], 16.0);

  // index: written next to the manifest; a run opens it; a stale one is refused naming the fix.
  fs::remove(dir_ / "files/train/x.webp");
  Result index = run_asg("data index files/manifest.jsonl", dir_);
  ASSERT_EQ(index.code, 0) << index.output;
  EXPECT_NE(index.output.find("16 rows (train 12, validation 0, test 4), 1 rejected"), std::string::npos) << index.output;
  ASSERT_TRUE(fs::exists(dir_ / "files/manifest.jsonl.asgidx"));
  const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
  std::ofstream(dir_ / "indexed.toml") << "base = [\"tiny.toml\"]\nname = \"indexed\"\n" << section
                                       << "index = \"files/manifest.jsonl.asgidx\"\n";
  Result indexed = run_asg("run indexed.toml --set train.steps=4 --set data.max_bad_fraction=0.2", dir_);
  EXPECT_EQ(indexed.code, 0) << indexed.output;
  {
    std::ofstream m(dir_ / "files/manifest.jsonl", std::ios::app);
    m << "\n";
  }
  Result stale = run_asg("run indexed.toml --set train.steps=4", dir_);
  EXPECT_EQ(stale.code, 1) << stale.output;
  EXPECT_NE(stale.output.find("files/manifest.jsonl changed since it was indexed (rebuild it: asg data index"),
            std::string::npos)
      << stale.output;

  // pack: shards a webdataset run trains on.
  Result pack = run_asg("data pack files/manifest.jsonl shards --samples-per-shard 5", dir_);
  ASSERT_EQ(pack.code, 0) << pack.output;
  // 17 rows less the one whose file is gone; the truncated file is packed as it is (and skipped when read).
  EXPECT_NE(pack.output.find("16 samples in 4 shards"), std::string::npos) << pack.output;
  EXPECT_NE(pack.output.find("rejected lies: 'train/x.webp': no such file"), std::string::npos) << pack.output;
  EXPECT_TRUE(fs::exists(dir_ / "shards/shard-000003.tar"));
  std::ofstream(dir_ / "shards.toml") << "base = [\"tiny.toml\"]\nname = \"shards\"\n[dataset]\nplugin = \"webdataset\"\n"
                                      << "shards = [\"shards/shard-{000000..000003}.tar\"]\nheight = 16\nwidth = 16\n"
                                      << "vocabulary = \"sprite-vocabulary\"\nvocabulary_version = \"1.0.0\"\n";
  Result shards = run_asg("run shards.toml --set train.steps=6 --set data.max_bad_fraction=0.2", dir_);
  EXPECT_EQ(shards.code, 0) << shards.output;
  // The shard set's index: written in the shards' folder, opened by the next run.
  Result shard_index = run_asg("data index 'shards/shard-*.tar'", dir_);
  ASSERT_EQ(shard_index.code, 0) << shard_index.output;
  EXPECT_NE(shard_index.output.find("16 rows (train 12, validation 0, test 4), 0 rejected"), std::string::npos) << shard_index.output;
  ASSERT_TRUE(fs::exists(dir_ / "shards/shards.asgidx")) << shard_index.output;
  Result indexed_shards = run_asg("run shards.toml --set train.steps=6 --set data.max_bad_fraction=0.2 "
                                  "--set dataset.index=shards/shards.asgidx",
                                  dir_);
  EXPECT_EQ(indexed_shards.code, 0) << indexed_shards.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  EXPECT_EQ(run.name, "shards");
  EXPECT_EQ(run.status, asg::RunStatus::Finished);
}

TEST_F(CliTest, ExportFramesWritesTheDecodedCanvasAsRgbaPngs) {
  asg::Animation a;
  a.width = 5;
  a.height = 3;
  for (int t = 0; t < 3; ++t) {
    asg::RgbaFrame f;
    for (int i = 0; i < 15; ++i) f.rgba.insert(f.rgba.end(), {static_cast<uint8_t>(80 * t), 10, 200, static_cast<uint8_t>(i * 17)});
    a.frames.push_back(f);
  }
  asg::write_webp(dir_ / "s.webp", a);
  Result r = run_asg("data export-frames s.webp frames", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  for (int t = 0; t < 3; ++t) {
    const auto png = asg::read_sticker(dir_ / "frames" / fmt::format("frame_{:04}.png", t));
    EXPECT_EQ(png.format, asg::MediaFormat::Png);
    EXPECT_EQ(png.animation.frames.at(0).rgba, a.frames[t].rgba) << t;
  }
  EXPECT_FALSE(fs::exists(dir_ / "frames/frame_0003.png"));
  std::ofstream(dir_ / "bad.gif") << "GIF89a";
  Result bad = run_asg("data export-frames bad.gif frames2", dir_);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
}
