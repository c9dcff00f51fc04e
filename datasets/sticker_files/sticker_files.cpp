// sticker_files: a dataset of real sticker files named by a manifest (JSONL, CSV, VSD2M records) or a
// folder with caption sidecars. Decoding, frame selection, alpha and resizing as asg/media/transform.h
// documents; bad rows and files as the Dataset contract says. See README.md.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "asg/data/manifest.h"
#include "asg/hash.h"
#include "asg/kinds/dataset.h"
#include "asg/media/sticker_file.h"
#include "asg/media/transform.h"
#include "asg/plugin.h"

namespace asg::sticker_files {
namespace {

ManifestOptions manifest_options(const Params& p) {
  ManifestOptions o;
  o.format = manifest_format_names().parse(p.str("format"), "format");
  o.root = p.str("root");
  o.path_field = p.str("path_field");
  o.caption_field = p.str("caption_field");
  o.id_field = p.str("id_field");
  o.split_field = p.str("split_field");
  o.label_fields = p.strs("label_fields");
  for (const auto& f : p.strs("formats")) o.formats.push_back(f);
  o.subset = p.str("subset");
  o.subset_field = p.str("subset_field");
  o.set_split_fractions(p.reals("split_fractions"));
  o.check_files = p.boolean("check_files");
  return o;
}

class StickerFiles final : public Dataset {
 public:
  StickerFiles(const Params& p, const DatasetContext& context)
      : manifest_(p.str("index").empty() ? Manifest::read(p.str("manifest"), manifest_options(p))
                                         : Manifest::load_index(p.str("index"), p.str("manifest"), manifest_options(p))),
        transform_(SampleTransform::from(p)),
        limits_(context.limits),
        use_keyframes_(p.boolean("use_keyframes")),
        vocabulary_(corpus_vocabulary(p)) {
    for (size_t i = 0; i < manifest_.size(); ++i) by_split_[static_cast<int>(manifest_.split(i))].push_back(static_cast<uint32_t>(i));
    label_keys_ = manifest_.common_label_keys();  // what metrics needing labels may rely on
    for (const auto& r : manifest_.rejected()) rejected_.push_back(RejectedSample{r.id, r.reason});
  }

  DatasetInfo info() const override {
    return DatasetInfo{transform_.frames, transform_.height, transform_.width, transform_.fps,
                       label_keys_, vocabulary_};
  }

  int64_t size(Split split) const override { return static_cast<int64_t>(by_split_[static_cast<int>(split)].size()); }

  // Evaluation's read: whole clips (random_frames is a training augmentation).
  Sticker get(Split split, int64_t index) const override { return read(split, index, transform_.for_evaluation(), 0); }
  // Training's: random_frames drawn anew every epoch.
  Sticker get_in_epoch(Split split, int64_t index, int64_t epoch) const override { return read(split, index, transform_, epoch); }

  std::vector<RejectedSample> rejected() const override { return rejected_; }

 private:
  Sticker read(Split split, int64_t index, const SampleTransform& transform, int64_t epoch) const {
    const auto& rows = by_split_[static_cast<int>(split)];
    if (index < 0 || index >= static_cast<int64_t>(rows.size()))
      throw data_error(fmt::format("sticker_files: index {} outside the {} split (size {})", index, split_name(split), rows.size()));
    const Manifest::Row row = manifest_.row(rows[index]);
    const SampleFrames sample = load_sample(manifest_.root() / std::string(row.path), limits_, transform, transform.sample_seed(row.id, epoch),
                                            use_keyframes_ ? row.keyframes : std::vector<int64_t>{});
    return sticker_from_sample(sample, std::string(row.id), std::string(row.caption), row.labels,
                               transform.pad_short || transform.random_max > 0);
  }

  Manifest manifest_;
  SampleTransform transform_;
  DecodeLimits limits_;
  bool use_keyframes_;
  Vocabulary vocabulary_;
  std::array<std::vector<uint32_t>, 3> by_split_;
  std::vector<std::string> label_keys_;
  std::vector<RejectedSample> rejected_;
};

std::vector<ParamSpec> params() {
  std::vector<ParamSpec> p = {
      path_param("manifest", "", "the manifest file (JSONL, JSON array, CSV, VSD2M records) or a folder of stickers").must_set(),
      enum_param("format", ManifestFormat::Auto, manifest_format_names(),
                 "\"auto\": a folder if a directory, CSV if *.csv, else JSONL"),
      path_param("root", "", "where the manifest's relative paths start; empty = the manifest's folder"),
      string_param("path_field", "", "field with the sticker file; empty = \"path\" (vsd2m: \"visual_path\")"),
      string_param("caption_field", "", "field with the caption; empty = \"caption\" (vsd2m: \"eng_cap\", as VSD2M's code)"),
      string_param("id_field", "", "field with a unique sample id, else the path; empty = \"id\" (vsd2m: \"md5\")"),
      string_param("split_field", "split", "field with train/validation/test; rows without it are split by a hash of the id"),
      string_list_param("label_fields", {}, "fields copied into the sample's labels"),
      string_list_param("formats", {}, "vsd2m: keep only these fmt values (the paper's code keeps [\"gif\"]); empty = all"),
      string_param("subset", "all", "vsd2m: \"real\" or \"cartoon\" keeps that subset (needs subset_field)").one_of({"all", "real", "cartoon"}),
      string_param("subset_field", "domain", "vsd2m: the record field holding real/cartoon"),
      path_param("index", "", "a manifest index from `asg data index` (opens a large manifest without parsing it); refused if stale"),
      bool_param("check_files", true, "check every row's file exists and is not empty when opening (rejected rows otherwise)"),
      bool_param("use_keyframes", false, "vsd2m: use the record's precomputed keyframe_idx instead of frame_selection"),
  };
  for (auto& spec : corpus_params()) p.push_back(std::move(spec));
  for (auto& spec : transform_params(64, 8)) p.push_back(std::move(spec));
  return p;
}

}  // namespace
}  // namespace asg::sticker_files

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Dataset>(
    "sticker_files", "1.0.0",
    "real sticker files (GIF, WebP, PNG, JPEG, BMP, MP4, WebM) from a JSONL/CSV/VSD2M manifest or a captioned folder",
    asg::sticker_files::params(), [](const asg::Params& p, const asg::DatasetContext& ctx) {
      return std::make_shared<asg::sticker_files::StickerFiles>(p, ctx);
    }))
