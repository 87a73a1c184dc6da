#include "core/text/bpe_train.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/text/bpe.h"
#include "core/text/unicode.h"

namespace attn::text {

namespace {

std::string utf8(char32_t c) {
  std::string s;
  appendUtf8(c, s);
  return s;
}

struct PairHash {
  size_t operator()(const std::pair<int, int>& p) const {
    return std::hash<uint64_t>()((static_cast<uint64_t>(p.first) << 32) ^
                                 static_cast<uint32_t>(p.second));
  }
};

}  // namespace

Result<BpeTrainResult> trainByteLevelBpe(const std::vector<std::string>& texts, int vocabSize,
                                         const std::string& endOfText,
                                         const std::filesystem::path& dir) {
  if (vocabSize < 257) return makeError("the vocabulary needs at least 257 tokens (256 bytes + end of text)");
  if (texts.empty()) return makeError("the corpus has no examples");
  // Piece (as byte symbols) → count.
  std::map<std::string, int64_t> pieceCounts;
  for (const std::string& t : texts) {
    const std::u32string u = decodeUtf8(t);
    for (const auto& [b, e] : gpt2PreTokenize(u)) {
      std::string bytes;
      for (int32_t i = b; i < e; ++i) bytes += utf8(u[static_cast<size_t>(i)]);
      ++pieceCounts[bytes];
    }
  }
  const auto& b2u = byteToUnicode();
  std::vector<std::string> tokens;  // id → vocabulary string
  for (int b = 0; b < 256; ++b) tokens.push_back(utf8(b2u[static_cast<size_t>(b)]));
  struct Word {
    std::vector<int> sym;
    int64_t count;
  };
  std::vector<Word> words;
  for (const auto& [bytes, count] : pieceCounts) {
    Word w{{}, count};
    for (unsigned char c : bytes) w.sym.push_back(c);
    words.push_back(std::move(w));
  }
  std::vector<std::pair<int, int>> merges;
  std::unordered_map<std::string, int> ids;
  for (size_t i = 0; i < tokens.size(); ++i) ids.emplace(tokens[i], static_cast<int>(i));
  const int target = vocabSize - 1;  // the last id is the end-of-text token
  while (static_cast<int>(tokens.size()) < target) {
    std::unordered_map<std::pair<int, int>, int64_t, PairHash> counts;
    for (const Word& w : words)
      for (size_t i = 0; i + 1 < w.sym.size(); ++i) counts[{w.sym[i], w.sym[i + 1]}] += w.count;
    if (counts.empty()) break;
    std::pair<int, int> best{-1, -1};
    int64_t bestCount = 0;
    std::string bestString;
    for (const auto& [p, c] : counts) {
      if (c < bestCount) continue;
      std::string merged = tokens[p.first] + tokens[p.second];
      if (c > bestCount || merged < bestString ||
          (merged == bestString && p < best)) {
        best = p;
        bestCount = c;
        bestString = std::move(merged);
      }
    }
    if (bestCount < 2) break;  // nothing repeats: stop early
    // Two merges can spell the same string ("a"+"bc", "ab"+"c"): both are
    // merges, one token.
    const auto known = ids.find(bestString);
    const int id = known != ids.end() ? known->second : static_cast<int>(tokens.size());
    if (known == ids.end()) {
      tokens.push_back(bestString);
      ids.emplace(bestString, id);
    }
    merges.push_back(best);
    for (Word& w : words) {
      std::vector<int> out;
      out.reserve(w.sym.size());
      for (size_t i = 0; i < w.sym.size(); ++i) {
        if (i + 1 < w.sym.size() && w.sym[i] == best.first && w.sym[i + 1] == best.second) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(w.sym[i]);
        }
      }
      w.sym = std::move(out);
    }
  }
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = static_cast<int>(i);
  const int eot = static_cast<int>(tokens.size());
  vocab[endOfText] = eot;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return makeError("cannot create '" + dir.string() + "': " + ec.message());
  auto writeFile = [&](const std::string& name, const std::string& content) -> Status {
    const auto tmp = dir / (name + ".partial");
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << content;
      if (!out) return makeError("cannot write " + (dir / name).string());
    }
    std::filesystem::rename(tmp, dir / name, ec);
    if (ec) return makeError("cannot write " + (dir / name).string() + ": " + ec.message());
    return Ok{};
  };
  std::string mergesText = "#version: 0.2\n";
  for (const auto& [a, b] : merges) mergesText += tokens[a] + " " + tokens[b] + "\n";
  nlohmann::ordered_json config = {{"tokenizer_class", "GPT2Tokenizer"},
                                   {"bos_token", endOfText},
                                   {"eos_token", endOfText},
                                   {"unk_token", endOfText},
                                   {"add_prefix_space", false},
                                   {"model_max_length", 1024}};
  for (const auto& [name, content] :
       {std::pair<std::string, std::string>{"vocab.json", vocab.dump(1)},
        {"merges.txt", mergesText},
        {"tokenizer_config.json", config.dump(2)}})
    if (Status st = writeFile(name, content); !st) return st.error();
  return BpeTrainResult{static_cast<int>(vocab.size()), static_cast<int>(merges.size())};
}

}  // namespace attn::text
