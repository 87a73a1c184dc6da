// Tokenizer tests: ids and tokens against independent references (tests/tools/
// ref_bert.py, a port of Hugging Face's python BertTokenizer, and ref_gpt2.js,
// the gpt-3-encoder npm package), offsets checked for consistency with the
// input, and malformed files / bytes that must give an Error or sane output.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "core/text/bpe.h"
#include "core/text/tokenizer.h"
#include "core/text/unicode.h"
#include "core/text/wordpiece.h"

using attn::text::Encoding;
using attn::text::Tokenizer;
using attn::text::TokenizerHint;

namespace {

const QString kDataDir = QStringLiteral(ATTN_TEST_DATA_DIR "/tokenizers");

// Inputs this long must still tokenize quickly (BPE merges use a heap).
constexpr int kHugeWordChars = 50000;
constexpr int kFuzzIterations = 1500;
constexpr int kCorruptions = 60;

std::string str(const QByteArray& b) { return std::string(b.constData(), size_t(b.size())); }

QJsonArray loadCases(const QString& file) {
  QFile f(kDataDir + "/" + file);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QJsonDocument::fromJson(f.readAll()).object().value("cases").toArray();
}

// The byte a byte-level BPE character stands for (inverse of bytes_to_unicode).
std::string byteLevelDecode(const std::string& token) {
  static const std::map<char32_t, char> inverse = [] {
    std::map<char32_t, char> m;
    for (int b = 0; b < 256; ++b) m[attn::text::byteToUnicode()[size_t(b)]] = char(b);
    return m;
  }();
  std::string out;
  for (char32_t c : attn::text::decodeUtf8(token)) {
    const auto it = inverse.find(c);
    out.push_back(it == inverse.end() ? '?' : it->second);
  }
  return out;
}

// What BERT uncased makes of a slice of input: cleaned, lowercased, accents gone.
std::u32string bertNormalize(std::u32string_view s) {
  std::u32string lowered, out;
  for (char32_t c : s) {
    if (c == 0 || c == attn::text::kReplacementChar) continue;
    if (c != U'\t' && c != U'\n' && c != U'\r' && attn::text::isOther(c)) continue;
    attn::text::appendLowercase(c, lowered);
  }
  for (char32_t c : attn::text::nfd(lowered)) {
    if (!attn::text::isNonspacingMark(c)) out.push_back(c);
  }
  return out;
}

std::u32string slice(const std::u32string& text, std::pair<int32_t, int32_t> span) {
  return text.substr(size_t(span.first), size_t(span.second - span.first));
}

bool sharesSpan(const Encoding& e, size_t i) {
  return (i > 0 && e.offsets[i - 1] == e.offsets[i]) ||
         (i + 1 < e.offsets.size() && e.offsets[i + 1] == e.offsets[i]);
}

// Offsets must stay inside the text and never go backwards.
void checkOffsetBounds(const Encoding& e, size_t textChars) {
  QCOMPARE(e.offsets.size(), e.ids.size());
  QCOMPARE(e.tokens.size(), e.ids.size());
  int32_t lastBegin = 0;
  for (size_t i = 0; i < e.offsets.size(); ++i) {
    const auto [b, end] = e.offsets[i];
    QVERIFY2(b >= 0 && b <= end && size_t(end) <= textChars,
             qPrintable(QString("token %1 has offsets [%2, %3) for %4 chars")
                            .arg(i)
                            .arg(b)
                            .arg(end)
                            .arg(textChars)));
    if (b == 0 && end == 0) continue;  // framing tokens
    QVERIFY2(b >= lastBegin,
             qPrintable(QString("token %1 starts before token %2").arg(i).arg(i - 1)));
    lastBegin = b;
  }
}

QString showIds(const std::vector<int32_t>& ids) {
  QStringList parts;
  for (int32_t id : ids) parts << QString::number(id);
  return "[" + parts.join(", ") + "]";
}

}  // namespace

class TestTokenizer : public QObject {
  Q_OBJECT

 private:
  std::map<QString, std::shared_ptr<const Tokenizer>> loaded_;

  std::shared_ptr<const Tokenizer> get(const QString& dir) const {
    const auto it = loaded_.find(dir);
    return it == loaded_.end() ? nullptr : it->second;
  }

  static void writeFile(const QString& path, const QByteArray& data) {
    QDir().mkpath(QFileInfo(path).path());
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    QCOMPARE(f.write(data), qint64(data.size()));
  }

  static QByteArray readData(const QString& relative) {
    QFile f(kDataDir + "/" + relative);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.readAll();
  }

 private:
  // Data rows (dir, text, ids, tokens): every expected case, once per tokenizer directory.
  static void addExpectedRows(const char* file, const QStringList& dirs) {
    QTest::addColumn<QString>("dir");
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QList<int>>("ids");
    QTest::addColumn<QStringList>("tokens");
    const QJsonArray cases = loadCases(file);
    QVERIFY(cases.size() >= 30);
    for (const QString& dir : dirs) {
      for (const auto& v : cases) {
        const QJsonObject c = v.toObject();
        QList<int> ids;
        for (const auto& id : c["ids"].toArray()) ids << id.toInt();
        QStringList tokens;
        for (const auto& t : c["tokens"].toArray()) tokens << t.toString();
        QTest::addRow("%s/%s", qPrintable(dir), qPrintable(c["name"].toString()))
            << dir << c["text"].toString().toUtf8() << ids << tokens;
      }
    }
  }

 private slots:
  void initTestCase() {
    const std::pair<const char*, const char*> dirs[] = {
        {"bert-base-uncased", "bert"},
        {"bert-base-uncased-json", "bert"},
        {"gpt2", "gpt2"},
        {"gpt2-json", "gpt2"},
        {"tiny-bpe-pairs", ""},
        {"tiny-bpe-files", "roberta"},
    };
    for (const auto& [dir, arch] : dirs) {
      auto r = attn::text::loadTokenizer(
          std::filesystem::path(str((kDataDir + "/" + dir).toUtf8())), TokenizerHint{arch});
      QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
      QVERIFY2(*r != nullptr, dir);
      loaded_[dir] = *r;
    }
  }

  void unicodeProperties() {
    using namespace attn::text;
    QCOMPARE(QString(unicodeVersion()).isEmpty(), false);
    QCOMPARE(category(U'A'), Category::Lu);
    QCOMPARE(category(U'é'), Category::Ll);
    QCOMPARE(category(0x0301), Category::Mn);
    QCOMPARE(category(U'我'), Category::Lo);
    QCOMPARE(category(U'5'), Category::Nd);
    QCOMPARE(category(U'½'), Category::No);
    QCOMPARE(category(U'$'), Category::Sc);
    QCOMPARE(category(0x1F917), Category::So);
    QCOMPARE(category(0x00AD), Category::Cf);
    QCOMPARE(category(0xE000), Category::Co);
    QCOMPARE(category(0x10FFFF), Category::Cn);
    QCOMPARE(category(0x110000), Category::Cn);
    QVERIFY(isPunctuation(U'«') && isPunctuation(U'.') && !isPunctuation(U'$'));
    QVERIFY(isSymbol(U'$') && isSymbol(U'∑'));
    QVERIFY(isLetter(U'ß') && isNumber(U'²') && !isLetter(U'_'));
    QVERIFY(isControl(0x0007) && isControl(0x200B) && !isControl(U'a'));
    QVERIFY(isWhiteSpace(0x3000) && isWhiteSpace(0x85) && !isWhiteSpace(0x1C));
    QVERIFY(isPythonSpace(0x1C) && isPythonSpace(U'\t') && !isPythonSpace(0x200B));
    QVERIFY(isCjkIdeograph(U'我') && isCjkIdeograph(0xF900) && !isCjkIdeograph(U'こ'));

    std::u32string lower;
    appendLowercase(U'İ', lower);
    QVERIFY(lower == std::u32string({U'i', 0x0307}));
    lower.clear();
    for (char32_t c : std::u32string{U'A', U'Σ', U'Ω', U'Ä', 0x10400, U'1'}) {
      appendLowercase(c, lower);  // 0x10400: Deseret, outside the BMP
    }
    QVERIFY(lower == std::u32string({U'a', U'σ', U'ω', U'ä', 0x10428, U'1'}));

    QVERIFY(nfd(U"é") == std::u32string({U'e', 0x0301}));
    QVERIFY(nfd(U"\u1E69") == std::u32string({U's', 0x0323, 0x0307}));  // ṩ
    // Marks are reordered by combining class: below (220) before above (230).
    QVERIFY(nfd(std::u32string({U'a', 0x0301, 0x0316})) == std::u32string({U'a', 0x0316, 0x0301}));
    QVERIFY(nfd(U"한") == std::u32string({0x1112, 0x1161, 0x11AB}));
    QVERIFY(nfd(U"\uF900") == std::u32string({0x8C48}));
    QCOMPARE(int(combiningClass(0x0301)), 230);
    QCOMPARE(int(combiningClass(U'a')), 0);
  }

  void utf8Decoding_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QList<uint>>("expected");
    const uint R = 0xFFFD;
    QTest::newRow("ascii") << QByteArray("ab") << QList<uint>{'a', 'b'};
    QTest::newRow("two_byte") << QByteArray("\xc3\xa9") << QList<uint>{0xE9};
    QTest::newRow("four_byte") << QByteArray("\xf0\x9f\xa4\x97") << QList<uint>{0x1F917};
    QTest::newRow("lone_continuation") << QByteArray("\x80x") << QList<uint>{R, 'x'};
    QTest::newRow("invalid_lead") << QByteArray("\xff\xfe") << QList<uint>{R, R};
    QTest::newRow("truncated_end") << QByteArray("a\xe2\x82") << QList<uint>{'a', R};
    QTest::newRow("truncated_mid") << QByteArray("\xf0\x9f\x98 x") << QList<uint>{R, ' ', 'x'};
    QTest::newRow("overlong") << QByteArray("\xc0\xaf") << QList<uint>{R, R};
    QTest::newRow("overlong_e0") << QByteArray("\xe0\x80\xaf") << QList<uint>{R, R, R};
    QTest::newRow("surrogate") << QByteArray("\xed\xa0\x80") << QList<uint>{R, R, R};
    QTest::newRow("above_max") << QByteArray("\xf4\x90\x80\x80") << QList<uint>{R, R, R, R};
    QTest::newRow("max") << QByteArray("\xf4\x8f\xbf\xbf") << QList<uint>{0x10FFFF};
    QTest::newRow("lead_only") << QByteArray("\xc3") << QList<uint>{R};
  }

  void utf8Decoding() {
    QFETCH(QByteArray, bytes);
    QFETCH(QList<uint>, expected);
    const std::u32string got = attn::text::decodeUtf8(str(bytes));
    QList<uint> gotList;
    for (char32_t c : got) gotList << uint(c);
    QCOMPARE(gotList, expected);
    // Whatever came in, re-encoding gives valid UTF-8 that decodes to the same.
    QVERIFY(attn::text::decodeUtf8(attn::text::encodeUtf8(got)) == got);
  }

  void gpt2PreTokenizer_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QStringList>("pieces");
    QTest::newRow("words") << "Hello world" << QStringList{"Hello", " world"};
    QTest::newRow("spaces") << "a  b\t\tc\n\nd   "
                            << QStringList{"a", " ", " b", "\t", "\t", "c", "\n", "\n", "d", "   "};
    QTest::newRow("contractions") << "don't we'll 'S"
                                  << QStringList{"don", "'t", " we", "'ll", " '", "S"};
    QTest::newRow("numbers") << "abc123 4.5" << QStringList{"abc", "123", " 4", ".", "5"};
    QTest::newRow("punct") << "?!' x" << QStringList{"?!'", " x"};
    QTest::newRow("trailing_space") << "x " << QStringList{"x", " "};
  }

  void gpt2PreTokenizer() {
    QFETCH(QString, text);
    QFETCH(QStringList, pieces);
    const std::u32string cps = attn::text::decodeUtf8(str(text.toUtf8()));
    QStringList got;
    for (const auto& [b, e] : attn::text::gpt2PreTokenize(cps)) {
      got << QString::fromStdString(attn::text::encodeUtf8(cps.substr(size_t(b), size_t(e - b))));
    }
    QCOMPARE(got, pieces);
  }

  void bert_data() {
    addExpectedRows("expected_bert.json", {"bert-base-uncased", "bert-base-uncased-json"});
  }

  void bert() {
    QFETCH(QString, dir);
    QFETCH(QByteArray, text);
    QFETCH(QList<int>, ids);
    QFETCH(QStringList, tokens);
    const auto tok = get(dir);
    QVERIFY(tok);
    const Encoding e = tok->encode(str(text));
    QList<int> gotIds(e.ids.begin(), e.ids.end());
    QStringList gotTokens;
    for (const auto& t : e.tokens) gotTokens << QString::fromStdString(t);
    QCOMPARE(gotTokens, tokens);
    QCOMPARE(gotIds, ids);

    const std::u32string cps = attn::text::decodeUtf8(str(text));
    checkOffsetBounds(e, cps.size());
    QCOMPARE(e.offsets.front(), std::make_pair(0, 0));
    QCOMPARE(e.offsets.back(), std::make_pair(0, 0));
    for (size_t i = 1; i + 1 < e.ids.size(); ++i) {
      const std::u32string original = slice(cps, e.offsets[i]);
      QVERIFY2(!original.empty(), qPrintable(QString("token %1 has an empty span").arg(i)));
      const std::string& t = e.tokens[i];
      if (t == "[UNK]") continue;
      if (t.size() > 2 && t.front() == '[' && t.back() == ']') {
        QCOMPARE(attn::text::encodeUtf8(original), t);  // special token typed in the text
        continue;
      }
      const std::string piece = t.rfind("##", 0) == 0 ? t.substr(2) : t;
      const std::string normalized = attn::text::encodeUtf8(bertNormalize(original));
      // Several tokens can come from one character (Hangul jamo): then containment.
      if (sharesSpan(e, i)) {
        QVERIFY2(normalized.find(piece) != std::string::npos,
                 qPrintable(QString::fromStdString(piece + " not in " + normalized)));
      } else {
        QCOMPARE(QString::fromStdString(normalized), QString::fromStdString(piece));
      }
    }

    // Without framing the same tokens come out, minus [CLS] and [SEP].
    const Encoding bare = tok->encode(str(text), /*addSpecial=*/false);
    QCOMPARE(bare.ids.size() + 2, e.ids.size());
    QVERIFY(std::equal(bare.ids.begin(), bare.ids.end(), e.ids.begin() + 1));
  }

  void gpt2_data() { addExpectedRows("expected_gpt2.json", {"gpt2", "gpt2-json"}); }

  void gpt2() {
    QFETCH(QString, dir);
    QFETCH(QByteArray, text);
    QFETCH(QList<int>, ids);
    QFETCH(QStringList, tokens);
    const auto tok = get(dir);
    QVERIFY(tok);
    const Encoding e = tok->encode(str(text));
    QList<int> gotIds(e.ids.begin(), e.ids.end());
    QStringList gotTokens;
    for (const auto& t : e.tokens) gotTokens << QString::fromStdString(t);
    QCOMPARE(gotTokens, tokens);
    QCOMPARE(gotIds, ids);

    const std::u32string cps = attn::text::decodeUtf8(str(text));
    checkOffsetBounds(e, cps.size());
    // Byte positions where a character starts, to know which tokens hold whole characters.
    std::vector<bool> charStart(size_t(text.size()) + 1, false);
    charStart.back() = true;
    for (size_t k = 0; k < size_t(text.size()); ++k) {
      charStart[k] = (static_cast<unsigned char>(text[qsizetype(k)]) & 0xC0) != 0x80;
    }
    std::string all;
    for (size_t i = 0; i < e.ids.size(); ++i) {
      const std::string bytes = byteLevelDecode(e.tokens[i]);
      const size_t from = all.size();
      all += bytes;
      QVERIFY(all.size() <= size_t(text.size()));
      const std::string original = attn::text::encodeUtf8(slice(cps, e.offsets[i]));
      if (charStart[from] && charStart[all.size()]) {
        QCOMPARE(QByteArray::fromStdString(bytes), QByteArray::fromStdString(original));
      } else {
        // A token holding part of a character reports the whole character.
        QVERIFY2(original.find(bytes) != std::string::npos, qPrintable(QString("token %1").arg(i)));
      }
    }
    QCOMPARE(QByteArray::fromStdString(all), text);
  }

  void tokenizerJsonMatchesFiles() {
    const QJsonArray cases = loadCases("expected_gpt2.json");
    const std::pair<const char*, const char*> pairs[] = {
        {"bert-base-uncased", "bert-base-uncased-json"},
        {"gpt2", "gpt2-json"},
        {"tiny-bpe-files", "tiny-bpe-pairs"},
    };
    for (const auto& [a, b] : pairs) {
      const auto ta = get(a), tb = get(b);
      QVERIFY(ta && tb);
      QCOMPARE(ta->kind(), tb->kind());
      QCOMPARE(ta->padId(), tb->padId());
      for (const auto& v : cases) {
        const std::string text = str(v.toObject()["text"].toString().toUtf8());
        const Encoding ea = ta->encode(text), eb = tb->encode(text);
        QVERIFY2(ea.ids == eb.ids, qPrintable(QString("%1 vs %2 on '%3': %4 vs %5")
                                                  .arg(a, b, QString::fromStdString(text),
                                                       showIds(ea.ids), showIds(eb.ids))));
        QVERIFY(ea.tokens == eb.tokens);
        QVERIFY(ea.offsets == eb.offsets);
      }
    }
  }

  void tinyRobertaFraming() {
    const auto tok = get("tiny-bpe-pairs");
    QVERIFY(tok);
    const Encoding e = tok->encode(" the world");
    QCOMPARE(e.tokens, (std::vector<std::string>{"<s>", "Ġthe", "Ġworld", "</s>"}));
    QCOMPARE(e.ids.front(), tok->tokenToId("<s>"));
    QCOMPARE(e.offsets.front(), std::make_pair(0, 0));
    QCOMPARE(e.offsets.back(), std::make_pair(0, 0));
    // trim_offsets: "Ġthe" covers "the", not the space before it.
    QCOMPARE(e.offsets[1], std::make_pair(1, 4));
    QCOMPARE(e.offsets[2], std::make_pair(5, 10));
    QCOMPARE(tok->padId(), tok->tokenToId("<pad>"));
    // Added tokens typed in the text are matched whole.
    const Encoding s = tok->encode("a</s>b", false);
    QCOMPARE(s.tokens, (std::vector<std::string>{"a", "</s>", "b"}));
    QCOMPARE(s.offsets[1], std::make_pair(1, 5));
  }

  void vocabularyLookups() {
    const auto bert = get("bert-base-uncased");
    QVERIFY(bert);
    QCOMPARE(bert->kind(), std::string("wordpiece"));
    QCOMPARE(bert->vocabSize(), 30522);
    QCOMPARE(bert->padId(), 0);
    QCOMPARE(bert->tokenToId("[UNK]"), 100);
    QCOMPARE(bert->tokenToId("[CLS]"), 101);
    QCOMPARE(bert->tokenToId("[SEP]"), 102);
    QCOMPARE(bert->tokenToId("[MASK]"), 103);
    QCOMPARE(bert->tokenToId("the"), 1996);
    QCOMPARE(bert->tokenToId("##s"), 2015);
    QCOMPARE(bert->tokenToId("no-such-token"), -1);
    QCOMPARE(bert->idToToken(7592), std::string("hello"));
    QCOMPARE(bert->idToToken(-1), std::string());
    QCOMPARE(bert->idToToken(30522), std::string());
    const Encoding e = bert->encode("Hello world");
    QCOMPARE(e.ids, (std::vector<int32_t>{101, 7592, 2088, 102}));
    QCOMPARE(e.offsets[1], std::make_pair(0, 5));
    QCOMPARE(e.offsets[2], std::make_pair(6, 11));
    // Accent-stripped characters map back to the original character.
    const Encoding cafe = bert->encode("Café!", false);
    QCOMPARE(cafe.tokens, (std::vector<std::string>{"cafe", "!"}));
    QCOMPARE(cafe.offsets[0], std::make_pair(0, 4));
    QCOMPARE(cafe.offsets[1], std::make_pair(4, 5));

    const auto gpt2 = get("gpt2");
    QVERIFY(gpt2);
    QCOMPARE(gpt2->kind(), std::string("bpe"));
    QCOMPARE(gpt2->vocabSize(), 50257);
    QCOMPARE(gpt2->padId(), -1);
    QCOMPARE(gpt2->encode("Hello world").ids, (std::vector<int32_t>{15496, 995}));
    QCOMPARE(gpt2->idToToken(50256), std::string("<|endoftext|>"));
    const Encoding eot = gpt2->encode("a<|endoftext|>b");
    QCOMPARE(eot.ids, (std::vector<int32_t>{64, 50256, 65}));
    QCOMPARE(eot.offsets[1], std::make_pair(1, 14));
    // A token covering part of a multi-byte character gets that character's span.
    const Encoding emoji = gpt2->encode("🤗");
    QVERIFY(emoji.ids.size() >= 2);
    for (const auto& o : emoji.offsets) QCOMPARE(o, std::make_pair(0, 1));
  }

  void invalidUtf8Input_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("asReplaced");  // what the bytes decode to
    QTest::newRow("ff") << QByteArray("abc\xff def") << QString::fromUtf8("abc\uFFFD def");
    QTest::newRow("truncated") << QByteArray("word \xe2\x82") << QString::fromUtf8("word \uFFFD");
    QTest::newRow("surrogate") << QByteArray("x\xed\xa0\x80y")
                               << QString::fromUtf8("x\uFFFD\uFFFD\uFFFDy");
    QTest::newRow("nul") << QByteArray("a\0b", 3) << QString(QChar(u'a')) + QChar(0) + "b";
    QTest::newRow("only_bad") << QByteArray("\x80\x80\x80")
                              << QString::fromUtf8("\uFFFD\uFFFD\uFFFD");
  }

  void invalidUtf8Input() {
    QFETCH(QByteArray, bytes);
    QFETCH(QString, asReplaced);
    const std::string replaced = str(asReplaced.toUtf8());
    for (const char* dir : {"bert-base-uncased", "gpt2", "tiny-bpe-pairs"}) {
      const auto tok = get(dir);
      QVERIFY(tok);
      const Encoding e = tok->encode(str(bytes));
      checkOffsetBounds(e, attn::text::decodeUtf8(str(bytes)).size());
      // Invalid bytes behave exactly like U+FFFD typed in the text.
      const Encoding r = tok->encode(replaced);
      QVERIFY2(e.ids == r.ids, dir);
      QVERIFY(e.offsets == r.offsets);
    }
  }

  void hugeWord() {
    const std::string word(size_t(kHugeWordChars), 'a');
    const auto bert = get("bert-base-uncased");
    const Encoding b = bert->encode(word);
    QCOMPARE(b.tokens, (std::vector<std::string>{"[CLS]", "[UNK]", "[SEP]"}));
    QCOMPARE(b.offsets[1], std::make_pair(0, kHugeWordChars));

    const auto gpt2 = get("gpt2");
    const Encoding g = gpt2->encode(word + " " + word);
    std::string all;
    for (const auto& t : g.tokens) all += byteLevelDecode(t);
    QCOMPARE(all.size(), word.size() * 2 + 1);
    checkOffsetBounds(g, all.size());
    QCOMPARE(g.offsets.back().second, kHugeWordChars * 2 + 1);
  }

  void randomBytes() {
    // Random bytes biased towards UTF-8 lead/continuation bytes and ASCII.
    std::mt19937 rng(1234);
    const unsigned char alphabet[] = {'a',  'Z',  ' ',  '\t', '\n', '\'', 's',  '1',
                                      '.',  '#',  0x00, 0x7F, 0x80, 0xA9, 0xBF, 0xC3,
                                      0xE2, 0xED, 0xF0, 0xF4, 0xFF, 0x9F, 0x98, 0x82};
    std::uniform_int_distribution<size_t> pick(0, sizeof(alphabet) - 1);
    std::uniform_int_distribution<int> len(0, 40);
    for (int it = 0; it < kFuzzIterations; ++it) {
      std::string s;
      const int n = len(rng);
      for (int k = 0; k < n; ++k) s.push_back(char(alphabet[pick(rng)]));
      const std::u32string cps = attn::text::decodeUtf8(s);
      for (const char* dir : {"bert-base-uncased", "gpt2"}) {
        const auto tok = get(dir);
        const Encoding e = tok->encode(s);
        checkOffsetBounds(e, cps.size());
        for (int32_t id : e.ids) QVERIFY(id >= 0 && id < tok->vocabSize());
      }
      // Byte-level BPE loses nothing: the tokens spell the (repaired) input.
      std::string all;
      for (const auto& t : get("gpt2")->encode(s).tokens) all += byteLevelDecode(t);
      QCOMPARE(QByteArray::fromStdString(all),
               QByteArray::fromStdString(attn::text::encodeUtf8(cps)));
    }
  }

  void concurrentEncode() {
    const auto gpt2 = get("gpt2");
    const QJsonArray cases = loadCases("expected_gpt2.json");
    std::vector<std::string> texts;
    for (const auto& v : cases) texts.push_back(str(v.toObject()["text"].toString().toUtf8()));
    std::vector<std::vector<int32_t>> expected;
    for (const auto& t : texts) expected.push_back(gpt2->encode(t).ids);
    bool ok[2] = {true, true};
    auto work = [&](int w) {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          if (gpt2->encode(texts[i]).ids != expected[i]) ok[w] = false;
        }
      }
    };
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
    QVERIFY(ok[0] && ok[1]);
  }

  void malformedFiles_data() {
    QTest::addColumn<QStringList>("names");
    QTest::addColumn<QList<QByteArray>>("contents");
    QTest::addColumn<QString>("hint");
    QTest::addColumn<QStringList>("messageParts");  // empty: must load

    const QByteArray gptVocab = readData("gpt2/vocab.json");
    const QByteArray gptMerges = readData("gpt2/merges.txt");
    const QByteArray bertVocab = readData("bert-base-uncased/vocab.txt");
    const QByteArray tinyJson = readData("tiny-bpe-pairs/tokenizer.json");
    QVERIFY(!gptVocab.isEmpty() && !gptMerges.isEmpty() && !bertVocab.isEmpty());

    auto row = [](const char* name, QStringList names, QList<QByteArray> contents, QString hint,
                  QStringList parts) { QTest::newRow(name) << names << contents << hint << parts; };
    row("truncated_vocab_json", {"vocab.json", "merges.txt"}, {gptVocab.left(1000), gptMerges},
        "gpt2", {"vocab.json", "invalid JSON"});
    row("merges_unknown_token", {"vocab.json", "merges.txt"},
        {gptVocab, "#version: 0.2\nĠ t\nzzzq qqqz\n"}, "gpt2", {"merges.txt", "zzzq"});
    row("merges_three_parts", {"vocab.json", "merges.txt"}, {gptVocab, "#version: 0.2\na b c\n"},
        "gpt2", {"merges.txt", "line 2"});
    row("merges_without_version_ok", {"vocab.json", "merges.txt"}, {gptVocab, "Ġ t\r\n\r\n"},
        "gpt2", {});
    row("empty_vocab_json", {"vocab.json", "merges.txt"}, {"{}", ""}, "gpt2",
        {"vocab.json", "empty"});
    row("vocab_json_not_object", {"vocab.json", "merges.txt"}, {"[1, 2]", ""}, "gpt2",
        {"vocab.json", "not a JSON object"});
    row("vocab_json_string_id", {"vocab.json", "merges.txt"}, {R"({"a": "0"})", ""}, "gpt2",
        {"vocab.json", "not an integer"});
    row("vocab_json_huge_id", {"vocab.json", "merges.txt"}, {R"({"a": 4000000000})", ""}, "gpt2",
        {"vocab.json", "outside"});
    row("vocab_json_without_merges", {"vocab.json"}, {gptVocab}, "gpt2", {"merges.txt"});
    row("empty_vocab_txt", {"vocab.txt"}, {""}, "bert", {"vocab.txt", "empty"});
    row("vocab_txt_without_unk", {"vocab.txt"}, {"[CLS]\n[SEP]\nhello\n"}, "bert",
        {"vocab.txt", "[UNK]"});
    row("bad_tokenizer_config", {"vocab.txt", "tokenizer_config.json"}, {bertVocab, "{\"do_lower"},
        "bert", {"tokenizer_config.json", "invalid JSON"});
    row("tokenizer_json_garbage", {"tokenizer.json"}, {"{\"model\": {"}, "",
        {"tokenizer.json", "invalid JSON"});
    row("tokenizer_json_binary", {"tokenizer.json"}, {QByteArray("\x00\xff\xfe", 3)}, "",
        {"tokenizer.json", "invalid JSON"});
    row("tokenizer_json_no_model", {"tokenizer.json"}, {"{\"version\": \"1.0\"}"}, "",
        {"tokenizer.json", "model"});
    row("tokenizer_json_unigram", {"tokenizer.json"},
        {R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})"}, "",
        {"tokenizer.json", "Unigram", "not supported"});
    row("tokenizer_json_wordpiece_no_unk", {"tokenizer.json"},
        {R"({"model": {"type": "WordPiece", "vocab": {"a": 0, "##b": 1}}})"}, "",
        {"tokenizer.json", "[UNK]"});
    row("tokenizer_json_negative_id", {"tokenizer.json"},
        {R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": -3}}})"}, "",
        {"tokenizer.json", "outside"});
    row("tokenizer_json_bad_merge", {"tokenizer.json"},
        {R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
            "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})"},
        "", {"tokenizer.json", "'ab'", "not in the vocabulary"});
    row("tokenizer_json_bad_merge_pair", {"tokenizer.json"},
        {R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
            "vocab": {"a": 0, "b": 1}, "merges": [["a", "b", "c"]]}})"},
        "", {"tokenizer.json", "merges[0]"});
    row("tokenizer_json_merges_missing", {"tokenizer.json"},
        {R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}}})"},
        "", {"tokenizer.json", "merges"});
    row("tokenizer_json_bad_added", {"tokenizer.json"},
        {R"({"added_tokens": [{"id": 1}], "model": {"type": "WordPiece",
            "vocab": {"[UNK]": 0}}})"},
        "", {"tokenizer.json", "added_tokens[0]"});
    row("tokenizer_json_bad_template", {"tokenizer.json"},
        {R"({"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken":
            {"id": "[CLS]"}}], "special_tokens": {}}, "model": {"type": "WordPiece",
            "vocab": {"[UNK]": 0}}})"},
        "", {"tokenizer.json", "[CLS]"});
    row("tokenizer_json_truncated", {"tokenizer.json"}, {tinyJson.left(tinyJson.size() / 2)}, "",
        {"tokenizer.json", "invalid JSON"});
    row("tokenizer_json_is_a_directory", {"tokenizer.json/x"}, {"x"}, "", {"tokenizer.json"});
  }

  void malformedFiles() {
    QFETCH(QStringList, names);
    QFETCH(QList<QByteArray>, contents);
    QFETCH(QString, hint);
    QFETCH(QStringList, messageParts);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    for (int i = 0; i < names.size(); ++i) writeFile(dir.filePath(names[i]), contents[i]);
    const auto r = attn::text::loadTokenizer(std::filesystem::path(str(dir.path().toUtf8())),
                                             TokenizerHint{str(hint.toUtf8())});
    if (messageParts.isEmpty()) {
      QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
      QVERIFY(*r != nullptr);
      QVERIFY(!(*r)->encode("some text, tokenized").ids.empty());
      return;
    }
    QVERIFY2(!r.ok(), "loaded a malformed tokenizer");
    const QString message = QString::fromStdString(r.message());
    for (const QString& part : messageParts) {
      QVERIFY2(message.contains(part), qPrintable(QString("'%1' not in: %2").arg(part, message)));
    }
  }

  void corruptedTokenizerJson() {
    // Truncations and byte flips of a valid file: an Error or a tokenizer, never a crash.
    const QByteArray good = readData("tiny-bpe-pairs/tokenizer.json");
    QVERIFY(!good.isEmpty());
    std::mt19937 rng(99);
    std::uniform_int_distribution<qsizetype> where(0, good.size() - 1);
    for (int it = 0; it < kCorruptions; ++it) {
      QByteArray bad = good;
      if (it % 2 == 0) {
        bad.truncate(where(rng));
      } else {
        for (int k = 0; k < 4; ++k) bad[where(rng)] = char(rng() & 0xFF);
      }
      QTemporaryDir dir;
      QVERIFY(dir.isValid());
      writeFile(dir.filePath("tokenizer.json"), bad);
      const auto r = attn::text::loadTokenizer(std::filesystem::path(str(dir.path().toUtf8())), {});
      if (r.ok()) {
        QVERIFY(*r != nullptr);
        const Encoding e = (*r)->encode("Hello, world! \xff");
        checkOffsetBounds(e, 15);
      } else {
        QVERIFY(QString::fromStdString(r.message()).contains("tokenizer.json"));
      }
    }
  }

  void hintDecidesFraming_data() {
    QTest::addColumn<QString>("hint");
    QTest::addColumn<QStringList>("tokens");
    QTest::newRow("bert") << "bert" << QStringList{"[CLS]", "hello", "[SEP]"};
    QTest::newRow("distilbert") << "distilbert" << QStringList{"[CLS]", "hello", "[SEP]"};
    QTest::newRow("gpt2") << "gpt2" << QStringList{"hello"};
    QTest::newRow("none") << "" << QStringList{"hello"};
  }

  void hintDecidesFraming() {
    QFETCH(QString, hint);
    QFETCH(QStringList, tokens);
    // No post_processor in the file: the architecture hint picks the framing.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    writeFile(dir.filePath("tokenizer.json"),
              R"({"normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": null,
                  "model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2,
                  "hello": 3}}})");
    const auto r = attn::text::loadTokenizer(std::filesystem::path(str(dir.path().toUtf8())),
                                             TokenizerHint{str(hint.toUtf8())});
    QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
    QStringList got;
    for (const auto& t : (*r)->encode("Hello").tokens) got << QString::fromStdString(t);
    QCOMPARE(got, tokens);
  }

  void noTokenizerFiles() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    auto r = attn::text::loadTokenizer(std::filesystem::path(str(dir.path().toUtf8())), {});
    QVERIFY(r.ok());
    QVERIFY(*r == nullptr);
    auto missing = attn::text::loadTokenizer("/nonexistent/attn/dir", {});
    QVERIFY(missing.ok());
    QVERIFY(*missing == nullptr);
  }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
