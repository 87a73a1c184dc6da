// Reads the tokenizer files of a Hugging Face model directory, first match wins:
//   tokenizer.json  - tokenizers' serialised pipeline; model "WordPiece" (with
//                     BertNormalizer / BertPreTokenizer) or "BPE" (with a ByteLevel
//                     pre-tokenizer), added_tokens, post_processor BertProcessing,
//                     RobertaProcessing, ByteLevel, TemplateProcessing or a Sequence.
//   vocab.txt       - WordPiece vocabulary, one token per line, id = line number;
//                     tokenizer_config.json (optional) gives do_lower_case and friends.
//   vocab.json + merges.txt - byte-level BPE (GPT-2, RoBERTa); merges.txt holds one
//                     "a b" pair per line after an optional "#version" line.
// Limits checked: files up to 256 MiB, token ids in [0, 2^24), every merge's parts
// and result in the vocabulary, the unknown token present for WordPiece, JSON of
// the expected shape. Anything else is an Error naming the file and the problem.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <system_error>

#include "core/text/bpe.h"
#include "core/text/special_tokens.h"
#include "core/text/tokenizer.h"
#include "core/text/wordpiece.h"

namespace attn::text {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using VocabList = std::vector<std::pair<std::string, int32_t>>;

constexpr uintmax_t kMaxFileBytes = uintmax_t{256} << 20;

Error fileError(const fs::path& file, const std::string& problem) {
  return makeError(file.string() + ": " + problem);
}

// Where the files come from: a directory, or contents held in memory (name → bytes,
// e.g. the /tokenizer group of an HDF5 model); `dir` names them in messages.
struct Files {
  fs::path dir;
  const std::map<std::string, std::string>* memory = nullptr;
};

bool exists(const Files& src, const fs::path& file) {
  if (src.memory) return src.memory->count(file.filename().string()) > 0;
  std::error_code ec;
  return fs::exists(file, ec);
}

Result<std::string> readFile(const Files& src, const fs::path& file) {
  if (src.memory) {
    const auto it = src.memory->find(file.filename().string());
    if (it == src.memory->end()) return fileError(file, "missing");
    if (it->second.size() > kMaxFileBytes)
      return fileError(file, "file is " + std::to_string(it->second.size()) +
                                 " bytes, more than the " + std::to_string(kMaxFileBytes) +
                                 " accepted");
    return it->second;
  }
  std::error_code ec;
  const uintmax_t size = fs::file_size(file, ec);
  if (ec) return fileError(file, "cannot read size: " + ec.message());
  if (size > kMaxFileBytes) {
    return fileError(file, "file is " + std::to_string(size) + " bytes, more than the " +
                               std::to_string(kMaxFileBytes) + " accepted");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return fileError(file, "cannot open");
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<uintmax_t>(in.gcount()) != size) return fileError(file, "short read");
  return data;
}

Result<json> readJson(const Files& src, const fs::path& file) {
  auto text = readFile(src, file);
  if (!text) return text.error();
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    return fileError(file, std::string("invalid JSON: ") + e.what());
  }
}

enum class Family { None, Bert, Roberta };

// Hints are model_type-like names ("bert", "distilbert", "roberta", "gpt2").
Family familyOf(const TokenizerHint& hint) {
  std::string a = hint.architecture;
  std::transform(a.begin(), a.end(), a.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // "roberta" contains "bert": test it first.
  if (a.find("roberta") != std::string::npos || a.find("camembert") != std::string::npos ||
      a.find("longformer") != std::string::npos || a == "bart") {
    return Family::Roberta;
  }
  if (a.find("bert") != std::string::npos || a.find("electra") != std::string::npos) {
    return Family::Bert;
  }
  return Family::None;
}

int32_t lookup(const VocabList& vocab, const std::vector<AddedToken>& added,
               std::string_view token) {
  for (const AddedToken& a : added) {
    if (a.content == token) return a.id;
  }
  int32_t id = -1;
  for (const auto& [t, i] : vocab) {
    if (t == token) id = i;  // last one wins, as in the tokenizers
  }
  return id;
}

Framing framingFor(Family family, const VocabList& vocab, const std::vector<AddedToken>& added) {
  Framing f;
  const char* open = family == Family::Bert ? "[CLS]" : "<s>";
  const char* close = family == Family::Bert ? "[SEP]" : "</s>";
  if (family == Family::None) return f;
  const int32_t openId = lookup(vocab, added, open);
  const int32_t closeId = lookup(vocab, added, close);
  if (openId >= 0 && closeId >= 0) {
    f.prefix.push_back({open, openId});
    f.suffix.push_back({close, closeId});
  }
  return f;
}

int32_t padIdFor(const VocabList& vocab, const std::vector<AddedToken>& added) {
  for (const char* pad : {"[PAD]", "<pad>"}) {
    const int32_t id = lookup(vocab, added, pad);
    if (id >= 0) return id;
  }
  return -1;
}

// ---- small JSON accessors that report instead of throwing ----

std::optional<bool> optBool(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

bool boolOr(const json& obj, const char* key, bool fallback) {
  return optBool(obj, key).value_or(fallback);
}

std::string stringOr(const json& obj, const char* key, std::string fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

// tokenizer_config.json writes special tokens either as strings or as AddedToken objects.
std::string tokenStringOr(const json& obj, const char* key, std::string fallback) {
  const auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return stringOr(*it, "content", fallback);
  return fallback;
}

Result<int32_t> tokenId(const json& v, const std::string& what) {
  if (!v.is_number_integer()) return makeError(what + " is not an integer");
  const auto id = v.get<int64_t>();
  if (id < 0 || id >= kMaxTokenId) {
    return makeError(what + " = " + std::to_string(id) + " is outside [0, " +
                     std::to_string(kMaxTokenId) + ")");
  }
  return static_cast<int32_t>(id);
}

Result<VocabList> vocabFromObject(const json& obj) {
  if (!obj.is_object()) return makeError("the vocabulary is not a JSON object");
  VocabList vocab;
  vocab.reserve(obj.size());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    auto id = tokenId(it.value(), "the id of token '" + it.key() + "'");
    if (!id) return id.error();
    vocab.emplace_back(it.key(), *id);
  }
  if (vocab.empty()) return makeError("the vocabulary is empty");
  // Keep id order so "last one wins" on duplicated ids is deterministic.
  std::stable_sort(vocab.begin(), vocab.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  return vocab;
}

// ---- tokenizer.json ----

Result<std::vector<AddedToken>> parseAddedTokens(const json& root) {
  std::vector<AddedToken> out;
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) return makeError("\"added_tokens\" is not an array");
  for (size_t k = 0; k < it->size(); ++k) {
    const json& t = (*it)[k];
    const std::string where = "added_tokens[" + std::to_string(k) + "]";
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
        !t.contains("id")) {
      return makeError(where + " needs a string \"content\" and an \"id\"");
    }
    auto id = tokenId(t["id"], where + ".id");
    if (!id) return id.error();
    AddedToken a;
    a.content = t["content"].get<std::string>();
    a.id = *id;
    a.lstrip = boolOr(t, "lstrip", false);
    a.rstrip = boolOr(t, "rstrip", false);
    a.singleWord = boolOr(t, "single_word", false);
    out.push_back(std::move(a));
  }
  return out;
}

// Applies one normalizer description to the WordPiece options.
Status applyNormalizer(const json& n, WordPieceOptions& o, bool& sawLowercase) {
  if (n.is_null()) return Ok{};
  if (!n.is_object()) return makeError("\"normalizer\" is not an object");
  const std::string type = stringOr(n, "type", "");
  if (type == "BertNormalizer") {
    o.cleanText = boolOr(n, "clean_text", true);
    o.handleChineseChars = boolOr(n, "handle_chinese_chars", true);
    o.lowercase = boolOr(n, "lowercase", true);
    // strip_accents: null means "same as lowercase", as in the original BERT.
    o.stripAccents = optBool(n, "strip_accents").value_or(o.lowercase);
    sawLowercase = true;
  } else if (type == "Lowercase") {
    o.lowercase = true;
  } else if (type == "StripAccents" || type == "NFD") {
    // StripAccents only removes marks after an NFD step; together they are our flag.
    o.stripAccents = true;
  } else if (type == "Sequence") {
    const auto it = n.find("normalizers");
    if (it == n.end() || !it->is_array()) return makeError("Sequence normalizer without a list");
    for (const json& sub : *it) {
      auto s = applyNormalizer(sub, o, sawLowercase);
      if (!s) return s;
    }
  } else {
    return makeError("normalizer \"" + type + "\" is not supported");
  }
  return Ok{};
}

Status checkWordPiecePreTokenizer(const json& p) {
  if (p.is_null()) return Ok{};
  const std::string type = p.is_object() ? stringOr(p, "type", "") : "";
  if (type == "BertPreTokenizer") return Ok{};
  if (type == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array()) {
    for (const json& sub : p["pretokenizers"]) {
      auto s = checkWordPiecePreTokenizer(sub);
      if (!s) return s;
    }
    return Ok{};
  }
  return makeError("pre_tokenizer \"" + type + "\" is not supported with WordPiece");
}

Status applyByteLevelPreTokenizer(const json& p, BpeOptions& o, bool& found) {
  if (p.is_null()) return Ok{};
  const std::string type = p.is_object() ? stringOr(p, "type", "") : "";
  if (type == "ByteLevel") {
    o.addPrefixSpace = boolOr(p, "add_prefix_space", false);
    o.useRegex = boolOr(p, "use_regex", true);
    found = true;
    return Ok{};
  }
  if (type == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array()) {
    for (const json& sub : p["pretokenizers"]) {
      auto s = applyByteLevelPreTokenizer(sub, o, found);
      if (!s) return s;
    }
    return Ok{};
  }
  return makeError("pre_tokenizer \"" + type + "\" is not supported with BPE (needs ByteLevel)");
}

Result<FramingToken> pairToken(const json& v, const std::string& what) {
  if (!v.is_array() || v.size() != 2 || !v[0].is_string()) {
    return makeError(what + " is not a [token, id] pair");
  }
  auto id = tokenId(v[1], what + " id");
  if (!id) return id.error();
  return FramingToken{v[0].get<std::string>(), *id};
}

// Reads a post_processor into framing tokens; `trim` receives RoBERTa/ByteLevel
// trim_offsets when the processor carries it.
Status applyPostProcessor(const json& p, Framing& f, std::optional<bool>& trim) {
  if (!p.is_object()) return makeError("\"post_processor\" is not an object");
  const std::string type = stringOr(p, "type", "");
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto cls = pairToken(p.value("cls", json()), type + ".cls");
    if (!cls) return cls.error();
    auto sep = pairToken(p.value("sep", json()), type + ".sep");
    if (!sep) return sep.error();
    f.prefix = {*cls};
    f.suffix = {*sep};
    if (type == "RobertaProcessing") trim = boolOr(p, "trim_offsets", true);
  } else if (type == "ByteLevel") {
    trim = boolOr(p, "trim_offsets", true);
  } else if (type == "TemplateProcessing") {
    const auto single = p.find("single");
    if (single == p.end() || !single->is_array()) {
      return makeError("TemplateProcessing without a \"single\" template");
    }
    const json specials = p.value("special_tokens", json::object());
    f = Framing{};
    bool afterSequence = false;
    for (const json& piece : *single) {
      if (piece.contains("Sequence")) {
        afterSequence = true;
        continue;
      }
      const auto st = piece.find("SpecialToken");
      if (st == piece.end() || !st->is_object() || !st->contains("id") ||
          !(*st)["id"].is_string()) {
        return makeError("TemplateProcessing piece is neither Sequence nor SpecialToken");
      }
      const std::string name = (*st)["id"].get<std::string>();
      const auto sp = specials.find(name);
      if (sp == specials.end() || !sp->is_object() || !sp->contains("ids") ||
          !(*sp)["ids"].is_array()) {
        return makeError("TemplateProcessing special token '" + name + "' has no ids");
      }
      const json& ids = (*sp)["ids"];
      const json tokens = sp->value("tokens", json::array());
      for (size_t k = 0; k < ids.size(); ++k) {
        auto id = tokenId(ids[k], "special token '" + name + "' id");
        if (!id) return id.error();
        const std::string tok =
            k < tokens.size() && tokens[k].is_string() ? tokens[k].get<std::string>() : name;
        (afterSequence ? f.suffix : f.prefix).push_back({tok, *id});
      }
    }
  } else if (type == "Sequence") {
    const auto it = p.find("processors");
    if (it == p.end() || !it->is_array())
      return makeError("Sequence post_processor without a list");
    for (const json& sub : *it) {
      auto s = applyPostProcessor(sub, f, trim);
      if (!s) return s;
    }
  } else {
    return makeError("post_processor \"" + type + "\" is not supported");
  }
  return Ok{};
}

Result<std::vector<std::pair<std::string, std::string>>> parseJsonMerges(const json& merges) {
  if (!merges.is_array()) return makeError("\"model.merges\" is not an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const json& m = merges[k];
    const std::string where = "model.merges[" + std::to_string(k) + "]";
    if (m.is_string()) {
      // Older writers join the pair with one space; tokens then cannot hold spaces.
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return makeError(where + " \"" + s + "\" is not two tokens separated by one space");
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return makeError(where + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return out;
}

Result<std::shared_ptr<const Tokenizer>> loadTokenizerJson(const Files& src,
                                                           const TokenizerHint& hint) {
  const fs::path file = src.dir / "tokenizer.json";
  auto parsed = readJson(src, file);
  if (!parsed) return parsed.error();
  const json& root = *parsed;
  auto fail = [&](const std::string& problem) -> Result<std::shared_ptr<const Tokenizer>> {
    return fileError(file, problem);
  };
  if (!root.is_object()) return fail("the top level is not a JSON object");
  const auto modelIt = root.find("model");
  if (modelIt == root.end() || !modelIt->is_object()) return fail("no \"model\" object");
  const json& model = *modelIt;
  std::string type = stringOr(model, "type", "");
  if (type.empty()) {
    // Files written before "type" existed: the keys tell the model apart.
    if (model.contains("merges")) {
      type = "BPE";
    } else if (model.contains("vocab") && model["vocab"].is_object()) {
      type = "WordPiece";
    }
  }
  if (type != "WordPiece" && type != "BPE") {
    return fail("model type \"" + type + "\" is not supported (WordPiece or BPE)");
  }
  if (!model.contains("vocab")) return fail("no \"model.vocab\"");
  auto vocab = vocabFromObject(model["vocab"]);
  if (!vocab) return fail("model.vocab: " + vocab.message());
  auto added = parseAddedTokens(root);
  if (!added) return fail(added.message());

  Framing framing;
  std::optional<bool> trim;
  const json post = root.value("post_processor", json());
  const bool filesSayFraming = !post.is_null();
  if (filesSayFraming) {
    auto s = applyPostProcessor(post, framing, trim);
    if (!s) return fail(s.message());
  } else {
    framing = framingFor(familyOf(hint), *vocab, *added);
  }
  int32_t padId = padIdFor(*vocab, *added);
  if (const auto pad = root.find("padding"); pad != root.end() && pad->is_object()) {
    if (auto id = tokenId(pad->value("pad_id", json()), "padding.pad_id")) padId = *id;
  }

  if (type == "WordPiece") {
    WordPieceOptions o;
    // Without a normalizer nothing is cleaned or lowercased.
    o.cleanText = o.handleChineseChars = o.lowercase = o.stripAccents = false;
    bool sawBert = false;
    if (auto s = applyNormalizer(root.value("normalizer", json()), o, sawBert); !s) {
      return fail(s.message());
    }
    if (auto s = checkWordPiecePreTokenizer(root.value("pre_tokenizer", json())); !s) {
      return fail(s.message());
    }
    o.unkToken = stringOr(model, "unk_token", "[UNK]");
    o.continuingPrefix = stringOr(model, "continuing_subword_prefix", "##");
    if (model.contains("max_input_chars_per_word")) {
      auto m = tokenId(model["max_input_chars_per_word"], "model.max_input_chars_per_word");
      if (!m) return fail(m.message());
      o.maxInputCharsPerWord = *m;
    }
    auto t = WordPieceTokenizer::create(*vocab, std::move(o), std::move(*added), std::move(framing),
                                        padId);
    if (!t) return fail(t.message());
    return std::shared_ptr<const Tokenizer>(std::move(*t));
  }

  BpeOptions o;
  if (const json n = root.value("normalizer", json()); !n.is_null()) {
    return fail("normalizer \"" + (n.is_object() ? stringOr(n, "type", "") : std::string()) +
                "\" is not supported with BPE");
  }
  bool byteLevel = false;
  if (auto s = applyByteLevelPreTokenizer(root.value("pre_tokenizer", json()), o, byteLevel); !s) {
    return fail(s.message());
  }
  if (!byteLevel) return fail("BPE without a ByteLevel pre_tokenizer is not supported");
  if (!stringOr(model, "continuing_subword_prefix", "").empty() ||
      !stringOr(model, "end_of_word_suffix", "").empty() || boolOr(model, "byte_fallback", false)) {
    return fail("BPE with a subword prefix/suffix or byte_fallback is not supported");
  }
  o.unkToken = stringOr(model, "unk_token", "");
  o.ignoreMerges = boolOr(model, "ignore_merges", false);
  o.trimOffsets = trim.value_or(false);
  const auto mergesIt = model.find("merges");
  if (mergesIt == model.end()) return fail("no \"model.merges\"");
  auto merges = parseJsonMerges(*mergesIt);
  if (!merges) return fail(merges.message());
  auto t = BpeTokenizer::create(*vocab, *merges, std::move(o), std::move(*added),
                                std::move(framing), padId);
  if (!t) return fail(t.message());
  return std::shared_ptr<const Tokenizer>(std::move(*t));
}

// ---- vocab.txt ----

Result<std::shared_ptr<const Tokenizer>> loadVocabTxt(const Files& src,
                                                      const TokenizerHint& hint) {
  const fs::path file = src.dir / "vocab.txt";
  auto text = readFile(src, file);
  if (!text) return text.error();
  VocabList vocab;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string token = text->substr(pos, nl - pos);
    if (!token.empty() && token.back() == '\r') token.pop_back();
    vocab.emplace_back(std::move(token), static_cast<int32_t>(vocab.size()));
    if (vocab.size() >= static_cast<size_t>(kMaxTokenId)) {
      return fileError(file, "more than " + std::to_string(kMaxTokenId) + " lines");
    }
    pos = nl + 1;
  }
  if (vocab.empty()) return fileError(file, "the vocabulary is empty");

  WordPieceOptions o;
  json config = json::object();
  const fs::path configFile = src.dir / "tokenizer_config.json";
  if (exists(src, configFile)) {
    auto c = readJson(src, configFile);
    if (!c) return c.error();
    if (!c->is_object()) return fileError(configFile, "the top level is not a JSON object");
    config = std::move(*c);
  }
  o.lowercase = boolOr(config, "do_lower_case", true);
  o.stripAccents = optBool(config, "strip_accents").value_or(o.lowercase);
  o.handleChineseChars = boolOr(config, "tokenize_chinese_chars", true);
  o.unkToken = tokenStringOr(config, "unk_token", "[UNK]");

  // The slow tokenizer never splits its special tokens; neither do we.
  std::vector<AddedToken> added;
  const std::string cls = tokenStringOr(config, "cls_token", "[CLS]");
  const std::string sep = tokenStringOr(config, "sep_token", "[SEP]");
  const std::string pad = tokenStringOr(config, "pad_token", "[PAD]");
  for (const std::string& s :
       {pad, o.unkToken, cls, sep, tokenStringOr(config, "mask_token", "[MASK]")}) {
    const int32_t id = lookup(vocab, {}, s);
    if (id >= 0) added.push_back(AddedToken{s, id});
  }
  Framing framing;
  const int32_t clsId = lookup(vocab, {}, cls);
  const int32_t sepId = lookup(vocab, {}, sep);
  if (clsId >= 0 && sepId >= 0) {
    framing.prefix.push_back({cls, clsId});
    framing.suffix.push_back({sep, sepId});
  }
  (void)hint;  // vocab.txt is always BERT-style: [CLS] … [SEP] when present
  auto t = WordPieceTokenizer::create(vocab, std::move(o), std::move(added), std::move(framing),
                                      lookup(vocab, {}, pad));
  if (!t) return fileError(file, t.message());
  return std::shared_ptr<const Tokenizer>(std::move(*t));
}

// ---- vocab.json + merges.txt ----

Result<std::shared_ptr<const Tokenizer>> loadVocabJsonMerges(const Files& src,
                                                             const TokenizerHint& hint) {
  const fs::path vocabFile = src.dir / "vocab.json";
  const fs::path mergesFile = src.dir / "merges.txt";
  auto parsed = readJson(src, vocabFile);
  if (!parsed) return parsed.error();
  auto vocab = vocabFromObject(*parsed);
  if (!vocab) return fileError(vocabFile, vocab.message());

  auto text = readFile(src, mergesFile);
  if (!text) return text.error();
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(*text);
  std::string line;
  size_t lineNo = 0;
  while (std::getline(lines, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineNo == 1 && line.rfind("#version", 0) == 0) continue;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return fileError(mergesFile, "line " + std::to_string(lineNo) + " \"" + line +
                                       "\" is not two tokens separated by one space");
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }

  const Family family = familyOf(hint);
  std::vector<AddedToken> added;
  BpeOptions o;
  if (family == Family::Roberta) {
    // RobertaTokenizerFast defaults: offsets trimmed, <mask> eats the space before it.
    o.trimOffsets = true;
    for (const char* s : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}) {
      const int32_t id = lookup(*vocab, {}, s);
      if (id >= 0) added.push_back(AddedToken{s, id, std::string_view(s) == "<mask>"});
    }
  } else {
    const int32_t id = lookup(*vocab, {}, "<|endoftext|>");
    if (id >= 0) added.push_back(AddedToken{"<|endoftext|>", id});
  }
  Framing framing = framingFor(family, *vocab, added);
  const int32_t padId = padIdFor(*vocab, added);
  auto t = BpeTokenizer::create(*vocab, merges, std::move(o), std::move(added), std::move(framing),
                                padId);
  if (!t) return makeError(vocabFile.string() + " + merges.txt: " + t.message());
  return std::shared_ptr<const Tokenizer>(std::move(*t));
}

Result<std::shared_ptr<const Tokenizer>> loadImpl(const Files& src, const TokenizerHint& hint) {
  const fs::path& dir = src.dir;
  if (exists(src, dir / "tokenizer.json")) return loadTokenizerJson(src, hint);
  if (exists(src, dir / "vocab.txt")) return loadVocabTxt(src, hint);
  const bool hasVocabJson = exists(src, dir / "vocab.json");
  const bool hasMerges = exists(src, dir / "merges.txt");
  if (hasVocabJson && hasMerges) return loadVocabJsonMerges(src, hint);
  if (hasVocabJson) return fileError(dir / "merges.txt", "missing (vocab.json needs it)");
  if (hasMerges) return fileError(dir / "vocab.json", "missing (merges.txt needs it)");
  return std::shared_ptr<const Tokenizer>();
}

Result<std::shared_ptr<const Tokenizer>> loadGuarded(const Files& src, const TokenizerHint& hint) {
  // nlohmann::json and the standard library may still throw (bad_alloc, a type
  // error missed above); the API promises an Error instead.
  try {
    return loadImpl(src, hint);
  } catch (const std::exception& e) {
    return makeError(src.dir.string() + ": cannot load the tokenizer: " + e.what());
  }
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> loadTokenizer(const std::filesystem::path& dir,
                                                       const TokenizerHint& hint) {
  return loadGuarded(Files{dir, nullptr}, hint);
}

Result<std::shared_ptr<const Tokenizer>> loadTokenizer(
    const std::map<std::string, std::string>& files, const std::string& origin,
    const TokenizerHint& hint) {
  return loadGuarded(Files{origin, &files}, hint);
}

}  // namespace attn::text
