// asg::Error's key function (its vtable lives here).
#include "asg/error.h"

namespace asg {

Error::~Error() = default;

}  // namespace asg
