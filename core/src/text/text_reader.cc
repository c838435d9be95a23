#include <omp.h>
#include <tesseract/baseapi.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "spoor/text.h"

namespace spoor {
namespace {

// One Tesseract instance per thread: TessBaseAPI is not thread-safe, and
// loading the model costs more than reading a line.
tesseract::TessBaseAPI* ThreadTesseract() {
  struct Holder {
    std::unique_ptr<tesseract::TessBaseAPI> api;
    bool tried = false;
  };
  thread_local Holder holder;
  if (!holder.tried) {
    holder.tried = true;
    auto api = std::make_unique<tesseract::TessBaseAPI>();
    // Tesseract writes its diagnostics to stderr unless told otherwise.
    api->SetVariable("debug_file", "/dev/null");
    if (api->Init(nullptr, "eng", tesseract::OEM_LSTM_ONLY) == 0) {
      api->SetPageSegMode(tesseract::PSM_SINGLE_LINE);
      api->SetVariable("debug_file", "/dev/null");
      holder.api = std::move(api);
    }
  }
  return holder.api.get();
}

// A candidate text line: where it is in the working image, and the strokes
// binarised dark on white.
struct Line {
  cv::Rect rect;  ///< of `strokes`, which may reach past the image's edge
  cv::Mat strokes;
  int glyphs = 0;       ///< stroke components of a glyph's height
  bool bright = false;  ///< strokes brighter than their surroundings
};

// Connected strokes at least 40% of the line's height: a line of text has
// several, a textured patch or an edge few.
int CountGlyphs(const cv::Mat& strokes) {
  cv::Mat labels, stats, centroids;
  int n = cv::connectedComponentsWithStats(strokes, labels, stats, centroids, 8,
                                           CV_32S);
  int glyphs = 0;
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_HEIGHT) * 10 >= strokes.rows * 4 &&
        stats.at<int>(i, cv::CC_STAT_AREA) >= 6)
      ++glyphs;
  return glyphs;
}

double Overlap(const cv::Rect& a, const cv::Rect& b) {
  double inter = (a & b).area();
  return inter / std::min(a.area(), b.area());
}

// Strokes brighter (top-hat) or darker (black-hat) than a window about a
// fortieth of the image across, joined along a line (gaps up to two
// windows); boxes shaped like a
// line of text, those with most glyphs first. Looked for in the grey image and
// in the darkest channel: yellow on light green is one grey, but not one
// minimum.
std::vector<Line> FindLines(const cv::Mat& bgr, int max_lines) {
  cv::Mat grey, darkest;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  std::vector<cv::Mat> channels;
  cv::split(bgr, channels);
  cv::min(channels[0], channels[1], darkest);
  cv::min(darkest, channels[2], darkest);
  const int k = std::max(9, std::max(grey.cols, grey.rows) / 40) | 1;
  const cv::Mat window =
      cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k));
  const cv::Mat along =
      cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * k, 3));
  std::vector<Line> found;
  for (const cv::Mat& plane : {grey, darkest}) {
    for (int op : {cv::MORPH_TOPHAT, cv::MORPH_BLACKHAT}) {
      cv::Mat hat, strokes, joined;
      cv::morphologyEx(plane, hat, op, window);
      cv::threshold(hat, strokes, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
      cv::morphologyEx(strokes, joined, cv::MORPH_CLOSE, along);
      std::vector<std::vector<cv::Point>> contours;
      cv::findContours(joined, contours, cv::RETR_EXTERNAL,
                       cv::CHAIN_APPROX_SIMPLE);
      for (const auto& c : contours) {
        cv::Rect r = cv::boundingRect(c);
        // Glyphs 8 px to a sixth of the picture tall, a line at least two
        // glyphs long, strokes filling part of the box (not a bar).
        if (r.height < 8 || r.height > grey.rows / 6 ||
            2 * r.width < 3 * r.height)
          continue;
        double fill =
            cv::countNonZero(strokes(r)) / static_cast<double>(r.area());
        if (fill < 0.1 || fill > 0.7) continue;
        int glyphs = CountGlyphs(strokes(r));
        if (glyphs < 2) continue;
        // A margin a third of the line's height, white beyond the picture's
        // edge: Tesseract misreads glyphs that touch the border.
        const int m = std::max(4, r.height / 3);
        cv::Rect padded(r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m);
        cv::Rect inside = padded & cv::Rect(0, 0, grey.cols, grey.rows);
        cv::Mat dark_on_white(padded.size(), CV_8U, cv::Scalar(255));
        cv::Mat part = dark_on_white(inside - padded.tl());
        cv::subtract(cv::Scalar(255), strokes(inside), part);
        found.push_back(
            {padded, dark_on_white, glyphs, op == cv::MORPH_TOPHAT});
      }
    }
  }
  std::stable_sort(
      found.begin(), found.end(), [](const Line& a, const Line& b) {
        return a.glyphs != b.glyphs ? a.glyphs > b.glyphs
                                    : a.rect.area() > b.rect.area();
      });
  // The same line seen in both planes is read once; seen both bright and
  // dark (the gaps between bright glyphs are dark strokes too) it is read
  // both ways, and the wrong way reads nothing confident.
  std::vector<Line> lines;
  for (Line& l : found) {
    if (static_cast<int>(lines.size()) == max_lines) break;
    if (std::none_of(lines.begin(), lines.end(), [&](const Line& kept) {
          return kept.bright == l.bright && Overlap(kept.rect, l.rect) > 0.5;
        }))
      lines.push_back(std::move(l));
  }
  return lines;
}

bool HasAlnum(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c); });
}

}  // namespace

absl::StatusOr<std::vector<TextWord>> ReadText(const Image& image,
                                               const TextOptions& options) {
  tesseract::TessBaseAPI* api = ThreadTesseract();
  if (api == nullptr)
    return absl::FailedPreconditionError(
        "text: Tesseract cannot load its English model (install "
        "tesseract-ocr-eng)");
  std::vector<TextWord> words;
  if (image.width <= 0 || image.height <= 0) return words;
  cv::Mat bgr(image.height, image.width, CV_8UC3,
              const_cast<std::uint8_t*>(image.bgr.data()));
  const double to_original = image.scale_to_original();
  // Tesseract asks OpenMP for four threads for each layer of each
  // character: on a busy two-core machine that costs 8x more than reading
  // on this thread alone. Dynamic adjustment (this thread's setting only)
  // lets the runtime give fewer.
  const int was_dynamic = omp_get_dynamic();
  omp_set_dynamic(1);
  for (const Line& line : FindLines(bgr, options.max_lines)) {
    api->SetImage(line.strokes.data, line.strokes.cols, line.strokes.rows, 1,
                  static_cast<int>(line.strokes.step));
    // Screen text is about 70 dpi; without it Tesseract guesses per image.
    api->SetSourceResolution(70);
    if (api->Recognize(nullptr) != 0) continue;
    std::unique_ptr<tesseract::ResultIterator> it(api->GetIterator());
    if (!it) continue;
    do {
      std::unique_ptr<char[]> text(it->GetUTF8Text(tesseract::RIL_WORD));
      if (!text) continue;
      float confidence = it->Confidence(tesseract::RIL_WORD);
      std::string s(text.get());
      if (confidence < options.min_confidence || !HasAlnum(s)) continue;
      int x1, y1, x2, y2;
      if (!it->BoundingBox(tesseract::RIL_WORD, &x1, &y1, &x2, &y2)) continue;
      TextWord w;
      w.text = std::move(s);
      w.confidence = confidence;
      x1 = std::max(0, line.rect.x + x1);
      y1 = std::max(0, line.rect.y + y1);
      x2 = std::min(image.width, line.rect.x + x2);
      y2 = std::min(image.height, line.rect.y + y2);
      if (x2 <= x1 || y2 <= y1) continue;
      w.box.x = static_cast<int>(x1 * to_original);
      w.box.y = static_cast<int>(y1 * to_original);
      w.box.width = static_cast<int>((x2 - x1) * to_original + 0.5);
      w.box.height = static_cast<int>((y2 - y1) * to_original + 0.5);
      words.push_back(std::move(w));
    } while (it->Next(tesseract::RIL_WORD));
  }
  api->Clear();
  omp_set_dynamic(was_dynamic);
  return words;
}

const char* ContactKindName(ContactKind kind) {
  switch (kind) {
    case ContactKind::kEmail:
      return "email";
    case ContactKind::kHandle:
      return "handle";
    case ContactKind::kPhone:
      break;
  }
  return "phone";
}

std::string NormalisePhone(std::string_view text) {
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = text[i];
    if (std::isdigit(c)) {
      digits.push_back(static_cast<char>(c));
    } else if (c == '+') {
      if (!digits.empty()) return "";  // a + only leads
    } else if (c != ' ' && c != '.' && c != '-' && c != '(' && c != ')') {
      return "";
    }
  }
  if (digits.size() < 9 || digits.size() > 15) return "";
  return digits.substr(digits.size() - 9);
}

namespace {

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Trailing punctuation a sentence leaves on a word.
std::string TrimPunctuation(std::string s) {
  while (!s.empty() && std::string_view(".,;:!?)'\"").find(s.back()) !=
                           std::string_view::npos)
    s.pop_back();
  while (!s.empty() &&
         std::string_view("('\"").find(s.front()) != std::string_view::npos)
    s.erase(s.begin());
  return s;
}

bool IsEmail(const std::string& s) {
  size_t at = s.find('@');
  if (at == std::string::npos || at == 0 ||
      s.find('@', at + 1) != std::string::npos)
    return false;
  size_t dot = s.find('.', at);
  if (dot == std::string::npos || dot == at + 1 || dot + 2 > s.size())
    return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' ||
           c == '@';
  });
}

bool IsHandle(const std::string& s) {
  if (s.size() < 4 || s[0] != '@') return false;
  return std::all_of(s.begin() + 1, s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.';
  });
}

bool PhoneToken(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isdigit(c) || c == '+' || c == '.' || c == '-' || c == '(' ||
           c == ')';
  }) && std::any_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isdigit(c);
  });
}

Box Union(const Box& a, const Box& b) {
  int x1 = std::min(a.x, b.x), y1 = std::min(a.y, b.y);
  int x2 = std::max(a.x + a.width, b.x + b.width);
  int y2 = std::max(a.y + a.height, b.y + b.height);
  return {x1, y1, x2 - x1, y2 - y1};
}

// Whether two boxes share most of the smaller one's height: one line.
bool SameRow(const Box& a, const Box& b) {
  int top = std::max(a.y, b.y);
  int bottom = std::min(a.y + a.height, b.y + b.height);
  return bottom - top > std::min(a.height, b.height) / 2;
}

// `words` as lines, each left to right, lines top to bottom.
std::vector<std::vector<TextWord>> Lines(std::span<const TextWord> words) {
  std::vector<TextWord> by_x(words.begin(), words.end());
  std::sort(by_x.begin(), by_x.end(), [](const TextWord& a, const TextWord& b) {
    return a.box.x < b.box.x;
  });
  std::vector<std::vector<TextWord>> lines;
  std::vector<Box> extent;
  for (TextWord& w : by_x) {
    size_t i = 0;
    while (i < lines.size() && !SameRow(extent[i], w.box)) ++i;
    if (i == lines.size()) {
      lines.emplace_back();
      extent.push_back(w.box);
    }
    extent[i] = Union(extent[i], w.box);
    lines[i].push_back(std::move(w));
  }
  std::vector<size_t> order(lines.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return extent[a].y < extent[b].y; });
  std::vector<std::vector<TextWord>> out;
  for (size_t i : order) out.push_back(std::move(lines[i]));
  return out;
}

}  // namespace

std::vector<Contact> FindContacts(std::span<const TextWord> words) {
  std::vector<Contact> out;
  std::set<std::pair<ContactKind, std::string>> seen;
  auto add = [&](ContactKind kind, std::string value, std::string text,
                 Box box) {
    if (value.empty() || !seen.emplace(kind, value).second) return;
    out.push_back({kind, std::move(value), std::move(text), box});
  };
  for (const std::vector<TextWord>& line : Lines(words)) {
    for (size_t i = 0; i < line.size(); ++i) {
      std::string w = TrimPunctuation(line[i].text);
      if (IsEmail(w)) {
        add(ContactKind::kEmail, Lower(w), line[i].text, line[i].box);
      } else if (IsHandle(w)) {
        add(ContactKind::kHandle, Lower(w), line[i].text, line[i].box);
      } else if (PhoneToken(w)) {
        // A phone number: this token and those that follow it closely on
        // its line ("+254 710 555 0100").
        std::string text = w;
        Box box = line[i].box;
        size_t j = i + 1;
        for (; j < line.size(); ++j) {
          std::string t = TrimPunctuation(line[j].text);
          int gap = line[j].box.x - (box.x + box.width);
          if (!PhoneToken(t) ||
              gap > 2 * std::max(box.height, line[j].box.height))
            break;
          text += " " + t;
          box = Union(box, line[j].box);
        }
        add(ContactKind::kPhone, NormalisePhone(text), text, box);
        i = j - 1;
      }
    }
  }
  return out;
}

}  // namespace spoor
