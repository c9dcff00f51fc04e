// The batch source on its own: order, prefetching, saved positions, decode threads and the OpenMP threads they
// must not start, dataset failures and bad samples, streamed tar shards; and the seed streams runs derive.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "asg/plugin_catalog.h"
#include "asg/stages/batch_source.h"
#include "conformance.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using asg::testing::build_catalog;

namespace {

std::shared_ptr<asg::Dataset> stickers(int64_t train_size) {
  auto values = asg::default_params("ds", build_catalog().find("dataset", "synthetic_stickers")->factory.params).values();
  values["train_size"] = train_size;
  values["size"] = int64_t{16};
  values["frames"] = int64_t{4};
  return build_catalog().create<asg::Dataset>("synthetic_stickers", asg::Params("ds", values));
}

std::vector<asg::TrainBatch> take(asg::BatchSource& source, int n) {
  std::vector<asg::TrainBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(source.next());
  return out;
}

asg::LoaderOptions loader(int64_t batch, uint64_t seed, int64_t prefetch, int64_t workers = 1,
                         asg::DataHealth* health = nullptr) {
  asg::LoaderOptions o;
  o.batch_size = batch;
  o.order_seed = seed;
  o.prefetch_batches = prefetch;
  o.workers = workers;
  o.health = health;
  return o;
}

void expect_same(const asg::TrainBatch& a, const asg::TrainBatch& b, const std::string& what) {
  EXPECT_TRUE(torch::equal(a.x0, b.x0)) << what;
  EXPECT_EQ(a.captions, b.captions) << what;
  EXPECT_EQ(a.after.cursor, b.after.cursor) << what;
  EXPECT_TRUE(torch::equal(a.after.epoch_rng, b.after.epoch_rng)) << what;
}

// A dataset whose train sample `bad` is a broken file.
class BrokenAt final : public asg::Dataset {
 public:
  BrokenAt(std::shared_ptr<asg::Dataset> inner, int64_t bad) : inner_(std::move(inner)), bad_(bad) {}
  asg::DatasetInfo info() const override { return inner_->info(); }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override {
    if (i == bad_) throw asg::data_error("/data/broken.gif: truncated LZW stream");
    return inner_->get(s, i);
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
  int64_t bad_;
};

// A dataset whose decoding runs a tensor op large enough for LibTorch to split it across its threads, as
// decoding and resizing big frames with LibTorch ops do. (at::parallel_for itself would run serially here:
// its OpenMP pragma is compiled into the caller, and ASG Lab does not build with -fopenmp.)
class ParallelDecode final : public asg::Dataset {
 public:
  explicit ParallelDecode(std::shared_ptr<asg::Dataset> inner) : inner_(std::move(inner)) {}
  asg::DatasetInfo info() const override { return inner_->info(); }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override {
    torch::empty({1 << 20}).fill_(1.0f);
    return inner_->get(s, i);
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
};

int64_t threads_of_this_process() {
  return std::distance(fs::directory_iterator("/proc/self/task"), fs::directory_iterator{});
}

}  // namespace

TEST(BatchSource, PrefetchingChangesNeitherBatchesNorOrderNorPositions) {
  auto data = stickers(12);  // batches of 5 over 12 samples: epochs turn inside batches
  asg::BatchSource inline_source(data, loader(5, 42, 0));
  asg::BatchSource prefetching(data, loader(5, 42, 3));
  auto a = take(inline_source, 7), b = take(prefetching, 7);
  for (int i = 0; i < 7; ++i) expect_same(a[i], b[i], "batch " + std::to_string(i));
  EXPECT_EQ(a[0].x0.sizes(), (std::vector<int64_t>{5, 4, 4, 16, 16}));  // model space [B, C, T, H, W]
  // Every sample once per epoch: the first 12 indices drawn are a permutation.
  EXPECT_EQ(a[1].after.cursor, 10);
  EXPECT_EQ(a[2].after.cursor, 3);  // the third batch took 2 from epoch 1 and 3 from epoch 2
  EXPECT_FALSE(torch::equal(a[1].after.epoch_rng, a[2].after.epoch_rng));
  asg::BatchSource other_seed(data, loader(5, 43, 0));
  EXPECT_NE(take(other_seed, 1)[0].captions, a[0].captions);
}

TEST(BatchSource, ContinuesExactlyFromASavedPosition) {
  auto data = stickers(12);
  asg::BatchSource first(data, loader(5, 7, 2, 3));
  auto all = take(first, 8);
  // Through a checkpoint's tensors, as a resumed run gets them.
  auto saved = all[3].after.to_checkpoint();
  asg::BatchSource resumed(data, loader(5, 7, 2, 1), asg::DataPosition::from_checkpoint(saved, "ckpt.pt"));
  auto rest = take(resumed, 4);
  for (int i = 0; i < 4; ++i) expect_same(rest[i], all[4 + i], "batch " + std::to_string(4 + i));
}

TEST(BatchSource, ACheckpointWithoutADataPositionIsRefusedNamingTheFile) {
  try {
    asg::DataPosition::from_checkpoint({}, "/runs/x/checkpoints/step_0000010.pt");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()).rfind("/runs/x/checkpoints/step_0000010.pt: the checkpoint has no data position", 0), 0u);
  }
}

TEST(BatchSource, BatchesDoNotDependOnTheNumberOfDecodeThreads) {
  auto data = stickers(23);
  asg::BatchSource reference(data, loader(6, 9, 0));
  auto expected = take(reference, 9);  // several epochs, turning inside batches
  for (int64_t workers : {1, 2, 5}) {
    for (int64_t prefetch : {1, 4}) {
      asg::BatchSource threaded(data, loader(6, 9, prefetch, workers));
      auto got = take(threaded, 9);
      for (int i = 0; i < 9; ++i)
        expect_same(got[i], expected[i], fmt::format("batch {}, {} workers, prefetch {}", i, workers, prefetch));
    }
  }
}

// A decode worker that started an OpenMP team of its own would leave the process with more OpenMP threads than
// the training thread's team: on a machine with as many cores as that team, libgomp then stops spinning between
// parallel regions and the training threads sleep and wake around every op (a 1.5x slower quickstart step).
TEST(BatchSource, DecodeWorkersStartNoThreadsOfTheirOwn) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  torch::empty({1 << 20}).fill_(1.0f);  // the training thread's team exists before counting
  const int64_t before = threads_of_this_process();
  {
    asg::BatchSource source(std::make_shared<ParallelDecode>(stickers(12)), loader(4, 5, 2, 3));
    take(source, 4);
    EXPECT_EQ(threads_of_this_process(), before + 3) << "3 decode workers and no other thread";
  }
  at::set_num_threads(saved);
}

TEST(BatchSource, ADatasetErrorOnAWorkerReachesTheTrainingThreadAfterTheGoodBatches) {
  auto data = stickers(12);
  // The first epoch's order under seed 5 is this permutation (the source draws it the same way); break
  // its fifth sample, the first of the second batch of 4.
  at::Generator g = at::detail::createCPUGenerator(5);
  const int64_t fifth = torch::randperm(12, g, torch::kLong)[4].item<int64_t>();
  for (int prefetch : {0, 3}) {
    asg::BatchSource source(std::make_shared<BrokenAt>(data, fifth), loader(4, 5, prefetch, 2));
    EXPECT_NO_THROW(source.next()) << "prefetch " << prefetch;
    try {
      source.next();
      ADD_FAILURE() << "expected the dataset's error, prefetch " << prefetch;
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
      EXPECT_STREQ(e.what(), "/data/broken.gif: truncated LZW stream");
    }
  }
}

TEST(BatchSource, ABadSampleIsSkippedReportedOnceAndReplacedByTheNextInOrder) {
  auto data = stickers(12);
  at::Generator g = at::detail::createCPUGenerator(5);
  auto perm = torch::randperm(12, g, torch::kLong);
  const int64_t fifth = perm[4].item<int64_t>();
  auto broken = std::make_shared<BrokenAt>(data, fifth);
  for (int prefetch : {0, 3}) {
    std::vector<asg::RejectedSample> reported;
    asg::DataHealth health(*broken, 0.5, [&](const asg::RejectedSample& r) { reported.push_back(r); });
    asg::BatchSource source(broken, loader(4, 5, prefetch, 2, &health));
    auto batches = take(source, 7);  // past the second epoch: the bad sample comes up twice
    // The second batch is samples 6..9 of the order: the bad fifth one was replaced by the next.
    std::vector<std::string> expected;
    for (int i = 5; i < 9; ++i) expected.push_back(data->get(asg::Split::Train, perm[i].item<int64_t>()).caption);
    EXPECT_EQ(batches[1].captions, expected) << "prefetch " << prefetch;
    EXPECT_EQ(batches[1].after.cursor, 9);
    ASSERT_EQ(reported.size(), 1u) << "reported once, though read in two epochs";
    EXPECT_EQ(reported[0].id, fmt::format("train/{}", fifth));
    EXPECT_EQ(reported[0].reason, "/data/broken.gif: truncated LZW stream");
    EXPECT_EQ(health.bad(), 1);
    EXPECT_EQ(health.rows(), 12 + 256 + 256);
  }
}

namespace {
// A streamed dataset whose stream breaks (throws from next()) after `good` samples.
class BreakingStream final : public asg::Dataset {
 public:
  BreakingStream(std::shared_ptr<asg::Dataset> inner, int good) : inner_(std::move(inner)), good_(good) {}
  asg::DatasetInfo info() const override {
    auto info = inner_->info();
    info.sequential = true;
    return info;
  }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override { return inner_->get(s, i); }
  std::unique_ptr<asg::SampleStream> open_stream(asg::Split, asg::StreamSlice, int64_t, uint64_t) const override {
    struct Stream final : asg::SampleStream {
      const BreakingStream* owner;
      int at = 0;
      std::optional<asg::StreamItem> next() override {
        if (at == owner->good_) throw asg::data_error("shard-000003.tar: malformed tar shard near byte 512");
        const int index = at++;
        return asg::StreamItem{std::to_string(index), [this, index] { return owner->get(asg::Split::Train, index); }};
      }
    };
    auto s = std::make_unique<Stream>();
    s->owner = this;
    return s;
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
  int good_;
};
}  // namespace

TEST(BatchSource, AStreamThatBreaksEndsTheDataWithItsErrorEvenWhenBadSamplesAreTolerated) {
  auto broken = std::make_shared<BreakingStream>(stickers(12), 6);
  for (int prefetch : {0, 2}) {
    asg::DataHealth health(*broken, 1.0, nullptr);
    asg::BatchSource source(broken, loader(4, 1, prefetch, 3, &health));
    EXPECT_NO_THROW(source.next()) << prefetch;  // samples 0..3
    try {
      source.next();
      ADD_FAILURE() << "expected the stream's error, prefetch " << prefetch;
    } catch (const asg::Error& e) {
      EXPECT_STREQ(e.what(), "shard-000003.tar: malformed tar shard near byte 512");
    }
  }
}

TEST(BatchSource, TooManyBadSamplesFailTheRunWithTheCounts) {
  auto data = stickers(12);
  asg::DataHealth health(*std::make_shared<BrokenAt>(data, 3), 0.0, nullptr);
  asg::BatchSource source(std::make_shared<BrokenAt>(data, 3), loader(12, 1, 2, 2, &health));
  try {
    source.next();
    FAIL() << "expected the bad-fraction error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()), "1 of 524 samples (0.19%) are bad, over [data] max_bad_fraction = 0 (0.00%); the "
                                     "latest: /data/broken.gif: truncated LZW stream (every skipped sample and its reason "
                                     "is in the run's data_skipped.tsv)");
  }
}

TEST(DeriveSeed, KeepsTheStreamsEveryRecordedRunWasSeededWith) {
  // Values of the formula as first shipped (FNV-1a from kAsgSeedFnvBasis, then splitmix64's mix of
  // seed + golden * (h | 1)), computed independently: the data order, initial weights and noise of every
  // recorded run depend on them.
  EXPECT_EQ(asg::derive_seed(0, "train.order"), 6530070917925396702ull);
  EXPECT_EQ(asg::derive_seed(12345, "init.temporal.down0_0"), 8125910775043960206ull);
  EXPECT_EQ(asg::derive_seed(9223372036854775807ull, ""), 1353603092574144253ull);
}

TEST(BatchSource, StreamsTarShardsAndResumesMidEpoch) {
  auto values = asg::default_params("wds", build_catalog().find("dataset", "webdataset")->factory.params).values();
  values["shards"] = std::vector<std::string>{(asg::testing::conformance_corpus() / "shard-*.tar").string()};
  values["height"] = values["width"] = int64_t{8};
  values["frames"] = int64_t{4};
  values["split_fractions"] = std::vector<double>{1.0, 0.0};
  values["shuffle_buffer"] = int64_t{3};
  auto shards = build_catalog().create<asg::Dataset>("webdataset", asg::Params("wds", values), asg::DatasetContext{});
  ASSERT_TRUE(shards->info().sequential);
  const int64_t train = shards->size(asg::Split::Train);
  ASSERT_EQ(train, 8);
  asg::BatchSource inline_source(shards, loader(3, 21, 0));
  auto all = take(inline_source, 9);  // 27 samples: more than three epochs of 8
  EXPECT_EQ(all[0].after.epoch, 0);
  EXPECT_EQ(all[0].after.cursor, 3);
  EXPECT_EQ(all[2].after.epoch, 1);  // 2 from epoch 0, then 1 from epoch 1
  EXPECT_EQ(all[2].after.cursor, 1);
  // Each epoch holds every train sample once.
  std::multiset<std::string> first_epoch(all[0].captions.begin(), all[0].captions.end());
  first_epoch.insert(all[1].captions.begin(), all[1].captions.end());
  first_epoch.insert(all[2].captions.begin(), all[2].captions.begin() + 2);
  EXPECT_EQ(std::set<std::string>(first_epoch.begin(), first_epoch.end()).size(), 8u);
  // Threads change nothing; a saved position continues exactly.
  asg::BatchSource threaded(shards, loader(3, 21, 2, 3));
  auto same = take(threaded, 9);
  for (int i = 0; i < 9; ++i) {
    EXPECT_TRUE(torch::equal(same[i].x0, all[i].x0)) << i;
    EXPECT_EQ(same[i].captions, all[i].captions) << i;
  }
  auto saved = all[2].after.to_checkpoint();
  EXPECT_TRUE(saved.count("data.epoch"));
  asg::BatchSource resumed(shards, loader(3, 21, 2, 2), asg::DataPosition::from_checkpoint(saved, "ckpt.pt"));
  for (int i = 3; i < 9; ++i) {
    auto batch = resumed.next();
    EXPECT_TRUE(torch::equal(batch.x0, all[i].x0)) << i;
    EXPECT_EQ(batch.after.epoch, all[i].after.epoch);
    EXPECT_EQ(batch.after.cursor, all[i].after.cursor);
  }
  // A random-access position cannot resume a stream.
  auto random_access = inline_source.next().after;
  random_access.epoch = -1;
  random_access.epoch_rng = torch::zeros({5008}, torch::kUInt8);
  EXPECT_THROW(asg::BatchSource(shards, loader(3, 21, 0), random_access), asg::Error);
}
