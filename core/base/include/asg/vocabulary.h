// Label vocabularies shared between datasets and metrics.
//
// A metric that reads a dataset's labels (say caption_accuracy, which needs to know what "a red star" looks
// like) only makes sense on data drawn from the vocabulary it was written for. The dataset announces the
// vocabulary it uses in DatasetInfo::vocabulary; a metric declares the one it requires with
// Factory::requires(...). The core compares the two before anything is trained and refuses a mismatch,
// naming both sides. No torch.
#pragma once

#include <string>

namespace asg {

struct Vocabulary {
  std::string name;     // e.g. "sprite-vocabulary"; empty = the dataset uses no shared vocabulary
  std::string version;  // semantic version "MAJOR.MINOR.PATCH"

  std::string text() const { return name.empty() ? std::string("none") : name + " " + version; }
};

// Whether `provided` can serve a consumer written for `required`: the same name, the same major
// version and a minor at least as new. An unparsable version never satisfies.
bool vocabulary_satisfies(const Vocabulary& provided, const Vocabulary& required);

}  // namespace asg
