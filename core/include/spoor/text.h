// Text in ad images: the words a picture shows, and the contact details
// (phone numbers, e-mail addresses, messaging handles) among them.
//
// ReadText finds text lines with a morphological filter (strokes brighter or
// darker than their surroundings, whose glyph-sized pieces are chained along
// a baseline) and reads each line with Tesseract (Debian's libtesseract and
// its English model). Photos of
// items on a table give few such lines; screenshots, overlaid words and
// stamped phone numbers give many. The words serve twice: links between ads
// discount matches that rest on them (the same words in the same font are
// not the same item), and FindContacts turns them into the normalised
// contact details that link sellers by a separate, weaker edge.
//
// Thread safety: ReadText may be called from many threads at once (each
// thread loads its own Tesseract instance on first use, ~20 ms).
#ifndef SPOOR_TEXT_H_
#define SPOOR_TEXT_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/image.h"

namespace spoor {

// One word read with enough confidence.
struct TextWord {
  std::string text;      ///< UTF-8, as read
  Box box;               ///< original-image pixels
  float confidence = 0;  ///< Tesseract's, 0..100
  Box line;              ///< the text line it was read in, the same pixels
};

struct TextOptions {
  // Most text lines read, those with most glyphs first. Each costs a Tesseract
  // call of a few milliseconds. Default: 12.
  int max_lines = 12;
  // Lowest word confidence kept. Default: 60.
  float min_confidence = 60;
};

// The words `image` shows. With `lines`, also every text line found
// (original pixels), read or not: a line Tesseract reads nothing confident
// in (yellow words on a cream table) is text all the same. FailedPrecondition
// when Tesseract's English model cannot be loaded (install
// tesseract-ocr-eng).
absl::StatusOr<std::vector<TextWord>> ReadText(
    const Image& image, const TextOptions& options = {},
    std::vector<Box>* lines = nullptr);

enum class ContactKind { kPhone, kEmail, kHandle };
const char* ContactKindName(ContactKind kind);  ///< "phone", "email", ...

// A contact detail, normalised so that two ways of writing it compare
// equal.
struct Contact {
  ContactKind kind = ContactKind::kPhone;
  std::string value;  ///< normalised: see NormalisePhone; e-mail and handle
                      ///< lower-cased ("@name")
  std::string text;   ///< as read
  Box box;            ///< the words it was read from
  bool operator==(const Contact&) const = default;
};

// The contact details among `words` (in any order; words on one line are
// joined left to right): phone numbers of 9 to 15 digits, written with
// spaces, dots, dashes, brackets or a leading +, every digit group read with
// confidence 80 or more (a misread number would link strangers); e-mail
// addresses; @handles of 3 or more characters. Each value once.
std::vector<Contact> FindContacts(std::span<const TextWord> words);

// A phone number's last 9 digits, so that the international and the
// national form compare equal ("+33 6 12 34 56 78" and "06.12.34.56.78"
// are "612345678"); "" when `text` holds fewer than 9 or more than 15
// digits, or characters a phone number is not written with.
std::string NormalisePhone(std::string_view text);

}  // namespace spoor

#endif  // SPOOR_TEXT_H_
