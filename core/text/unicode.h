// Unicode helpers for the tokenizers: UTF-8 coding and the character properties
// the Hugging Face tokenizers consult (general category, whitespace, lowercase,
// canonical decomposition). Tables come from Python's unicodedata, see
// tests/tools/gen_unicode_tables.py, so results match the Python reference code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace attn::text {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes UTF-8. Each ill-formed sequence (its maximal valid prefix, as the
// Unicode standard recommends) becomes one U+FFFD; never reads past the input.
std::u32string decodeUtf8(std::string_view utf8);
// Appends the UTF-8 form of cp; surrogates and values past U+10FFFF become U+FFFD.
void appendUtf8(char32_t cp, std::string& out);
std::string encodeUtf8(std::u32string_view cps);

// Unicode general categories; the order is the one of the generated table.
// clang-format off
enum class Category : uint8_t {
  Lu, Ll, Lt, Lm, Lo,      // letters
  Mn, Mc, Me,              // marks
  Nd, Nl, No,              // numbers
  Pc, Pd, Ps, Pe, Pi, Pf, Po,  // punctuation
  Sm, Sc, Sk, So,          // symbols
  Zs, Zl, Zp,              // separators
  Cc, Cf, Cs, Co, Cn,      // other
};
// clang-format on

Category category(char32_t cp);
const char* categoryName(Category c);  // "Lu", "Mn", ...
const char* unicodeVersion();          // of the tables, e.g. "14.0.0"

bool isLetter(char32_t cp);          // L*
bool isNumber(char32_t cp);          // N*
bool isPunctuation(char32_t cp);     // P*
bool isSymbol(char32_t cp);          // S*
bool isNonspacingMark(char32_t cp);  // Mn
bool isControl(char32_t cp);         // Cc or Cf
bool isOther(char32_t cp);           // C*: Cc, Cf, Cs, Co, Cn
// Unicode White_Space property: \s of the regex engines used by GPT-2 / HF.
bool isWhiteSpace(char32_t cp);
// Python's str.isspace(): White_Space plus U+001C..U+001F (what str.split() uses).
bool isPythonSpace(char32_t cp);
// BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not kana/hangul).
bool isCjkIdeograph(char32_t cp);

// Appends Python's chr(cp).lower(): usually one code point, U+0130 gives two.
void appendLowercase(char32_t cp, std::u32string& out);
// Appends the full canonical decomposition of cp (itself when it has none),
// Hangul syllables included; the marks are not yet in canonical order.
void appendCanonicalDecomposition(char32_t cp, std::u32string& out);
uint8_t combiningClass(char32_t cp);
// unicodedata.normalize("NFD", s).
std::u32string nfd(std::u32string_view s);

}  // namespace attn::text
