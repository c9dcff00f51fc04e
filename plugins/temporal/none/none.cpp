// none: no temporal mixing; each frame is processed independently (the "no temporal module" ablation).
#include <torch/torch.h>

#include "asg/kinds/temporal.h"
#include "asg/plugin.h"

namespace {
class IdentityTemporal final : public asg::TemporalModule {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
};
}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "none", "1.0.0", "identity: frames are processed independently (ablation baseline)", std::vector<asg::ParamSpec>{},
    [](const asg::Params&, const asg::TemporalContext&) { return std::make_shared<IdentityTemporal>(); }))
