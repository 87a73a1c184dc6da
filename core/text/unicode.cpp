#include "core/text/unicode.h"

#include <algorithm>
#include <iterator>

namespace attn::text {
namespace {

struct CategoryRun {
  char32_t first;
  uint8_t category;
};
struct CodeRange {
  char32_t first;
  char32_t last;
};
struct LowerRun {
  char32_t first;
  char32_t last;
  int32_t delta;
  int32_t stride;
};
struct LowerMulti {
  char32_t cp;
  char32_t lower[3];
  int32_t count;
};
struct Decomposition {
  char32_t cp;
  uint16_t offset;
  uint8_t count;
};
struct CombiningRun {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};

#include "core/text/unicode_tables.inc"

constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Hangul syllable arithmetic from the Unicode standard, chapter 3.12.
constexpr char32_t kHangulBase = 0xAC00, kLeadBase = 0x1100, kVowelBase = 0x1161,
                   kTrailBase = 0x11A7;
constexpr int kVowelCount = 21, kTrailCount = 28, kHangulCount = 11172;

bool inRanges(const CodeRange* begin, const CodeRange* end, char32_t cp) {
  const CodeRange* it =
      std::upper_bound(begin, end, cp, [](char32_t c, const CodeRange& r) { return c < r.first; });
  return it != begin && cp <= std::prev(it)->last;
}

const char* const kCategoryNames[] = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl",
                                      "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc",
                                      "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
static_assert(std::size(kCategoryNames) == static_cast<size_t>(Category::Cn) + 1);

bool isContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

std::u32string decodeUtf8(std::string_view utf8) {
  std::u32string out;
  out.reserve(utf8.size());
  const size_t n = utf8.size();
  size_t i = 0;
  while (i < n) {
    const auto b0 = static_cast<unsigned char>(utf8[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int need = 0;
    char32_t cp = 0;
    // Bounds of the second byte exclude overlong forms, surrogates and > U+10FFFF.
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      out.push_back(kReplacementChar);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool valid = true;
    for (int k = 0; k < need; ++k, ++j) {
      if (j >= n) {
        valid = false;
        break;
      }
      const auto b = static_cast<unsigned char>(utf8[j]);
      const bool ok = k == 0 ? (b >= lo && b <= hi) : isContinuation(b);
      if (!ok) {
        valid = false;
        break;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    out.push_back(valid ? cp : kReplacementChar);
    i = j;  // on failure j points at the first byte that did not fit
  }
  return out;
}

void appendUtf8(char32_t cp, std::string& out) {
  if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementChar;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encodeUtf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) appendUtf8(cp, out);
  return out;
}

Category category(char32_t cp) {
  if (cp > kMaxCodePoint) return Category::Cn;
  const auto* begin = std::begin(kCategoryRuns);
  const auto* it = std::upper_bound(begin, std::end(kCategoryRuns), cp,
                                    [](char32_t c, const CategoryRun& r) { return c < r.first; });
  // The first run starts at U+0000, so `it` is never `begin`.
  return static_cast<Category>(std::prev(it)->category);
}

const char* categoryName(Category c) { return kCategoryNames[static_cast<size_t>(c)]; }
const char* unicodeVersion() { return kUnicodeVersion; }

bool isLetter(char32_t cp) { return category(cp) <= Category::Lo; }
bool isNumber(char32_t cp) {
  const Category c = category(cp);
  return c >= Category::Nd && c <= Category::No;
}
bool isPunctuation(char32_t cp) {
  const Category c = category(cp);
  return c >= Category::Pc && c <= Category::Po;
}
bool isSymbol(char32_t cp) {
  const Category c = category(cp);
  return c >= Category::Sm && c <= Category::So;
}
bool isNonspacingMark(char32_t cp) { return category(cp) == Category::Mn; }
bool isControl(char32_t cp) {
  const Category c = category(cp);
  return c == Category::Cc || c == Category::Cf;
}
bool isOther(char32_t cp) { return category(cp) >= Category::Cc; }

bool isWhiteSpace(char32_t cp) {
  return inRanges(std::begin(kWhiteSpace), std::end(kWhiteSpace), cp);
}
bool isPythonSpace(char32_t cp) {
  return inRanges(std::begin(kPythonSpace), std::end(kPythonSpace), cp);
}

bool isCjkIdeograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void appendLowercase(char32_t cp, std::u32string& out) {
  for (const LowerMulti& m : kLowerMulti) {
    if (m.cp == cp) {
      out.append(m.lower, static_cast<size_t>(m.count));
      return;
    }
  }
  const auto* begin = std::begin(kLowerRuns);
  const auto* it = std::upper_bound(begin, std::end(kLowerRuns), cp,
                                    [](char32_t c, const LowerRun& r) { return c < r.first; });
  if (it != begin) {
    const LowerRun& r = *std::prev(it);
    if (cp <= r.last && (cp - r.first) % static_cast<char32_t>(r.stride) == 0) {
      out.push_back(static_cast<char32_t>(static_cast<int64_t>(cp) + r.delta));
      return;
    }
  }
  out.push_back(cp);
}

void appendCanonicalDecomposition(char32_t cp, std::u32string& out) {
  if (cp >= kHangulBase && cp < kHangulBase + kHangulCount) {
    const int s = static_cast<int>(cp - kHangulBase);
    out.push_back(kLeadBase + s / (kVowelCount * kTrailCount));
    out.push_back(kVowelBase + (s % (kVowelCount * kTrailCount)) / kTrailCount);
    if (s % kTrailCount != 0) out.push_back(kTrailBase + s % kTrailCount);
    return;
  }
  const auto* begin = std::begin(kDecompositions);
  const auto* end = std::end(kDecompositions);
  const auto* it =
      std::lower_bound(begin, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp) {
    out.append(kDecompositionPool + it->offset, it->count);
  } else {
    out.push_back(cp);
  }
}

uint8_t combiningClass(char32_t cp) {
  const auto* begin = std::begin(kCombiningRuns);
  const auto* it = std::upper_bound(begin, std::end(kCombiningRuns), cp,
                                    [](char32_t c, const CombiningRun& r) { return c < r.first; });
  if (it == begin) return 0;
  const CombiningRun& r = *std::prev(it);
  return cp <= r.last ? r.ccc : 0;
}

std::u32string nfd(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t cp : s) appendCanonicalDecomposition(cp, out);
  // Canonical ordering: stable sort of each run of non-starters by class.
  size_t i = 0;
  while (i < out.size()) {
    if (combiningClass(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combiningClass(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i),
                     out.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combiningClass(a) < combiningClass(b); });
    i = j;
  }
  return out;
}

}  // namespace attn::text
