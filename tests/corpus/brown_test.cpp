// The Brown corpus back to plain text (tags stripped, quotes and spacing).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/corpus/brown.h"

namespace tpp::test {
namespace {

TEST(BrownTest, TagsStrippedAndSpacingRestored) {
  const std::string tagged =
      "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' that/cs "
      "Atlanta's/np$ election/nn ,/, which/wdt had/hvd (/( over-all/jj )/) charge/nn ;/. 1/2/cd of/in it/ppo ./.\n"
      "\n\n\tHe/pps said/vbd :/: ``/`` Go/vb !/. !/. ''/'' Why/wrb ?/. ?/. ./.\n";
  EXPECT_EQ(corpus::brown_to_text(tagged),
            "The Fulton County said \"no evidence\" that Atlanta's election, which had (over-all) charge; 1/2 of it.\n"
            "He said: \"Go!\" Why?.\n");
}

TEST(BrownTest, DirectoryConvertedInOrderAndErrorsNamed) {
  const std::string dir = temp_dir("brown");
  std::ofstream(dir + "/cb01") << "\tSecond/od ./.\n";
  std::ofstream(dir + "/ca01") << "\tFirst/od ./.\n";
  std::ofstream(dir + "/README") << "not a corpus file";
  EXPECT_EQ(corpus::prepare_brown(dir, dir + "/out.txt"), 2);
  std::ifstream in(dir + "/out.txt");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "First.\n\nSecond.\n");
  const std::string empty = temp_dir("brown_empty");
  try {
    corpus::prepare_brown(empty, empty + "/out.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no Brown corpus files"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpp::test
