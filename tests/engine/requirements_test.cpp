// What plugins declare they need from the others (Factory::requirements) is checked by the core, whose
// messages name the file, the section and the plugin. And an Experiment's plugin handles outlive the
// catalog that described them.
#include <gtest/gtest.h>

#include "asg/build.h"
#include "asg/experiment.h"
#include "test_paths.h"

namespace {

const std::filesystem::path kQuickstart = asg::testing::source_dir() / "experiments" / "quickstart.toml";

asg::Experiment quickstart() {
  asg::PluginCatalog catalog;  // destroyed on return: the experiment must not need it
  return asg::load_experiment(kQuickstart, {}, catalog);
}

// The synthetic stickers' own announcement, as the quickstart dataset makes it.
asg::DatasetInfo sprite_info() {
  asg::DatasetInfo info;
  info.frames = 8;
  info.height = info.width = 16;
  info.label_keys = {"colour", "shape", "direction"};
  info.vocabulary = {"sprite-vocabulary", "1.0.0"};
  return info;
}

std::string refusal(const asg::Experiment& exp, const asg::DatasetInfo& info) {
  try {
    asg::check_plugin_requirements(exp, info);
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Requirements, TheQuickstartDatasetSatisfiesItsMetrics) {
  EXPECT_EQ(refusal(quickstart(), sprite_info()), "");
}

TEST(Requirements, MissingLabelKeysAreRefusedNamingFileSectionPluginAndWhatIsOffered) {
  asg::DatasetInfo info = sprite_info();
  info.label_keys = {"colour", "direction", "mood"};
  EXPECT_EQ(refusal(quickstart(), info),
            kQuickstart.string() +
                ": [metrics[0]] metric 'caption_accuracy' requires the label keys colour, shape, direction (missing: shape); "
                "[dataset] plugin 'synthetic_stickers' provides the label keys colour, direction, mood. Pick a dataset that "
                "provides it, or another metric plugin.");
}

TEST(Requirements, AnIncompatibleVocabularyIsRefused) {
  asg::DatasetInfo info = sprite_info();
  info.vocabulary = {"sprite-vocabulary", "2.0.0"};
  EXPECT_EQ(refusal(quickstart(), info),
            kQuickstart.string() +
                ": [metrics[0]] metric 'caption_accuracy' requires labels from the vocabulary sprite-vocabulary 1.0.0 (or a "
                "newer 1.x); [dataset] plugin 'synthetic_stickers' provides vocabulary sprite-vocabulary 2.0.0. Pick a "
                "dataset that provides it, or another metric plugin.");
  info.vocabulary = {"sprite-vocabulary", "1.4.0"};  // a newer minor serves
  EXPECT_EQ(refusal(quickstart(), info), "");
}

TEST(Requirements, AnyPluginMayRequireAFrameCount) {
  asg::Experiment exp = quickstart();
  for (auto& slot : exp.slots) {
    if (slot.section != "temporal") continue;
    auto record = std::make_shared<asg::PluginRecord>(*slot.record);
    record->factory.requirements.min_frames = 16;
    slot.record = record;
  }
  EXPECT_EQ(refusal(exp, sprite_info()),
            kQuickstart.string() +
                ": [temporal] temporal 'temporal_conv' requires clips of at least 16 frames; [dataset] plugin "
                "'synthetic_stickers' provides 8 frames. Pick a dataset that provides it, or another temporal plugin.");
}

TEST(Requirements, AnExperimentOutlivesTheCatalogItWasValidatedWith) {
  asg::Experiment exp = quickstart();  // its catalog is gone
  asg::NoiseSchedule schedule = asg::noise_schedule(exp);
  asg::BuiltExperiment built = asg::build_experiment(exp, schedule, 0);
  EXPECT_EQ(built.info.frames, 8);
  EXPECT_EQ(built.metrics.size(), exp.metric_slots().size());
  EXPECT_GT(built.text_encoder->dim(), 0);
}
