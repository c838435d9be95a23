// Text in ad images: Tesseract on real photos with words drawn on them, and
// the contact details found among the words.
#include "spoor/text.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "spoor/image.h"
#include "test_util.h"

namespace spoor {
namespace {

TextWord Word(std::string text, int x, int y, int w = 40, int h = 20) {
  return {std::move(text), Box{x, y, w, h}, 90, Box{x, y, w, h}};
}

Image Decode(const cv::Mat& bgr) {
  auto image = DecodeImage(testing::EncodePng(bgr), DecodeOptions{});
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *image : Image{};
}

// Dark words `height` pixels tall with their baseline at `y`, the way ads
// stamp a number on a photo.
cv::Mat Stamp(const cv::Mat& photo, const std::string& text, int y,
              int height) {
  cv::Mat out = photo.clone();
  double scale = height / 22.0;  // FONT_HERSHEY_DUPLEX is 22 px at scale 1
  cv::putText(out, text, cv::Point(photo.cols / 20, y), cv::FONT_HERSHEY_DUPLEX,
              scale, cv::Scalar(40, 20, 20), std::max(2, height / 10));
  return out;
}

std::string Joined(const std::vector<TextWord>& words) {
  std::string s;
  for (const TextWord& w : words) s += w.text + " ";
  return s;
}

TEST(NormalisePhoneTest, InternationalAndNationalFormsCompareEqual) {
  EXPECT_EQ(NormalisePhone("+33 6 12 34 56 78"), "612345678");
  EXPECT_EQ(NormalisePhone("06.12.34.56.78"), "612345678");
  EXPECT_EQ(NormalisePhone("0612345678"), "612345678");
  EXPECT_EQ(NormalisePhone("(06) 12-34-56-78"), "612345678");
  EXPECT_EQ(NormalisePhone("+254 710 555 0100"), "105550100");
  EXPECT_NE(NormalisePhone("+254 710 555 0100"),
            NormalisePhone("+254 711 555 0101"));
}

TEST(NormalisePhoneTest, RefusesWhatIsNotAPhoneNumber) {
  EXPECT_EQ(NormalisePhone("12 34 56"), "");          // too few digits
  EXPECT_EQ(NormalisePhone("1234567890123456"), "");  // too many
  EXPECT_EQ(NormalisePhone("06 12 34 56 7x"), "");    // a letter
  EXPECT_EQ(NormalisePhone("06 12 +34 56 78"), "");   // + inside
  EXPECT_EQ(NormalisePhone(""), "");
}

TEST(FindContactsTest, JoinsAPhoneNumberAcrossWordsOfOneLine) {
  // Out of order, and the last group sits a little higher (a taller font).
  std::vector<TextWord> words = {
      Word("56", 250, 102),        Word("call", 0, 100), Word("+33", 50, 100),
      Word("6", 100, 100),         Word("12", 150, 100), Word("34", 200, 100),
      Word("78.", 300, 96, 40, 28)};
  std::vector<Contact> contacts = FindContacts(words);
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_EQ(contacts[0].kind, ContactKind::kPhone);
  EXPECT_EQ(contacts[0].value, "612345678");
  EXPECT_EQ(contacts[0].text, "+33 6 12 34 56 78");
  EXPECT_EQ(contacts[0].box, (Box{50, 96, 290, 28}));
}

TEST(FindContactsTest, DropsANumberWithAnUncertainGroup) {
  std::vector<TextWord> words = {Word("06", 0, 0), Word("12", 50, 0),
                                 Word("34", 100, 0), Word("56", 150, 0),
                                 Word("78", 200, 0)};
  ASSERT_EQ(FindContacts(words).size(), 1u);
  words[2].confidence = 72;  // "34" might be "54"
  EXPECT_TRUE(FindContacts(words).empty());
}

TEST(FindContactsTest, DoesNotJoinDigitsOfDifferentLinesOrFarApart) {
  std::vector<TextWord> words = {Word("0612", 0, 0), Word("345678", 50, 100),
                                 Word("2026", 0, 200), Word("12345", 600, 200)};
  EXPECT_TRUE(FindContacts(words).empty());
}

TEST(FindContactsTest, EmailsAndHandlesLowerCasedEachOnce) {
  std::vector<TextWord> words = {Word("Mail:", 0, 0),
                                 Word("Ivory.Deals@Example.com", 60, 0),
                                 Word("or", 0, 50),
                                 Word("@Carver_KE", 40, 50),
                                 Word("ivory.deals@example.com", 0, 100),
                                 Word("@me", 0, 150),
                                 Word("a@b", 0, 200)};
  std::vector<Contact> contacts = FindContacts(words);
  ASSERT_EQ(contacts.size(), 2u);
  EXPECT_EQ(contacts[0].kind, ContactKind::kEmail);
  EXPECT_EQ(contacts[0].value, "ivory.deals@example.com");
  EXPECT_EQ(contacts[0].text, "Ivory.Deals@Example.com");
  EXPECT_EQ(contacts[1].kind, ContactKind::kHandle);
  EXPECT_EQ(contacts[1].value, "@carver_ke");
}

TEST(ReadTextTest, ReadsAPhoneNumberStampedOnAPhoto) {
  cv::Mat photo = testing::Wallpaper("Autumn", cv::Size(800, 600));
  cv::Mat stamped = testing::AddText(photo, "+33 6 12 34 56 78");
  Image image = Decode(stamped);
  auto words = ReadText(image);
  ASSERT_OK(words);
  std::vector<Contact> contacts = FindContacts(*words);
  ASSERT_FALSE(contacts.empty()) << Joined(*words);
  EXPECT_EQ(contacts[0].kind, ContactKind::kPhone);
  EXPECT_EQ(contacts[0].value, "612345678") << Joined(*words);
  // AddText draws the number at the bottom (baseline at 90%) and again, after
  // "call", near the top: every word read lies on one of those bands.
  for (const TextWord& w : *words) {
    int middle = w.box.y + w.box.height / 2;
    EXPECT_TRUE(middle < 600 / 4 || middle > 600 * 3 / 4)
        << w.text << " at y " << w.box.y;
  }
}

TEST(ReadTextTest, BoxesAreInOriginalPixels) {
  // Decoded at 1024 px at most: a 2048 px photo's boxes are scaled back.
  cv::Mat photo = testing::Wallpaper("Autumn", cv::Size(2048, 1536));
  Image image = Decode(Stamp(photo, "06 12 34 56 78", 400, 80));
  ASSERT_EQ(image.original_width, 2048);
  auto words = ReadText(image);
  ASSERT_OK(words);
  std::vector<Contact> contacts = FindContacts(*words);
  ASSERT_FALSE(contacts.empty()) << Joined(*words);
  const Box& b = contacts[0].box;
  EXPECT_GT(b.y + b.height, 400 - 10);  // around the baseline, full size
  EXPECT_LT(b.y, 400 - 60);
  EXPECT_GT(b.width, 2048 / 4);  // the number spans a good part of the width
  // Each word lies within the line it was read in.
  for (const TextWord& w : *words) {
    EXPECT_LE(w.line.x, w.box.x) << w.text;
    EXPECT_LE(w.line.y, w.box.y) << w.text;
    EXPECT_GE(w.line.x + w.line.width, w.box.x + w.box.width) << w.text;
    EXPECT_GE(w.line.y + w.line.height, w.box.y + w.box.height) << w.text;
  }
}

TEST(ReadTextTest, ReadsAScreenshotsWords) {
  cv::Mat item = testing::LoadBgr(testing::kOpenCvData + "/box.png");
  Image image = Decode(testing::Screenshot(item));
  auto words = ReadText(image);
  ASSERT_OK(words);
  EXPECT_NE(Joined(*words).find("Marketplace"), std::string::npos)
      << Joined(*words);
  EXPECT_TRUE(FindContacts(*words).empty()) << Joined(*words);
}

TEST(ReadTextTest, LinesAreFoundWhetherOrNotTheyAreRead) {
  // Words Tesseract reads, and a row of glyph-sized plus signs, in which it
  // reads no letter or digit (as yellow words on a cream table read nothing
  // confident): both are text lines, and the matcher discounts keypoints on
  // both.
  cv::Mat photo = testing::Wallpaper("Autumn", cv::Size(800, 600));
  cv::Mat marked = Stamp(photo, "06 12 34 56 78", 120, 30);
  for (int i = 0; i < 8; ++i) {
    cv::line(marked, {60 + 40 * i, 415}, {82 + 40 * i, 415},
             cv::Scalar(40, 20, 20), 3);
    cv::line(marked, {71 + 40 * i, 400}, {71 + 40 * i, 430},
             cv::Scalar(40, 20, 20), 3);
  }
  Image image = Decode(marked);
  std::vector<Box> lines;
  auto words = ReadText(image, {}, &lines);
  ASSERT_OK(words);
  ASSERT_FALSE(words->empty());
  auto covers = [](const Box& line, int x, int y) {
    return line.x <= x && x < line.x + line.width && line.y <= y &&
           y < line.y + line.height;
  };
  // Every word's line is among them, and one line covers the marks, where
  // no word was read.
  for (const TextWord& w : *words) {
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const Box& l) {
      return l == w.line;
    })) << w.text;
    EXPECT_FALSE(covers(w.box, 200, 415)) << w.text;
  }
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const Box& l) {
    return covers(l, 80, 415) && covers(l, 340, 415) && l.height < 100;
  }));
  // Without the out-parameter the words are the same.
  auto again = ReadText(image);
  ASSERT_OK(again);
  EXPECT_EQ(Joined(*again), Joined(*words));
}

TEST(ReadTextTest, APhotoWithoutTextHasNoContacts) {
  for (const char* name : {"graf1.png", "box_in_scene.png", "baboon.jpg"}) {
    Image image = Decode(testing::LoadBgr(testing::kOpenCvData + "/" + name));
    auto words = ReadText(image);
    ASSERT_OK(words);
    EXPECT_TRUE(FindContacts(*words).empty()) << name << ": " << Joined(*words);
  }
}

}  // namespace
}  // namespace spoor
