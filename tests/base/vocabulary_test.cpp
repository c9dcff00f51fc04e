#include "asg/vocabulary.h"

#include <gtest/gtest.h>

using asg::Vocabulary;
using asg::vocabulary_satisfies;

TEST(Vocabulary, SameNameSameMajorAndANewEnoughMinorSatisfy) {
  const Vocabulary required{"sprite-vocabulary", "1.2.0"};
  EXPECT_TRUE(vocabulary_satisfies({"sprite-vocabulary", "1.2.0"}, required));
  EXPECT_TRUE(vocabulary_satisfies({"sprite-vocabulary", "1.2.7"}, required));
  EXPECT_TRUE(vocabulary_satisfies({"sprite-vocabulary", "1.3.0"}, required));
  EXPECT_FALSE(vocabulary_satisfies({"sprite-vocabulary", "1.1.9"}, required));  // older minor: may lack names
  EXPECT_FALSE(vocabulary_satisfies({"sprite-vocabulary", "2.2.0"}, required));  // new major: meanings changed
  EXPECT_FALSE(vocabulary_satisfies({"other-vocabulary", "1.2.0"}, required));
  EXPECT_FALSE(vocabulary_satisfies({}, required));
}

TEST(Vocabulary, UnparsableVersionsNeverSatisfy) {
  EXPECT_FALSE(vocabulary_satisfies({"v", "1.2"}, {"v", "1.0.0"}));
  EXPECT_FALSE(vocabulary_satisfies({"v", "1.2.0-beta"}, {"v", "1.0.0"}));
  EXPECT_FALSE(vocabulary_satisfies({"v", "1.2.0"}, {"v", "one"}));
  EXPECT_EQ(Vocabulary{}.text(), "none");
  EXPECT_EQ((Vocabulary{"v", "1.0.0"}.text()), "v 1.0.0");
}
