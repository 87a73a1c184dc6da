// Token alignment by character offsets and aligned attention maps, on
// tokenizations and maps whose groups and values are worked out by hand.
#include <QTest>
#include <cmath>
#include <random>

#include "core/attention/align.h"
#include "core/model/transformer.h"
#include "core/text/tokenizer.h"
#include "tests/core/test_helpers.h"

using namespace attn;

namespace {
constexpr double kFloat = 1e-6;  // aligned maps are float32
using Offsets = std::vector<std::pair<int32_t, int32_t>>;
}  // namespace

class TestAlign : public QObject {
  Q_OBJECT

 private slots:
  void wordPieceAgainstBpe() {
    // "unbelievable new york": BERT-like with [CLS]/[SEP], GPT-2-like without.
    const Offsets a = {{0, 0}, {0, 2}, {2, 5}, {5, 12}, {13, 16}, {17, 21}, {0, 0}};
    const Offsets b = {{0, 2}, {2, 8}, {8, 12}, {12, 16}, {16, 21}};
    const TokenAlignment al = alignTokens(a, b);
    // Finest common segmentation: "un" | "bel·ievable" = "believ·able" | "new" | "york".
    QCOMPARE(al.groups, 4);
    QCOMPARE(al.groupA, (std::vector<int>{-1, 0, 1, 1, 2, 3, -1}));
    QCOMPARE(al.groupB, (std::vector<int>{0, 1, 1, 2, 3}));
    QCOMPARE(al.droppedA, 2);
    QCOMPARE(al.droppedB, 0);
    QCOMPARE(al.spans, (Offsets{{0, 2}, {2, 12}, {12, 16}, {16, 21}}));
    QVERIFY(!al.identity());
  }

  void specialTokensOnBothSidesPair() {
    const Offsets a = {{0, 0}, {0, 5}, {6, 11}, {0, 0}};  // [CLS] hello world [SEP]
    const Offsets b = {{0, 0}, {0, 5}, {5, 11}, {0, 0}};  // <s> hello Ġworld </s>
    const TokenAlignment al = alignTokens(a, b);
    QCOMPARE(al.groups, 4);
    QCOMPARE(al.groupA, (std::vector<int>{0, 1, 2, 3}));
    QCOMPARE(al.groupB, (std::vector<int>{0, 1, 2, 3}));
    QCOMPARE(al.spans.front(), (std::pair<int32_t, int32_t>{-1, -1}));
    QCOMPARE(al.spans.back(), (std::pair<int32_t, int32_t>{-1, -1}));
    QVERIFY(al.identity());
  }

  void oneSidedTokensJoinANeighbour() {
    // B has a whitespace-only token between words and one before the first word.
    const Offsets a = {{1, 3}, {4, 7}};
    const Offsets b = {{0, 1}, {1, 3}, {3, 4}, {4, 7}};
    const TokenAlignment al = alignTokens(a, b);
    QCOMPARE(al.groups, 2);
    QCOMPARE(al.groupA, (std::vector<int>{0, 1}));
    QCOMPARE(al.groupB, (std::vector<int>{0, 0, 0, 1}));  // leading one joins the next group
    QCOMPARE(al.spans, (Offsets{{0, 4}, {4, 7}}));
  }

  void nothingInCommon() {
    const TokenAlignment al = alignTokens({{0, 0}, {0, 0}}, {{0, 3}});
    QCOMPARE(al.groups, 0);
    QCOMPARE(al.droppedA, 2);
    QCOMPARE(al.droppedB, 1);
  }

  void realWordPieceAgainstRealBpe() {
    // bert-base-uncased against GPT-2 on a sentence where they split words
    // differently: every group covers the same characters on both sides.
    auto bert = text::loadTokenizer(test::dataDir() / "tokenizers" / "bert-base-uncased", {"bert"});
    auto gpt2 = text::loadTokenizer(test::dataDir() / "tokenizers" / "gpt2", {"gpt2"});
    QVERIFY(bert.ok() && gpt2.ok() && *bert && *gpt2);
    const std::u32string text = U"Tokenizers disagree: unbelievably, self-attention isn't free!";
    std::string utf8;
    for (char32_t c : text) utf8 += char(c);  // ASCII sentence
    const text::Encoding a = (*bert)->encode(utf8);
    const text::Encoding b = (*gpt2)->encode(utf8);
    QVERIFY(a.ids.size() != b.ids.size() || a.tokens != b.tokens);
    const TokenAlignment al = alignTokens(a.offsets, b.offsets);
    QCOMPARE(al.droppedA, 2);  // [CLS], [SEP]: GPT-2 adds no special tokens
    QCOMPARE(al.droppedB, 0);
    QVERIFY(al.groups >= 10);
    for (int g = 0; g < al.groups; ++g) {
      std::string sides[2];
      for (int s = 0; s < 2; ++s) {
        const auto& enc = s == 0 ? a : b;
        const auto& grp = s == 0 ? al.groupA : al.groupB;
        for (size_t i = 0; i < grp.size(); ++i)
          if (grp[i] == g)
            for (int32_t c = enc.offsets[i].first; c < enc.offsets[i].second; ++c)
              if (text[size_t(c)] != U' ') sides[s] += char(text[size_t(c)]);
      }
      QVERIFY2(
          !sides[0].empty() && sides[0] == sides[1],
          qPrintable(QString("group %1: '%2' vs '%3'")
                         .arg(g)
                         .arg(QString::fromStdString(sides[0]), QString::fromStdString(sides[1]))));
    }
  }

  void mapRowsAveragedKeysSummed() {
    const std::vector<float> m = {0.5f, 0.3f, 0.2f,  //
                                  0.1f, 0.1f, 0.8f,  //
                                  0.2f, 0.2f, 0.6f};
    const auto g = alignedMap(m.data(), 3, {0, 0, 1}, 2);
    // Group 0 = mean of rows 0, 1: keys {0,1} → (0.8 + 0.2)/2, key {2} → (0.2 + 0.8)/2.
    const std::vector<float> expect = {0.5f, 0.5f, 0.4f, 0.6f};
    for (size_t i = 0; i < expect.size(); ++i) QVERIFY(std::abs(g[i] - expect[i]) < kFloat);
    // Token 1 dropped: rows 0 and 2 over keys 0 and 2, renormalised.
    const auto d = alignedMap(m.data(), 3, {0, -1, 1}, 2);
    const std::vector<float> expectD = {0.5f / 0.7f, 0.2f / 0.7f, 0.25f, 0.75f};
    for (size_t i = 0; i < expectD.size(); ++i) QVERIFY(std::abs(d[i] - expectD[i]) < kFloat);
  }

  void alignedRowsStayDistributions() {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    const int s = 9;
    std::vector<float> m(size_t(s) * s);
    for (int i = 0; i < s; ++i) {
      float sum = 0;
      for (int j = 0; j < s; ++j) sum += m[size_t(i) * s + j] = u(rng);
      for (int j = 0; j < s; ++j) m[size_t(i) * s + j] /= sum;
    }
    for (const std::vector<int>& groups : {std::vector<int>{0, 0, 1, 2, 2, 2, 3, 4, 4},
                                           std::vector<int>{-1, 0, 0, 1, -1, 2, 2, 3, -1}}) {
      const auto g = alignedMap(m.data(), s, groups, 5 - (groups[0] < 0));
      const int n = 5 - (groups[0] < 0);
      for (int r = 0; r < n; ++r) {
        double sum = 0;
        for (int c = 0; c < n; ++c) sum += g[size_t(r) * n + c];
        QVERIFY2(std::abs(sum - 1.0) < kFloat,
                 qPrintable(QString("row %1 sums to %2").arg(r).arg(sum)));
      }
    }
  }

  void wholeForwardResult() {
    ForwardResult r;
    r.layers = 2;
    r.heads = 2;
    r.seq = 3;
    r.attention.assign(size_t(2) * 2 * 9, 1.0f / 3);
    r.attention[(size_t(1) * 2 + 1) * 9 + 0] = 1.0f;  // layer 1, head 1, row 0: one-hot
    r.attention[(size_t(1) * 2 + 1) * 9 + 1] = 0.0f;
    r.attention[(size_t(1) * 2 + 1) * 9 + 2] = 0.0f;
    const ForwardResult a = alignedAttention(r, {0, 1, 1}, 2);
    QCOMPARE(a.seq, 2);
    QCOMPARE(a.attention.size(), size_t(2 * 2 * 4));
    const float* m = a.attentionMap(1, 1);
    QVERIFY(std::abs(m[0] - 1.0f) < kFloat && std::abs(m[1]) < kFloat);
    QVERIFY(std::abs(m[2] - 1.0f / 3) < kFloat && std::abs(m[3] - 2.0f / 3) < kFloat);
  }
};

QTEST_GUILESS_MAIN(TestAlign)
#include "test_align.moc"
