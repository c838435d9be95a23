#include <omp.h>
#include <tesseract/baseapi.h>

#include <algorithm>
#include <cctype>
#include <cmath>
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

// A candidate text line: where it is in the working image, and its glyphs
// drawn dark on white (nothing else: texture next to the words stays out).
struct Line {
  cv::Rect rect;  ///< of `strokes`, which may reach past the image's edge
  cv::Mat strokes;
  int glyphs = 0;       ///< glyphs on the line's baseline
  bool bright = false;  ///< strokes brighter than their surroundings
};

double Overlap(const cv::Rect& a, const cv::Rect& b) {
  double inter = (a & b).area();
  return inter / std::min(a.area(), b.area());
}

// A stroke component shaped like a glyph.
struct Glyph {
  cv::Rect rect;
  int label = 0;
};

int Find(std::vector<int>& parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

// Whether `b` (to the right of `a`) continues `a`'s line: similar height,
// sharing most of the smaller one's rows, and close (within a word or the
// space between words).
bool Continues(const cv::Rect& a, const cv::Rect& b) {
  int ha = a.height, hb = b.height;
  if (2 * std::min(ha, hb) < std::max(ha, hb)) return false;
  int top = std::max(a.y, b.y);
  int bottom = std::min(a.y + ha, b.y + hb);
  if (2 * (bottom - top) < std::min(ha, hb)) return false;
  int gap = b.x - (a.x + a.width);
  return 2 * gap < 3 * std::max(ha, hb) &&
         gap > -std::min(a.width, b.width) / 2;
}

// The lines of glyphs in one binarised plane: components a glyph's size,
// chained left to right, with four or more on one baseline.
void LinesOf(const cv::Mat& strokes, bool bright, int max_height,
             std::vector<Line>& found) {
  cv::Mat labels, stats, centroids;
  int n = cv::connectedComponentsWithStats(strokes, labels, stats, centroids, 8,
                                           CV_32S);
  std::vector<Glyph> glyphs;
  for (int i = 1; i < n; ++i) {
    cv::Rect r(stats.at<int>(i, cv::CC_STAT_LEFT),
               stats.at<int>(i, cv::CC_STAT_TOP),
               stats.at<int>(i, cv::CC_STAT_WIDTH),
               stats.at<int>(i, cv::CC_STAT_HEIGHT));
    int area = stats.at<int>(i, cv::CC_STAT_AREA);
    // Glyphs 8 px to a sixth of the picture tall, at most twice as wide as
    // tall (two glyphs touching), strokes filling part of the box (or all
    // of a thin one: a stem, "l", "1").
    if (r.height < 8 || r.height > max_height || r.width > 2 * r.height ||
        area < 6 || area * 10 < r.area() ||
        (area * 10 > r.area() * 9 && 3 * r.width > r.height))
      continue;
    glyphs.push_back({r, i});
  }
  if (glyphs.size() > 4000) return;  // noise, not text
  std::sort(glyphs.begin(), glyphs.end(),
            [](const Glyph& a, const Glyph& b) { return a.rect.x < b.rect.x; });
  std::vector<int> parent(glyphs.size());
  for (size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<int>(i);
  for (size_t i = 0; i < glyphs.size(); ++i) {
    const cv::Rect& a = glyphs[i].rect;
    for (size_t j = i + 1; j < glyphs.size(); ++j) {
      const cv::Rect& b = glyphs[j].rect;
      if (b.x > a.x + a.width + 4 * a.height) break;
      if (Continues(a, b))
        parent[Find(parent, static_cast<int>(j))] =
            Find(parent, static_cast<int>(i));
    }
  }
  std::vector<std::vector<const Glyph*>> groups(glyphs.size());
  for (size_t i = 0; i < glyphs.size(); ++i)
    groups[Find(parent, static_cast<int>(i))].push_back(&glyphs[i]);
  for (const auto& g : groups) {
    if (g.size() < 4) continue;
    // Text sits on a baseline: count the glyphs whose bottom is the line's
    // (descenders and texture are not).
    std::vector<int> heights, bottoms;
    for (const Glyph* x : g) {
      heights.push_back(x->rect.height);
      bottoms.push_back(x->rect.y + x->rect.height);
    }
    std::nth_element(heights.begin(), heights.begin() + heights.size() / 2,
                     heights.end());
    std::nth_element(bottoms.begin(), bottoms.begin() + bottoms.size() / 2,
                     bottoms.end());
    const int h = heights[heights.size() / 2],
              bottom = bottoms[bottoms.size() / 2];
    std::vector<const Glyph*> aligned;
    for (const Glyph* x : g)
      if (std::abs(x->rect.y + x->rect.height - bottom) * 8 <= h &&
          2 * x->rect.height >= h)
        aligned.push_back(x);
    if (aligned.size() < 4) continue;
    // The line is its glyphs on the baseline, and whatever lies wholly
    // within their band (a third of a glyph above, half below): the dots of
    // "i" and ":", accents, descenders, a short "-". Strokes that cross the
    // band (grass, a table's edge chained to the words) stay out.
    cv::Rect r = aligned[0]->rect;
    for (const Glyph* x : aligned) r |= x->rect;
    const cv::Rect band(r.x, r.y - h / 3, r.width, r.height + h / 3 + h / 2);
    std::vector<char> member(n, 0);  // 1: drawn, 2: not
    for (const Glyph* x : aligned) member[x->label] = 1;
    cv::Rect drawn = r;
    const cv::Rect image_rect(0, 0, labels.cols, labels.rows);
    const cv::Rect scan = band & image_rect;
    for (int y = scan.y; y < scan.y + scan.height; ++y) {
      const int* row = labels.ptr<int>(y);
      for (int x = scan.x; x < scan.x + scan.width; ++x) {
        int l = row[x];
        if (l == 0 || member[l]) continue;
        cv::Rect c(stats.at<int>(l, cv::CC_STAT_LEFT),
                   stats.at<int>(l, cv::CC_STAT_TOP),
                   stats.at<int>(l, cv::CC_STAT_WIDTH),
                   stats.at<int>(l, cv::CC_STAT_HEIGHT));
        member[l] = (c & band) == c ? 1 : 2;
        if (member[l] == 1) drawn |= c;
      }
    }
    r = drawn;
    if (2 * r.width < 3 * r.height) continue;
    // A margin a third of the line's height, white beyond the picture's
    // edge: Tesseract misreads glyphs that touch the border.
    const int m = std::max(4, r.height / 3);
    cv::Rect padded(r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m);
    cv::Mat dark_on_white(padded.size(), CV_8U, cv::Scalar(255));
    for (int y = r.y; y < r.y + r.height; ++y) {
      const int* row = labels.ptr<int>(y);
      std::uint8_t* out = dark_on_white.ptr<std::uint8_t>(y - padded.y);
      for (int x = r.x; x < r.x + r.width; ++x)
        if (member[row[x]] == 1) out[x - padded.x] = 0;
    }
    found.push_back(
        {padded, dark_on_white, static_cast<int>(aligned.size()), bright});
  }
}

// Strokes brighter (top-hat) or darker (black-hat) than a window about a
// fortieth of the image across, binarised at Otsu's threshold and at a high
// one (stamped words contrast more than the texture around them), in the
// grey image and in the darkest channel (yellow on light green is one grey,
// but not one minimum); their glyphs chained into lines, those with most
// glyphs first.
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
  std::vector<Line> found;
  for (const cv::Mat& plane : {grey, darkest}) {
    for (int op : {cv::MORPH_TOPHAT, cv::MORPH_BLACKHAT}) {
      cv::Mat hat, strokes;
      cv::morphologyEx(plane, hat, op, window);
      double otsu = cv::threshold(hat, strokes, 0, 255,
                                  cv::THRESH_BINARY | cv::THRESH_OTSU);
      LinesOf(strokes, op == cv::MORPH_TOPHAT, grey.rows / 6, found);
      if (otsu < 100) {
        cv::threshold(hat, strokes, 100, 255, cv::THRESH_BINARY);
        LinesOf(strokes, op == cv::MORPH_TOPHAT, grey.rows / 6, found);
      }
    }
  }
  std::stable_sort(
      found.begin(), found.end(), [](const Line& a, const Line& b) {
        return a.glyphs != b.glyphs ? a.glyphs > b.glyphs
                                    : a.rect.area() > b.rect.area();
      });
  // The same line seen in both planes or at both thresholds is read once;
  // seen both bright and dark (the gaps between bright glyphs are dark
  // strokes too) it is read both ways, and the wrong way reads nothing
  // confident.
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

// `r` (working-image pixels, clipped to the image) in original pixels, by
// its corners, so that a rectangle inside another stays inside it.
Box ToOriginal(cv::Rect r, const Image& image) {
  r &= cv::Rect(0, 0, image.width, image.height);
  const double s = image.scale_to_original();
  int x1 = static_cast<int>(r.x * s), y1 = static_cast<int>(r.y * s);
  int x2 = std::min(image.original_width,
                    static_cast<int>(std::ceil((r.x + r.width) * s)));
  int y2 = std::min(image.original_height,
                    static_cast<int>(std::ceil((r.y + r.height) * s)));
  return {x1, y1, std::max(0, x2 - x1), std::max(0, y2 - y1)};
}

// `words` without those read twice (two candidate lines over one): of words
// whose boxes mostly overlap, the more confident one.
std::vector<TextWord> Distinct(std::vector<TextWord> words) {
  std::stable_sort(words.begin(), words.end(),
                   [](const TextWord& a, const TextWord& b) {
                     return a.confidence > b.confidence;
                   });
  std::vector<TextWord> kept;
  for (TextWord& w : words) {
    cv::Rect r(w.box.x, w.box.y, w.box.width, w.box.height);
    if (std::none_of(kept.begin(), kept.end(), [&](const TextWord& k) {
          cv::Rect o(k.box.x, k.box.y, k.box.width, k.box.height);
          return Overlap(r, o) > 0.5;
        }))
      kept.push_back(std::move(w));
  }
  return kept;
}

bool HasAlnum(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c); });
}

}  // namespace

absl::StatusOr<std::vector<TextWord>> ReadText(const Image& image,
                                               const TextOptions& options,
                                               std::vector<Box>* lines) {
  tesseract::TessBaseAPI* api = ThreadTesseract();
  if (api == nullptr)
    return absl::FailedPreconditionError(
        "text: Tesseract cannot load its English model (install "
        "tesseract-ocr-eng)");
  std::vector<TextWord> words;
  if (lines != nullptr) lines->clear();
  if (image.width <= 0 || image.height <= 0) return words;
  cv::Mat bgr(image.height, image.width, CV_8UC3,
              const_cast<std::uint8_t*>(image.bgr.data()));
  // Tesseract asks OpenMP for four threads for each layer of each
  // character: on a busy two-core machine that costs 8x more than reading
  // on this thread alone. Dynamic adjustment (this thread's setting only)
  // lets the runtime give fewer.
  const int was_dynamic = omp_get_dynamic();
  omp_set_dynamic(1);
  for (const Line& line : FindLines(bgr, options.max_lines)) {
    if (lines != nullptr) lines->push_back(ToOriginal(line.rect, image));
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
      w.box = ToOriginal(cv::Rect(x1, y1, x2 - x1, y2 - y1), image);
      w.line = ToOriginal(line.rect, image);
      words.push_back(std::move(w));
    } while (it->Next(tesseract::RIL_WORD));
  }
  api->Clear();
  omp_set_dynamic(was_dynamic);
  return Distinct(std::move(words));
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

// The least confidence of every digit group of a phone number kept.
constexpr float kPhoneConfidence = 80;

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
        float confidence = line[i].confidence;
        size_t j = i + 1;
        for (; j < line.size(); ++j) {
          std::string t = TrimPunctuation(line[j].text);
          int gap = line[j].box.x - (box.x + box.width);
          if (!PhoneToken(t) ||
              gap > 2 * std::max(box.height, line[j].box.height))
            break;
          text += " " + t;
          box = Union(box, line[j].box);
          confidence = std::min(confidence, line[j].confidence);
        }
        // One misread digit links strangers: every group must be sure.
        if (confidence >= kPhoneConfidence)
          add(ContactKind::kPhone, NormalisePhone(text), text, box);
        i = j - 1;
      }
    }
  }
  return out;
}

}  // namespace spoor
