#include "core/text/bpe.h"

#include <algorithm>
#include <queue>

#include "core/text/unicode.h"

namespace attn::text {
namespace {

// Bounds memory on long inputs made of many distinct words.
constexpr size_t kMaxCacheEntries = 1 << 16;
// Long pieces are rare and cheap to redo; caching them would pin big strings.
constexpr size_t kMaxCachedPieceBytes = 256;

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// [^\s\p{L}\p{N}]
bool isOtherChar(char32_t c) { return !isWhiteSpace(c) && !isLetter(c) && !isNumber(c); }

}  // namespace

const std::array<char32_t, 256>& byteToUnicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      // Printable Latin-1 bytes stand for themselves; the rest move past U+00FF.
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

std::vector<std::pair<int32_t, int32_t>> gpt2PreTokenize(std::u32string_view t) {
  std::vector<std::pair<int32_t, int32_t>> out;
  const size_t n = t.size();
  size_t i = 0;
  auto emit = [&](size_t from, size_t to) {
    out.emplace_back(static_cast<int32_t>(from), static_cast<int32_t>(to));
    i = to;
  };
  while (i < n) {
    const char32_t c = t[i];
    if (c == U'\'' && i + 1 < n) {
      const char32_t c1 = t[i + 1];
      if (c1 == U's' || c1 == U't' || c1 == U'm' || c1 == U'd') {
        emit(i, i + 2);
        continue;
      }
      if (i + 2 < n) {
        const char32_t c2 = t[i + 2];
        if ((c1 == U'r' && c2 == U'e') || (c1 == U'v' && c2 == U'e') ||
            (c1 == U'l' && c2 == U'l')) {
          emit(i, i + 3);
          continue;
        }
      }
    }
    // " ?X+": an optional leading U+0020 belongs to the run that follows it.
    const size_t body = (c == U' ' && i + 1 < n) ? i + 1 : i;
    const char32_t b = t[body];
    bool (*klass)(char32_t) = nullptr;
    if (isLetter(b)) {
      klass = isLetter;
    } else if (isNumber(b)) {
      klass = isNumber;
    } else if (isOtherChar(b)) {
      klass = isOtherChar;
    }
    if (klass != nullptr) {
      size_t j = body + 1;
      while (j < n && klass(t[j])) ++j;
      emit(i, j);
      continue;
    }
    // c is whitespace here. \s+(?!\S) leaves the last whitespace character to
    // the word after the run; a lone one before a word is matched by \s+.
    size_t j = i;
    while (j < n && isWhiteSpace(t[j])) ++j;
    if (j == i) j = i + 1;  // unreachable for valid classes; guarantees progress
    if (j == n || j - i == 1) {
      emit(i, j);
    } else {
      emit(i, j - 1);
    }
  }
  return out;
}

Result<std::shared_ptr<BpeTokenizer>> BpeTokenizer::create(
    const std::vector<std::pair<std::string, int32_t>>& vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
    std::vector<AddedToken> added, Framing framing, int32_t padId) {
  if (vocab.empty()) return makeError("the vocabulary is empty");
  std::shared_ptr<BpeTokenizer> t(new BpeTokenizer());
  auto table = buildVocabTable(vocab, added);
  if (!table) return table.error();
  t->vocab_ = std::move(table->vocab);
  t->idToToken_ = std::move(table->idToToken);

  t->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const std::string merged = a + b;
    for (const std::string* s : {&a, &b, &merged}) {
      if (!t->vocab_.contains(*s)) {
        return makeError("merge " + std::to_string(rank + 1) + " ('" + a + "' + '" + b +
                         "') names '" + *s + "', which is not in the vocabulary");
      }
    }
    // A repeated pair keeps its last rank, as a Python dict built from the list does.
    t->merges_[pairKey(t->vocab_[a], t->vocab_[b])] =
        Merge{static_cast<int32_t>(rank), t->vocab_[merged]};
  }

  std::string ch;
  for (int b = 0; b < 256; ++b) {
    ch.clear();
    appendUtf8(byteToUnicode()[static_cast<size_t>(b)], ch);
    const auto it = t->vocab_.find(ch);
    t->byteId_[static_cast<size_t>(b)] = it == t->vocab_.end() ? -1 : it->second;
  }
  if (!options.unkToken.empty()) {
    const auto it = t->vocab_.find(options.unkToken);
    if (it == t->vocab_.end()) {
      return makeError("the unknown token '" + options.unkToken + "' is not in the vocabulary");
    }
    t->unkId_ = it->second;
  }
  for (const auto* list : {&framing.prefix, &framing.suffix}) {
    for (const auto& f : *list) {
      if (f.id < 0) return makeError("special token '" + f.token + "' has no id");
    }
  }
  t->options_ = std::move(options);
  t->added_ = AddedTokenMatcher(added);
  t->framing_ = std::move(framing);
  t->padId_ = padId;
  return t;
}

int32_t BpeTokenizer::tokenToId(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::string BpeTokenizer::idToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= idToToken_.size()) return {};
  return idToToken_[static_cast<size_t>(id)];
}

std::vector<BpeTokenizer::Piece> BpeTokenizer::mergeBytes(std::string_view bytes) const {
  if (options_.ignoreMerges) {
    std::string mapped;
    for (unsigned char b : bytes) appendUtf8(byteToUnicode()[b], mapped);
    const auto it = vocab_.find(mapped);
    if (it != vocab_.end()) return {Piece{it->second, 0, static_cast<uint32_t>(bytes.size())}};
  }
  // Symbols form a doubly linked list; a merge absorbs the right neighbour.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t begin;
    uint32_t end;
  };
  std::vector<Symbol> syms;
  syms.reserve(bytes.size());
  for (size_t k = 0; k < bytes.size(); ++k) {
    int32_t id = byteId_[static_cast<unsigned char>(bytes[k])];
    if (id < 0) id = unkId_;
    if (id < 0) continue;  // no byte token and no unk: Hugging Face drops the byte
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, idx - 1, idx + 1, static_cast<uint32_t>(k), static_cast<uint32_t>(k + 1)});
  }
  if (syms.empty()) return {};
  syms.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t left;  // index of the left symbol; equal ranks merge left to right
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0 || syms[static_cast<size_t>(left)].next < 0) return;
    const Symbol& l = syms[static_cast<size_t>(left)];
    const auto it = merges_.find(pairKey(l.id, syms[static_cast<size_t>(l.next)].id));
    if (it != merges_.end()) queue.push({it->second.rank, left});
  };
  for (int32_t k = 0; k + 1 < static_cast<int32_t>(syms.size()); ++k) consider(k);

  std::vector<bool> dead(syms.size(), false);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (dead[static_cast<size_t>(top.left)]) continue;
    Symbol& l = syms[static_cast<size_t>(top.left)];
    if (l.next < 0) continue;
    Symbol& r = syms[static_cast<size_t>(l.next)];
    const auto it = merges_.find(pairKey(l.id, r.id));
    // Stale entry: one side changed since it was queued.
    if (it == merges_.end() || it->second.rank != top.rank) continue;
    l.id = it->second.id;
    l.end = r.end;
    dead[static_cast<size_t>(l.next)] = true;
    l.next = r.next;
    if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = top.left;
    consider(l.prev);
    consider(top.left);
  }

  std::vector<Piece> out;
  for (int32_t k = 0; k >= 0; k = syms[static_cast<size_t>(k)].next) {
    const Symbol& s = syms[static_cast<size_t>(k)];
    out.push_back({s.id, s.begin, s.end});
  }
  return out;
}

std::vector<BpeTokenizer::Piece> BpeTokenizer::cachedMerge(const std::string& bytes) const {
  if (bytes.size() > kMaxCachedPieceBytes) return mergeBytes(bytes);
  {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    const auto it = cache_.find(bytes);
    if (it != cache_.end()) return it->second;
  }
  std::vector<Piece> pieces = mergeBytes(bytes);
  std::lock_guard<std::mutex> lock(cacheMutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(bytes, pieces);
  return pieces;
}

Encoding BpeTokenizer::encode(std::string_view utf8, bool addSpecial) const {
  Encoding out;
  auto pushFraming = [&](const std::vector<FramingToken>& list) {
    for (const FramingToken& f : list) {
      out.ids.push_back(f.id);
      out.tokens.push_back(f.token);
      out.offsets.emplace_back(0, 0);
    }
  };
  if (addSpecial) pushFraming(framing_.prefix);

  const std::u32string text = decodeUtf8(utf8);
  std::u32string work;
  std::vector<int32_t> origin;  // input index of each char of work; -1 for the added space
  std::string bytes;
  std::vector<int32_t> byteBegin, byteEnd;  // input span of the char each byte encodes
  for (const Segment& seg : added_.split(text)) {
    if (seg.added >= 0) {
      const AddedToken& a = added_.tokens()[static_cast<size_t>(seg.added)];
      out.ids.push_back(a.id);
      out.tokens.push_back(a.content);
      out.offsets.emplace_back(seg.begin, seg.end);
      continue;
    }
    work.clear();
    origin.clear();
    if (options_.addPrefixSpace && text[static_cast<size_t>(seg.begin)] != U' ') {
      work.push_back(U' ');
      origin.push_back(-1);
    }
    for (int32_t k = seg.begin; k < seg.end; ++k) {
      work.push_back(text[static_cast<size_t>(k)]);
      origin.push_back(k);
    }
    std::vector<std::pair<int32_t, int32_t>> parts;
    if (options_.useRegex) {
      parts = gpt2PreTokenize(work);
    } else {
      parts.emplace_back(0, static_cast<int32_t>(work.size()));
    }
    for (const auto& [from, to] : parts) {
      bytes.clear();
      byteBegin.clear();
      byteEnd.clear();
      for (int32_t k = from; k < to; ++k) {
        const size_t before = bytes.size();
        appendUtf8(work[static_cast<size_t>(k)], bytes);
        // The added space is zero-width: it sits where the segment starts.
        const int32_t o = origin[static_cast<size_t>(k)];
        const int32_t b = o < 0 ? seg.begin : o;
        const int32_t e = o < 0 ? seg.begin : o + 1;
        byteBegin.insert(byteBegin.end(), bytes.size() - before, b);
        byteEnd.insert(byteEnd.end(), bytes.size() - before, e);
      }
      for (const Piece& p : cachedMerge(bytes)) {
        int32_t begin = byteBegin[p.byteBegin];
        int32_t end = byteEnd[p.byteEnd - 1];
        if (options_.trimOffsets) {
          uint32_t lo = p.byteBegin, hi = p.byteEnd;
          while (lo < hi && bytes[lo] == ' ') ++lo;
          while (hi > lo && bytes[hi - 1] == ' ') --hi;
          if (lo == hi) {
            begin = end;
          } else {
            begin = byteBegin[lo];
            end = byteEnd[hi - 1];
          }
        }
        out.ids.push_back(p.id);
        out.tokens.push_back(idToToken_[static_cast<size_t>(p.id)]);
        out.offsets.emplace_back(begin, end);
      }
    }
  }
  if (addSpecial) pushFraming(framing_.suffix);
  return out;
}

}  // namespace attn::text
