// The explorer, offscreen: heatmap data and labels, the difference map, the
// Session's error handling and generations, a GUI thread that never blocks
// while a BERT-base-sized model runs at 512 tokens, and screenshots.
#include <qcustomplot.h>

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDockWidget>
#include <QDir>
#include <QDropEvent>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QUndoStack>
#include <QSlider>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QPointer>
#include <QProgressDialog>
#include <QTest>
#include <QTimer>
#include <QToolButton>
#include <cmath>
#include <random>

#include "app/gui/main_window.h"
#include "core/attention/align.h"
#include "core/attention/compare.h"
#include "core/attention/metrics.h"
#include "core/compress/evaluate.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"
#include "tests/core/test_helpers.h"
#include "tests/core/weight_helpers.h"
#include "widgets/bar_chart_view.h"
#include "widgets/curve_view.h"
#include "widgets/head_grid_view.h"
#include "widgets/heatmap_view.h"
#include "widgets/histogram_view.h"
#include "widgets/distill_panel.h"
#include "widgets/layer_map_view.h"
#include "widgets/loss_curves_view.h"
#include "widgets/quant_panel.h"
#include "widgets/report_pdf.h"
#include "widgets/sparsity_panel.h"
#include "widgets/token_strip_view.h"
#include "widgets/corpus_fidelity_panel.h"
#include "widgets/tradeoff_panel.h"
#include "widgets/tradeoff_view.h"
#include "widgets/workspace_view.h"

using namespace attn;
using namespace attn::app;
using attn::widgets::HeatmapView;

namespace {
constexpr int kLoadTimeoutMs = 60000;
constexpr qint64 kMaxTimerLatenessMs = 100;  // the issue's bound for GUI responsiveness

QString demo(const char* name) { return QStringLiteral(ATTN_DEMO_DIR "/") + name; }

QString longText(int words) {
  static const char* kWords[] = {"the", "cat",   "sat", "on",    "a", "mat",   "and",  "looked",
                                 "at",  "birds", "in",  "trees", ",", "while", "dogs", "ran"};
  QStringList w;
  for (int i = 0; i < words; ++i) w << kWords[i % 16];
  return w.join(' ') + ".";
}

// The demo pair (or another teacher / student) on `text`.
StartOptions pairOptions(const QString& text, const QString& teacher = demo("bert-demo"),
                         const QString& student = demo("bert-demo-student")) {
  StartOptions o;
  o.teacher = teacher;
  o.student = student;
  o.text = text;
  o.workspaceByDefault = false;  // these tests look at the three-map comparisons
  return o;
}

// How late a 10 ms timer on the GUI thread fires while something runs: the
// worst lateness in ms since start().
class LatenessProbe {
 public:
  LatenessProbe() {
    tick_.setInterval(10);
    QObject::connect(&tick_, &QTimer::timeout, [this] {
      const qint64 now = clock_.elapsed();
      worst_ = std::max(worst_, now - last_ - 10);
      last_ = now;
    });
  }
  void start() {
    clock_.start();
    last_ = worst_ = 0;
    tick_.start();
  }
  qint64 stop() {
    tick_.stop();
    return worst_;
  }

 private:
  QElapsedTimer clock_;
  QTimer tick_;
  qint64 last_ = 0, worst_ = 0;
};

// Waits until both models ran on the text, then draws at once.
// The workspace result of the window's current request (null on time-out).
std::shared_ptr<const WorkspaceResult> waitForWorkspace(MainWindow& w) {
  std::shared_ptr<const WorkspaceResult> out;
  (void)QTest::qWaitFor(
      [&] {
        const auto r = w.workspaceResult();
        auto want = w.workspaceRequest().plan;
        if (!r) return false;
        auto got = r->plan;
        if (w.workspaceRequest().headsToPrune > 0) got.prune.heads.clear();
        if (compress::planJson(got) != compress::planJson(want)) return false;
        out = r;
        return true;
      },
      kLoadTimeoutMs);
  if (out) w.redrawNow();
  return out;
}

bool waitForBoth(MainWindow& w) {
  const bool ok = QTest::qWaitFor(
      [&] {
        const auto c = w.shownComparison();
        return c && c->hasTeacher && c->hasStudent;
      },
      kLoadTimeoutMs);
  if (ok) w.redrawNow();
  return ok;
}

// A BERT checkpoint with random weights and the demo's real vocabulary;
// default sizes are BERT-base's (12 × 768, 12 heads, FFN 3072).
void writeBert(const std::filesystem::path& dir, int layers = 12, int heads = 12, int hidden = 768,
               int ffn = 3072) {
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(ATTN_DEMO_DIR) + "/bert-demo/vocab.txt",
                             dir / "vocab.txt");
  attn::test::writeBytes(dir / "config.json",
                         QString(R"({"model_type": "bert", "architectures": ["BertModel"],
    "hidden_size": %1, "num_hidden_layers": %2, "num_attention_heads": %3,
    "intermediate_size": %4, "vocab_size": 30522, "max_position_embeddings": 512,
    "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"})")
                             .arg(hidden)
                             .arg(layers)
                             .arg(heads)
                             .arg(ffn)
                             .toStdString());
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.02f);
  auto t = [&](Shape s, float fill = NAN) {
    std::vector<float> v(size_t(shapeNumel(s).value()));
    for (auto& x : v) x = std::isnan(fill) ? d(rng) : fill;
    return Tensor::fromF32(std::move(s), std::move(v));
  };
  const int D = hidden, F = ffn;
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"embeddings.word_embeddings.weight", t({30522, D})},
      {"embeddings.position_embeddings.weight", t({512, D})},
      {"embeddings.token_type_embeddings.weight", t({2, D})},
      {"embeddings.LayerNorm.weight", t({D}, 1.0f)},
      {"embeddings.LayerNorm.bias", t({D}, 0.0f)}};
  for (int l = 0; l < layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      ts.emplace_back(p + n + ".weight", t({D, D}));
      ts.emplace_back(p + n + ".bias", t({D}));
    }
    ts.emplace_back(p + "intermediate.dense.weight", t({F, D}));
    ts.emplace_back(p + "intermediate.dense.bias", t({F}));
    ts.emplace_back(p + "output.dense.weight", t({D, F}));
    ts.emplace_back(p + "output.dense.bias", t({D}));
    for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      ts.emplace_back(p + n + ".weight", t({D}, 1.0f));
      ts.emplace_back(p + n + ".bias", t({D}, 0.0f));
    }
  }
  QVERIFY(writeSafetensors(dir / "model.safetensors", ts).ok());
}
}  // namespace

class TestGui : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings go to a test location
    QSettings().clear();
  }

  void exportsAndSettings() {
    StartOptions o;
    o.teacher = demo("bert-demo");
    o.student = demo("bert-demo-student");
    o.text = "The cat sat on the mat.";
    o.workspaceByDefault = false;
    QStringList recent;
    {
      MainWindow w(o);
      w.show();
      QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasLoss, kLoadTimeoutMs);
      w.redrawNow();
      const int S = w.teacherView()->rows();
      attn::test::TempDir tmp;
      QString error;
      // .npy: [3, S, S] = teacher, student, teacher − student, exactly as shown.
      const QString npy = QString::fromStdString((tmp / "maps.npy").string());
      QVERIFY2(w.exportMaps(npy, &error), qPrintable(error));
      auto a = readNpy(npy.toStdString());
      QVERIFY(a.ok());
      QCOMPARE(a->shape, (Shape{3, S, S}));
      for (int i = 0; i < S; ++i)
        for (int j = 0; j < S; ++j) {
          QCOMPARE(float(a->values[size_t(i) * S + j]), w.teacherView()->value(i, j));
          QCOMPARE(float(a->values[size_t(S * S) + size_t(i) * S + j]),
                   w.studentView()->value(i, j));
          QCOMPARE(float(a->values[size_t(2 * S * S) + size_t(i) * S + j]),
                   w.diffView()->value(i, j));
        }
      // .csv: a header and one line per cell of the three maps.
      const QString csv = QString::fromStdString((tmp / "maps.csv").string());
      QVERIFY2(w.exportMaps(csv, &error), qPrintable(error));
      QFile f(csv);
      QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
      const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
      QCOMPARE(lines.size(), 1 + 3 * S * S);
      QCOMPARE(lines[0], QString("map,query_index,query_token,key_index,key_token,weight"));
      QVERIFY(lines[1].startsWith("teacher,0,\"[CLS]\",0,\"[CLS]\","));
      // Plots as PNG, SVG and PDF.
      for (const char* ext : {"png", "svg", "pdf"}) {
        const QString path = QString::fromStdString((tmp / (std::string("map.") + ext)).string());
        QVERIFY2(w.diffView()->saveImage(path, &error), qPrintable(error));
        QFile img(path);
        QVERIFY(img.open(QIODevice::ReadOnly));
        const QByteArray head = img.read(8);
        if (QByteArray(ext) == "png") QVERIFY(head.startsWith("\x89PNG"));
        if (QByteArray(ext) == "svg") QVERIFY(head.startsWith("<?xml"));
        if (QByteArray(ext) == "pdf") QVERIFY(head.startsWith("%PDF"));
      }
      QVERIFY(!w.diffView()->saveImage("x.bmp", &error));
      recent = w.recentModels();
      w.close();  // saves geometry, dock layout and the text
    }
    QVERIFY(recent.contains(demo("bert-demo")) && recent.contains(demo("bert-demo-student")));
    QCOMPARE(QSettings().value("text/last").toString(), QString("The cat sat on the mat."));
    QVERIFY(!QSettings().value("window/state").toByteArray().isEmpty());
  }

  void corpusPicker() {
    StartOptions o;
    o.student = demo("bert-demo-student");
    MainWindow w(o);
    attn::test::TempDir tmp;
    attn::test::writeBytes(tmp / "c.csv",
                           "label,sentence\npos,\"A cat, a mat.\"\nneg,The dog ran.\n");
    QString error;
    QVERIFY(!w.openCorpus(QString::fromStdString((tmp / "c.csv").string()), "missing", &error));
    QVERIFY(error.contains("no column named"));
    QVERIFY2(w.openCorpus(QString::fromStdString((tmp / "c.csv").string()), "sentence", &error),
             qPrintable(error));
    QCOMPARE(w.exampleCount(), 2);
    w.chooseExample(1);
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->text == "The dog ran.",
                             kLoadTimeoutMs);
    QCOMPARE(w.session().text(), QString("The dog ran."));
  }

  void dropOpensAModel() {
    StartOptions o;
    o.teacher = demo("bert-demo");
    MainWindow w(o);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() != nullptr, kLoadTimeoutMs);
    QSignalSpy loaded(&w.session(), &Session::modelLoaded);
    w.openDropped(demo("bert-demo-student"),
                  w.studentView()->mapTo(&w, w.studentView()->rect().center()));
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, kLoadTimeoutMs);
    QCOMPARE(loaded.at(0).at(0).toInt(), int(Student));
    QVERIFY(w.session().model(Student) != nullptr);
  }

  void heatmapShowsWhatItIsGiven() {
    HeatmapView v;
    v.resize(400, 400);
    const std::vector<float> m = {0.5f, 0.25f, 0.25f, 0.0f, 1.0f, 0.0f, 0.1f, 0.2f, 0.7f};
    v.setMatrix(m, 3, 3, {"a", "b", "c"}, {"x", "y", "z"});
    QCOMPARE(v.rows(), 3);
    QCOMPARE(v.cols(), 3);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        QCOMPARE(v.value(r, c), m[r * 3 + c]);
        QCOMPARE(v.drawnValue(r, c), double(m[r * 3 + c]));
      }
    QCOMPARE(v.rowLabels(), (QStringList{"a", "b", "c"}));
    QCOMPARE(v.colLabels(), (QStringList{"x", "y", "z"}));
    QCOMPARE(v.tooltipFor(2, 1), QString("c → y: 0.2"));
    double lo, hi;
    v.colorRange(&lo, &hi);
    QCOMPARE(lo, 0.0);
    QCOMPARE(hi, 1.0);
    v.setScale(HeatmapView::Scale::Diverging);
    v.setMatrix({-0.3f, 0.1f, 0.2f, 0.0f}, 2, 2, {"a", "b"}, {"a", "b"});
    v.colorRange(&lo, &hi);
    QVERIFY(std::abs(lo + 0.3) < 1e-6 && std::abs(hi - 0.3) < 1e-6);  // centred on 0
    v.setMessage("nothing");
    QVERIFY(v.showsMessage());
  }

  void diffIsTeacherMinusStudent() {
    MainWindow w(pairOptions("The cat sat on the mat. The dog sat on the log."));
    QSignalSpy drawn(&w, &MainWindow::drawn);
    QVERIFY(waitForBoth(w));
    const auto c = w.shownComparison();
    const int S = c->teacher.forward.seq;
    QCOMPARE(w.diffView()->rows(), S);
    // Default: student layer 0 ↔ teacher layer round(1 · 4 / 2) − 1 = 1, head 0.
    QCOMPARE(uniformLayerMap(2, 4), (std::vector<int>{1, 3}));
    const float* t = c->teacher.forward.attentionMap(1, 0);
    const float* s = c->student.forward.attentionMap(0, 0);
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) {
        QCOMPARE(w.teacherView()->value(i, j), t[i * S + j]);
        QCOMPARE(w.studentView()->value(i, j), s[i * S + j]);
        QCOMPARE(w.diffView()->value(i, j), t[i * S + j] - s[i * S + j]);
      }
    QCOMPARE(w.teacherView()->colLabels(), c->teacher.tokens);
    QVERIFY(drawn.count() >= 1);
  }

  void gridAndLossMatrix() {
    MainWindow w(pairOptions("She put the book on the table, and then she read it again."));
    w.show();
    QVERIFY(waitForBoth(w));
    const auto c = w.shownComparison();
    // The loss matrix shows exactly core's numbers (KL by default).
    const LossMatrix m = lossMatrix(c->teacher.forward, c->student.forward);
    auto* lv = w.lossView();
    QCOMPARE(lv->rows(), 4);
    QCOMPARE(lv->cols(), 2);
    for (int t = 0; t < 4; ++t)
      for (int s2 = 0; s2 < 2; ++s2) QCOMPARE(lv->value(t, s2), float(m.at(m.kl, t, s2)));
    // Per-layer bars: the loss of each mapped pair (uniform: S0↔T1, S1↔T3).
    QCOMPARE(w.layerLossView()->count(), 2);
    QCOMPARE(w.layerLossView()->value(0), m.at(m.kl, 1, 0));
    QCOMPARE(w.layerLossView()->value(1), m.at(m.kl, 3, 1));
    // Grid statistics are the per-head entropies core computes.
    auto* grid = w.headGrid(Student);
    QCOMPARE(grid->layers(), 2);
    QCOMPARE(grid->stat(1, 2), c->student.entropy[1 * 4 + 2]);
    // The other statistic: mean attention distance, as core computes it.
    auto* stat = w.findChild<QDockWidget*>("heads")->findChild<QComboBox*>();
    QVERIFY(stat != nullptr);
    stat->setCurrentIndex(1);
    w.redrawNow();
    QCOMPARE(grid->stat(1, 2),
             meanAttentionDistance(c->student.forward.attentionMap(1, 2), c->student.forward.seq));
    stat->setCurrentIndex(0);
    // Clicking a thumbnail selects that layer and head in the big views.
    QTest::mouseClick(grid, Qt::LeftButton, {}, grid->cellRect(1, 3).center());
    w.redrawNow();
    QVERIFY2(w.studentView()->title().contains("layer 1 · head 3"),
             qPrintable(w.studentView()->title()));
    QVERIFY2(w.teacherView()->title().contains("layer 3 · head 3"),
             qPrintable(w.teacherView()->title()));
    // Keyboard: left arrow moves to head 2.
    grid->setFocus();
    QTest::keyClick(grid, Qt::Key_Left);
    w.redrawNow();
    QVERIFY(w.studentView()->title().contains("head 2"));
    // Clicking a loss cell maps that teacher layer to that student layer.
    emit lv->cellClicked(0, 1);
    w.redrawNow();
    QCOMPARE(w.mapping(), (std::vector<int>{1, 0}));
    QVERIFY(w.teacherView()->title().contains("layer 0"));
  }

  void differentTokenizersAreAligned() {
    MainWindow w(pairOptions("Tokenizers disagree: unbelievably, self-attention isn't free!",
                             demo("bert-demo"),                                         // WordPiece
                             QStringLiteral(ATTN_TEST_DATA_DIR "/models/gpt2_tiny")));  // BPE
    w.show();
    // Loading shows a percentage bar and a Cancel button.
    QVERIFY(w.loading());
    auto* cancel = w.findChild<QToolButton*>("cancelLoad");
    QVERIFY(cancel != nullptr && cancel->text() == "Cancel" && cancel->isVisibleTo(&w));
    QTRY_VERIFY_WITH_TIMEOUT(
        w.shownComparison() && w.shownComparison()->hasTeacher && w.shownComparison()->hasStudent,
        kLoadTimeoutMs);
    w.redrawNow();
    QVERIFY(!w.loading());
    QVERIFY(!cancel->isVisibleTo(&w));
    const auto c = w.shownComparison();
    QVERIFY(c->teacher.ids.size() != c->student.ids.size());
    QVERIFY(c->aligned);
    const TokenAlignment al = alignTokens(c->teacher.offsets, c->student.offsets);
    QCOMPARE(c->alignment.groupA, al.groupA);
    const int g = al.groups;
    // The difference map is teacher − student on the character groups
    // (uniform mapping: student layer 0 ↔ teacher layer 1; head 0).
    const auto a =
        alignedMap(c->teacher.forward.attentionMap(1, 0), c->teacher.forward.seq, al.groupA, g);
    const auto b =
        alignedMap(c->student.forward.attentionMap(0, 0), c->student.forward.seq, al.groupB, g);
    QCOMPARE(w.diffView()->rows(), g);
    for (int i = 0; i < g; ++i)
      for (int j = 0; j < g; ++j)
        QCOMPARE(w.diffView()->value(i, j), a[size_t(i) * g + j] - b[size_t(i) * g + j]);
    QVERIFY2(w.diffView()->title().contains("aligned by characters"),
             qPrintable(w.diffView()->title()));
    QCOMPARE(w.diffView()->rowLabels().first(), QString("Token"));  // the text, not a token
    // The loss matrix is core's, on the aligned maps, and says so.
    QVERIFY(c->hasLoss);
    const LossMatrix m = lossMatrix(alignedAttention(c->teacher.forward, al.groupA, g),
                                    alignedAttention(c->student.forward, al.groupB, g));
    QCOMPARE(w.lossView()->value(3, 1), float(m.at(m.kl, 3, 1)));
    QVERIFY(w.lossView()->title().contains("aligned"));
    // Both token strips, aligned: tokens of one group start at the same x.
    auto* strip = w.tokenStrip();
    QCOMPARE(strip->rowCount(), 2);
    const int bel = int(c->teacher.tokens.indexOf("##bel"));
    QVERIFY(bel > 0);
    const int group = al.groupA[size_t(bel)];
    int firstS = -1, lastS = -1;
    for (int i = 0; i < int(al.groupB.size()); ++i)
      if (al.groupB[size_t(i)] == group) {
        if (firstS < 0) firstS = i;
        lastS = i;
      }
    QVERIFY(firstS >= 0);
    QCOMPARE(strip->tokenRect(0, bel).left(), strip->tokenRect(1, firstS).left());
    // Clicking it outlines its row and column in all three maps.
    QTest::mouseClick(strip, Qt::LeftButton, {}, strip->tokenRect(0, bel).center());
    QCOMPARE(w.teacherView()->focusBand(), std::make_pair(bel, bel));
    QCOMPARE(w.studentView()->focusBand(), std::make_pair(firstS, lastS));
    QCOMPARE(w.diffView()->focusBand(), std::make_pair(group, group));
    // [CLS] has no counterpart: its band shows only in the teacher's map.
    QTest::mouseClick(strip, Qt::LeftButton, {}, strip->tokenRect(0, 0).center());
    QCOMPARE(w.teacherView()->focusBand(), std::make_pair(0, 0));
    QCOMPARE(w.studentView()->focusBand().first, -1);
    // A second click clears.
    QTest::mouseClick(strip, Qt::LeftButton, {}, strip->tokenRect(0, 0).center());
    QCOMPARE(w.teacherView()->focusBand().first, -1);
    const QString path = QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-aligned.png");
    for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
    QTest::qWait(100);  // queued replots of the docked plots run first
    QVERIFY(w.grab().save(path));
  }

  void sameTokensShareOneStrip() {
    MainWindow w(pairOptions("the cat sat"));
    w.show();
    QVERIFY(waitForBoth(w));
    auto* strip = w.tokenStrip();
    QCOMPARE(strip->rowCount(), 1);
    QCOMPARE(strip->row(0).tokens, (QStringList{"[CLS]", "the", "cat", "sat", "[SEP]"}));
    QTest::mouseClick(strip, Qt::LeftButton, {}, strip->tokenRect(0, 2).center());
    for (auto* v : {w.teacherView(), w.studentView(), w.diffView()})
      QCOMPARE(v->focusBand(), std::make_pair(2, 2));
    // The band stays when the head changes.
    w.selectHead(1, 2);
    w.redrawNow();
    QCOMPARE(w.studentView()->focusBand(), std::make_pair(2, 2));
  }

  void differentHeadCountsPickAPair() {
    attn::test::TempDir tmp;
    writeBert(tmp / "two-heads", 2, 2, 32, 64);
    MainWindow w(pairOptions("The cat sat on the mat.", demo("bert-demo"),  // 4 heads
                             QString::fromStdString((tmp / "two-heads").string())));
    w.show();
    QVERIFY(waitForBoth(w));
    w.selectHead(1, 1);
    w.setTeacherHead(3);
    w.redrawNow();
    const auto c = w.shownComparison();
    const int S = c->teacher.forward.seq;
    // Uniform mapping: student layer 1 ↔ teacher layer 3.
    const float* t = c->teacher.forward.attentionMap(3, 3);
    const float* s = c->student.forward.attentionMap(1, 1);
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) QCOMPARE(w.diffView()->value(i, j), t[i * S + j] - s[i * S + j]);
    QVERIFY2(w.teacherView()->title().contains("layer 3 · head 3"),
             qPrintable(w.teacherView()->title()));
    QVERIFY(w.studentView()->title().contains("layer 1 · head 1"));
    // Head averages on request.
    auto* avg = w.findChild<QCheckBox*>();
    QVERIFY(avg != nullptr && avg->text().contains("Average"));
    avg->setChecked(true);
    w.redrawNow();
    const auto ta = headAverage(c->teacher.forward.attentionMap(3, 0), 4, S);
    const auto sa = headAverage(c->student.forward.attentionMap(1, 0), 2, S);
    QCOMPARE(w.diffView()->value(1, 2), ta[size_t(S) + 2] - sa[size_t(S) + 2]);
    // Grid statistic "loss vs mapped teacher head": each student head against the
    // teacher layer's head average (head counts differ), as core computes it.
    auto* stat = w.findChild<QDockWidget*>("heads")->findChild<QComboBox*>();
    stat->setCurrentIndex(2);
    w.redrawNow();
    const LossMatrix m = lossMatrix(c->teacher.forward, c->student.forward);
    QCOMPARE(w.headGrid(Student)->stat(1, 1), m.headAt(m.headKl, 3, 1, 1));
    QCOMPARE(w.headGrid(Student)->stat(1, 1),
             attentionKl(ta.data(), c->student.forward.attentionMap(1, 1), S));
    QVERIFY(std::isnan(w.headGrid(Teacher)->stat(0, 0)));  // teacher heads: only when counts match
  }

  void gridShowsLossAgainstTheMappedTeacherHead() {
    MainWindow w(pairOptions("She put the book on the table."));
    w.show();
    QVERIFY(waitForBoth(w));
    auto* stat = w.findChild<QDockWidget*>("heads")->findChild<QComboBox*>();
    stat->setCurrentIndex(2);
    w.redrawNow();
    const auto c = w.shownComparison();
    const int S = c->teacher.forward.seq;
    // Uniform: S0 ↔ T1, S1 ↔ T3; head h against teacher head h.
    for (int h = 0; h < 4; ++h) {
      const double kl0 = attentionKl(c->teacher.forward.attentionMap(1, h),
                                     c->student.forward.attentionMap(0, h), S);
      QVERIFY(std::abs(w.headGrid(Student)->stat(0, h) - kl0) < 1e-12);
      QCOMPARE(w.headGrid(Teacher)->stat(1, h), w.headGrid(Student)->stat(0, h));
    }
    QVERIFY(std::isnan(w.headGrid(Teacher)->stat(0, 0)));  // teacher layer 0 is not mapped
    // MSE when the loss panel says MSE.
    w.findChild<QDockWidget*>("loss")->findChild<QComboBox*>()->setCurrentIndex(1);
    w.redrawNow();
    QVERIFY(std::abs(w.headGrid(Student)->stat(1, 2) -
                     attentionMse(c->teacher.forward.attentionMap(3, 2),
                                  c->student.forward.attentionMap(1, 2), S)) < 1e-12);
  }

  void plotsFollowADarkPalette() {
    QPalette dark;
    dark.setColor(QPalette::Window, QColor(30, 30, 34));
    dark.setColor(QPalette::WindowText, QColor(230, 230, 230));
    dark.setColor(QPalette::Base, QColor(42, 42, 48));
    dark.setColor(QPalette::AlternateBase, QColor(56, 56, 64));
    dark.setColor(QPalette::Text, QColor(230, 230, 230));
    dark.setColor(QPalette::Button, QColor(45, 45, 50));
    dark.setColor(QPalette::ButtonText, QColor(230, 230, 230));
    const QPalette before = QApplication::palette();
    QApplication::setPalette(dark);
    {
      MainWindow w(pairOptions("The quick brown fox jumps over the lazy dog."));
      w.show();
      QVERIFY(waitForBoth(w));
      for (auto* v : {w.teacherView(), w.studentView(), w.diffView(), w.lossView()}) {
        v->replotNow();
        QCOMPARE(v->plot()->grab().toImage().pixelColor(1, 1), dark.color(QPalette::Window));
        QCOMPARE(v->plot()->xAxis->tickLabelColor(), dark.color(QPalette::WindowText));
      }
      QCOMPARE(w.layerLossView()->plot()->grab().toImage().pixelColor(1, 1),
               dark.color(QPalette::Window));
      QTest::qWait(100);
      QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-dark.png")));
    }
    QApplication::setPalette(before);
  }

  // A heatmap drawn off screen (the PDF report) labels its tokens for the size it is
  // drawn at: it used to thin them for a widget never laid out, leaving one label.
  void offscreenHeatmapLabelsItsTokens() {
    const int S = 12;
    QStringList tokens;
    for (int i = 0; i < S; ++i) tokens << QString("t%1").arg(i);
    widgets::HeatmapView view;
    view.setMatrix(std::vector<float>(size_t(S) * S, 0.1f), S, S, tokens, tokens);
    view.labelTicksFor(QSize(290, 250));  // a report cell
    auto ticks = [](QCPAxis* axis) {
      return qSharedPointerCast<QCPAxisTickerText>(axis->ticker())->ticks().size();
    };
    const auto across = ticks(view.plot()->xAxis), down = ticks(view.plot()->yAxis);
    QVERIFY2(across >= 4 && across <= S, qPrintable(QString::number(across)));
    QVERIFY2(down >= 4 && down <= S, qPrintable(QString::number(down)));
    QCOMPARE(qSharedPointerCast<QCPAxisTickerText>(view.plot()->yAxis->ticker())->ticks().first(), QString("t0"));
  }

  void quantPanelEditsThePlan() {
    widgets::QuantPanel panel;
    QSignalSpy changed(&panel, &widgets::QuantPanel::planChanged);
    quant::ModelQuantPlan p;
    quant::Spec s;
    s.method = quant::Method::Uniform;
    s.bits = 3;
    s.granularity = quant::Granularity::Group;
    s.groupSize = 16;
    s.symmetric = false;
    s.clip = quant::Clip::Percentile;
    s.percentile = 99.5;
    p.targets[size_t(quant::Target::V)] = s;
    p.targets[size_t(quant::Target::FfnOut)] = s;
    p.attention = {quant::AttentionQuant::Kind::Log2, 3, 0.1f};
    panel.setPlan(p);
    QCOMPARE(changed.count(), 1);  // once, not once per control
    panel.setSensitivity({});      // an empty scan says so: no empty frame
    QCOMPARE(panel.sensitivityChart()->message(), QStringLiteral("sensitivity: nothing to rank"));
    const quant::ModelQuantPlan back = panel.plan();
    for (int t = 0; t < quant::kTargetCount; ++t) {
      QCOMPARE(back.targets[size_t(t)].has_value(), p.targets[size_t(t)].has_value());
      if (!p.targets[size_t(t)]) continue;
      const quant::Spec& b = *back.targets[size_t(t)];
      QCOMPARE(QString::fromStdString(quant::describe(b)),
               QString::fromStdString(quant::describe(s)));
      QCOMPARE(b.groupSize, 16);
    }
    QCOMPARE(int(back.attention.kind), int(quant::AttentionQuant::Kind::Log2));
    QCOMPARE(back.attention.bits, 3);
    // Binary allows only 1 bit: the bits control follows the method's range.
    quant::Spec bin;
    bin.method = quant::Method::Binary;
    bin.bits = 1;
    p.targets[size_t(quant::Target::V)] = bin;
    p.targets[size_t(quant::Target::FfnOut)].reset();
    panel.setPlan(p);
    QCOMPARE(panel.plan().targets[size_t(quant::Target::V)]->bits, 1);
    QCOMPARE(int(panel.plan().targets[size_t(quant::Target::V)]->granularity),
             int(quant::Granularity::Channel));
    // Different specs per group and per-layer overrides come back through the overrides text.
    quant::ModelQuantPlan mixed;
    QVERIFY(quant::applyPlanText("q,k=uniform:4:group:16; ffn_in=kmeans:3:channel; layer 1 q=none",
                                 mixed)
                .ok());
    panel.setPlan(mixed);
    const quant::ModelQuantPlan got = panel.plan();
    for (int l = 0; l < 3; ++l)
      for (int t = 0; t < quant::kTargetCount; ++t)
        QCOMPARE(QString::fromStdString(quant::specText(got.specFor(l, quant::Target(t)))),
                 QString::fromStdString(quant::specText(mixed.specFor(l, quant::Target(t)))));
    // An invalid text is reported and changes nothing.
    auto* text = panel.findChild<QLineEdit*>("overrides");
    QVERIFY(text != nullptr);
    changed.clear();
    text->setText("layer x q=none");
    QCOMPARE(changed.count(), 0);
    QVERIFY(!got.specFor(1, quant::Target::Q));
    QCOMPARE(panel.plan().specFor(1, quant::Target::Q)->bits, 4);  // the controls' spec only
    const auto labels = panel.findChildren<QLabel*>();
    QVERIFY(std::any_of(labels.begin(), labels.end(), [](QLabel* l) {
      return l->isVisibleTo(l->window()) && l->text().contains("not a non-negative integer");
    }));
  }

  void quantizedStudentBesideTheFloatOne() {
    MainWindow w(pairOptions("The cat sat on the mat because it was warm."));
    w.show();
    QVERIFY(waitForBoth(w));
    QSignalSpy ready(&w.session(), &Session::quantReady);
    quant::ModelQuantPlan p;
    quant::Spec s;
    s.bits = 4;
    s.granularity = quant::Granularity::Group;
    s.groupSize = 32;
    for (quant::Target t : {quant::Target::Q, quant::Target::K, quant::Target::V, quant::Target::O,
                            quant::Target::FfnIn, quant::Target::FfnOut})
      p.targets[size_t(t)] = s;
    p.attention = {quant::AttentionQuant::Kind::Uniform, 4, 0.1f};
    w.quantPanel()->setPlan(p);
    QTRY_VERIFY_WITH_TIMEOUT(w.quantResult() != nullptr && w.quantResult()->hasForward,
                             kLoadTimeoutMs);
    QCOMPARE(int(w.compare()), int(MainWindow::Compare::Quantized));
    w.selectHead(1, 2);
    w.redrawNow();
    const auto q = w.quantResult();
    QCOMPARE(q->side, int(Student));
    // The middle map is the quantized student's attention as core computes it.
    const auto student = w.session().model(Student);
    const auto qm = quant::quantizeModel(*student, p).value();
    const auto c = w.shownComparison();
    const auto ref = forward(qm.model->config, qm.model->weights, c->student.ids, {},
                             quant::withAttentionQuant({}, p.attention))
                         .value();
    const int S = ref.seq;
    const float* m = ref.attentionMap(1, 2);
    const float* f = c->student.forward.attentionMap(1, 2);
    QCOMPARE(w.studentView()->rows(), S);
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) {
        QVERIFY(std::abs(w.studentView()->value(i, j) - m[i * S + j]) < 5e-6);
        QCOMPARE(w.teacherView()->value(i, j), f[i * S + j]);  // float student on the left
        QCOMPARE(w.diffView()->value(i, j),
                 w.teacherView()->value(i, j) - w.studentView()->value(i, j));
      }
    QVERIFY(w.studentView()->title().contains("quantized"));
    // Read-outs and histograms of the selected tensor are core's numbers.
    auto* panel = w.quantPanel();
    QCOMPARE(panel->tensorCount(), int(qm.tensors.size()));
    panel->selectTensor(3);
    const auto& st = qm.tensors[3].stats;
    QVERIFY2(panel->readoutText().contains(QString::number(st.sqnrDb, 'f', 2)),
             qPrintable(panel->readoutText()));
    QVERIFY(panel->readoutText().contains(QString::fromStdString(qm.tensors[3].name)));
    int64_t total = 0;
    for (int i = 0; i < panel->weightHistogram()->binCount(); ++i)
      total += panel->weightHistogram()->count(i);
    QCOMPARE(total, int64_t(st.bytesBefore / 4));
    QCOMPARE(panel->weightHistogram()->levelCount(), 15);  // 4-bit symmetric: −7 … 7
    QVERIFY(q->fidelity.klMean > 0 && q->fidelity.hiddenCosine < 1);

    // Latest request wins, nothing queues: ten quick changes, few results, the last plan shown.
    ready.clear();
    auto* bits = panel->findChild<QSlider*>();
    QVERIFY(bits != nullptr);
    for (int b = 2; b <= 8; ++b) bits->setValue(b);
    bits->setValue(5);
    QTRY_VERIFY_WITH_TIMEOUT(w.quantResult() && w.quantResult()->plan.targets[0] &&
                                 w.quantResult()->plan.targets[0]->bits == 5,
                             kLoadTimeoutMs);
    QTest::qWait(200);
    QVERIFY2(ready.count() <= 3,
             qPrintable(QString("%1 results for 8 changes").arg(ready.count())));
    QCOMPARE(w.quantResult()->plan.targets[0]->bits, 5);

    // Sensitivity: one bar per layer, ranked.
    QCOMPARE(panel->sensitivityChart()->message(), QStringLiteral("sensitivity: press Sensitivity scan to rank them"));
    QSignalSpy sens(&w.session(), &Session::sensitivityReady);
    emit panel->sensitivityRequested(0);
    QTRY_COMPARE_WITH_TIMEOUT(sens.count(), 1, kLoadTimeoutMs);
    QCOMPARE(panel->sensitivityChart()->count(), student->config.layers);
    QVERIFY(panel->sensitivityChart()->value(0) >= panel->sensitivityChart()->value(1));
    QCOMPARE(panel->sensitivityChart()->message(), QString());
    w.redrawNow();
    QTest::qWait(100);
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-quant.png")));
  }

  void sparsifiedStudentBesideTheDenseOne() {
    MainWindow w(pairOptions("The cat sat on the mat because it was warm and soft."));
    w.show();
    QVERIFY(waitForBoth(w));
    auto* panel = w.sparsityPanel();
    panel->setTau(0.05);
    QTRY_VERIFY_WITH_TIMEOUT(
        w.sparseResult() != nullptr && w.sparseResult()->hasForward && !w.sparseResult()->preview &&
            std::fabs(w.sparseResult()->plan.attention.all.tau - panel->tau()) < 1e-12,
        kLoadTimeoutMs);
    QCOMPARE(int(w.compare()), int(MainWindow::Compare::Sparsified));
    w.selectHead(1, 1);
    w.redrawNow();
    // The middle map is core's sparse forward pass of the student.
    const auto student = w.session().model(Student);
    const auto c = w.shownComparison();
    const sparse::ModelPrunePlan plan = panel->plan();
    const auto pruned = sparse::pruneModel(*student, plan).value();
    const auto ref = forward(pruned.model->config, pruned.model->weights, c->student.ids, {},
                             sparse::withAttentionSparsity({}, plan.attention))
                         .value();
    const int S = ref.seq;
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) {
        QVERIFY(std::abs(w.studentView()->value(i, j) - ref.attentionMap(1, 1)[i * S + j]) < 5e-6);
        // The kept/dropped mask of the current head.
        QCOMPARE(panel->headMaskView()->value(i, j),
                 w.sparseResult()->forward.attentionMap(1, 1)[i * S + j] > 0 ? 1.0f : 0.0f);
      }
    QVERIFY(w.studentView()->title().contains("sparsified"));
    const auto r = w.sparseResult();
    QVERIFY(
        panel->readoutText().contains(QString::number(100 * r->total.sparsity(), 'f', 1) + " %"));
    QCOMPARE(panel->sweepView()->pointCount(), 21);
    // Moving τ gives a preview first: the rule on the dense maps, before the propagated run.
    QSignalSpy results(&w.session(), &Session::sparseReady);
    panel->setTau(0.2);
    QTRY_VERIFY_WITH_TIMEOUT(results.count() >= 2, kLoadTimeoutMs);
    const auto first = results.at(0).at(0).value<std::shared_ptr<const SparseResult>>();
    QVERIFY(first->preview);
    const sparse::Preview pv = sparse::preview(c->student.forward, panel->plan().attention);
    QVERIFY(first->forward.attention == pv.sparse.attention);
    QVERIFY(!results.at(1).at(0).value<std::shared_ptr<const SparseResult>>()->preview);
    panel->setTau(0.05);
    QTRY_VERIFY_WITH_TIMEOUT(
        !w.sparseResult()->preview &&
            std::fabs(w.sparseResult()->plan.attention.all.tau - panel->tau()) < 1e-12,
        kLoadTimeoutMs);
    QVERIFY(r->total.sparsity() > 0 && r->fidelity.klMean > 0);

    // Weights 2:4 and two heads removed by confidence: masks, crossed heads, importance.
    auto* method = panel->findChildren<QComboBox*>().at(1);
    QVERIFY(method->count() == 7);
    method->setCurrentIndex(6);  // N:M
    auto* heads = panel->findChildren<QSpinBox*>().last();
    QVERIFY(heads->suffix().contains("heads"));
    // Before any head is ranked the importance chart says how to get one, not an empty frame.
    QVERIFY2(panel->importanceChart()->message().contains("Remove"),
             qPrintable(panel->importanceChart()->message()));
    QCOMPARE(panel->importanceChart()->count(), 0);
    heads->setValue(2);
    QTRY_VERIFY_WITH_TIMEOUT(w.sparseResult() && !w.sparseResult()->preview &&
                                 w.sparseResult()->pruned.heads.size() == 2 &&
                                 !w.sparseResult()->pruned.tensors.empty(),
                             kLoadTimeoutMs);
    w.redrawNow();
    const auto r2 = w.sparseResult();
    QCOMPARE(w.headGrid(Student)->crossed(), r2->pruned.heads);
    QCOMPARE(panel->importanceChart()->count(), student->config.layers * student->config.heads);
    QCOMPARE(panel->importanceChart()->message(), QString());
    QVERIFY(panel->tensorCount() > 0);
    for (const auto& t : r2->pruned.tensors)
      if (t.target == Target::FfnIn) QCOMPARE(t.mask.sparsity(), 0.5);  // 2:4, no heads there
    panel->selectTensor(4);
    QVERIFY(!panel->weightMaskView()->showsMessage());
    QTest::qWait(100);
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-sparse.png")));
  }

  void distillationPanelTrainsTheStudent() {
    const QString data = QString::fromStdString(attn::test::dataDir().string());
    StartOptions o = pairOptions("the quick brown fox jumps over the lazy dog",
                                 data + "/models/bert_tiny",
                                 data + "/distill/bert_kl_value_hidden/student");
    o.corpus = data + "/distill/corpus.txt";
    MainWindow w(o);
    w.resize(1600, 1000);
    w.show();
    QVERIFY(waitForBoth(w));
    widgets::DistillPanel* p = w.distillPanel();
    QCOMPARE(p->corpus(), o.corpus);
    widgets::LayerMapView* map = p->mapView();
    QCOMPARE(map->teacherLayers(), 2);
    QCOMPARE(map->studentLayers(), 2);
    QCOMPARE(map->mapping(), (std::vector<int>{0, 1}));  // uniform
    // Drag student layer 0 onto teacher layer 1, then double-click student 1 to unmap it.
    w.activateWindow();
    QTest::mousePress(map, Qt::LeftButton, {}, map->studentCenter(0).toPoint());
    QTest::mouseMove(map, map->teacherCenter(1).toPoint());
    QTest::mouseRelease(map, Qt::LeftButton, {}, map->teacherCenter(1).toPoint());
    QCOMPARE(map->mapping(), (std::vector<int>{1, 1}));
    QTest::mouseDClick(map, Qt::LeftButton, {}, map->studentCenter(1).toPoint());
    QCOMPARE(map->mapping(), (std::vector<int>{1, -1}));
    QCOMPARE(p->options().loss.mapping, (std::vector<int>{1, -1}));
    QCOMPARE(w.mapping(), (std::vector<int>{1, 1}));  // the loss views show mapped pairs only
    QPushButton* uniform = nullptr;
    for (auto* b : p->findChildren<QPushButton*>())
      if (b->text() == "Uniform") uniform = b;
    QVERIFY(uniform);
    QTest::mouseClick(uniform, Qt::LeftButton);
    QCOMPARE(map->mapping(), (std::vector<int>{0, 1}));
    QCOMPARE(w.mapping(), (std::vector<int>{0, 1}));

    Session& s = w.session();
    const auto loaded = s.model(Student);
    QSignalSpy steps(&s, &Session::trainingStep);
    QSignalSpy refreshed(&s, &Session::studentRefreshed);
    QSignalSpy finished(&s, &Session::trainingFinished);
    p->setRun(1e-2, 60, 4, 32, 10);
    // The GUI thread stays free while the trainer runs.
    LatenessProbe probe;
    probe.start();
    QTest::mouseClick(p->startButton(), Qt::LeftButton);
    QVERIFY(!p->startButton()->isEnabled());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
    const qint64 worst = probe.stop();
    QVERIFY(finished.at(0).at(0).toBool());
    QCOMPARE(steps.count(), 60);
    qInfo("worst GUI timer lateness during training: %lld ms", worst);
    QVERIFY2(worst <= kMaxTimerLatenessMs, qPrintable(QString("late by %1 ms").arg(worst)));
    // The curves hold every step; the student in the views is the trained one.
    QCOMPARE(p->curves()->pointCount(0), 60);
    QVERIFY(p->curves()->lastValue(0) < steps.at(0).at(0).value<distill::StepReport>().loss.total);
    QVERIFY(refreshed.count() >= 1);  // throttled to 4/s; the last one at the end
    QCOMPARE(refreshed.last().at(0).toInt(), 60);
    QVERIFY(s.model(Student) != loaded);
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasStudent &&
                                 w.shownComparison()->generation == s.generation(), 30000);
    w.redrawNow();
    const double lossAfter = w.shownComparison()->loss.at(w.shownComparison()->loss.kl, 1, 1);
    QVERIFY(std::isfinite(lossAfter));
    for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
    QTest::qWait(100);
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-distill.png")));
    // Save the trained student; it loads and equals the trainer's weights.
    attn::test::TempDir tmp;
    QSignalSpy saved(&s, &Session::trainedStudentSaved);
    s.saveTrainedStudent(QString::fromStdString((tmp / "trained").string()));
    QTRY_COMPARE_WITH_TIMEOUT(saved.count(), 1, 30000);
    auto m = attn::loadModel(tmp / "trained");
    QVERIFY(m.ok());
    const auto shown = s.model(Student);
    QCOMPARE((*m)->weights.layers[0].q.w.numel(), shown->weights.layers[0].q.w.numel());
    QVERIFY(std::equal(shown->weights.layers[0].q.w.f32(),
                       shown->weights.layers[0].q.w.f32() + shown->weights.layers[0].q.w.numel(),
                       (*m)->weights.layers[0].q.w.f32()));
    // A long run: pause (no more steps; one may have been under way), resume,
    // then cancel: the run stops, says so, and the panel can start again.
    p->setRun(1e-3, 100000, 4, 32, 0);
    QTest::mouseClick(p->startButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(steps.count() >= 63, 60000);
    QTest::mouseClick(p->pauseButton(), Qt::LeftButton);
    QCOMPARE(p->pauseButton()->text(), QString("Resume"));
    QTest::qWait(50);
    const int atPause = steps.count();
    QTest::qWait(400);
    QVERIFY2(steps.count() <= atPause + 1, qPrintable(QString("%1 -> %2").arg(atPause).arg(steps.count())));
    QTest::mouseClick(p->pauseButton(), Qt::LeftButton);
    QCOMPARE(p->pauseButton()->text(), QString("Pause"));
    QTRY_VERIFY_WITH_TIMEOUT(steps.count() >= atPause + 5, 60000);
    QTest::mouseClick(p->cancelButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 60000);
    QVERIFY(!finished.at(1).at(0).toBool());
    QCOMPARE(finished.at(1).at(1).toString(), QString("cancelled"));
    QVERIFY(p->startButton()->isEnabled());
    QVERIFY(p->statusText().contains("cancelled"));
  }

  void distillationRefusesMismatchedVocabularies() {
    const QString data = QString::fromStdString(attn::test::dataDir().string());
    Session s(1);
    QSignalSpy loaded(&s, &Session::modelLoaded);
    s.loadModel(Teacher, data + "/models/gpt2_tiny");
    s.loadModel(Student, data + "/distill/bert_kl_value_hidden/student");
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 2, 60000);
    QSignalSpy finished(&s, &Session::trainingFinished);
    TrainRequest r;
    r.options.loss.mapping = {0, 1};
    r.options.steps = 3;
    r.options.batch = 2;
    r.options.seq = 32;
    r.corpus = data + "/distill/corpus.txt";
    s.startTraining(r);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);
    QVERIFY(!finished.at(0).at(0).toBool());
    QVERIFY(finished.at(0).at(1).toString().contains("tokenize the corpus differently"));
    r.corpus = data + "/nonexistent.txt";
    s.startTraining(r);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 60000);
    QVERIFY(finished.at(1).at(1).toString().contains("nonexistent.txt"));
  }

  // The embedded demo pair was trained by the program (resources/demo/reproduce.sh):
  // on the demo text, the distilled student's maps on the mapped layers are far
  // closer to the teacher's than attention spread evenly over the visible tokens.
  void trainedDemoPairResemblesItsTeacher() {
    const QString demoDir = QStringLiteral(ATTN_RESOURCE_DIR "/demo");
    StartOptions o = pairOptions("The cat sat on the mat. The dog sat on the log.",
                                 demoDir + "/teacher", demoDir + "/student");
    o.layer = 1;
    MainWindow w(o);
    w.resize(1600, 1000);
    w.show();
    QVERIFY(waitForBoth(w));
    const auto c = w.shownComparison();
    QVERIFY(c->hasLoss);
    QCOMPARE(w.mapping(), (std::vector<int>{1, 3}));
    const ForwardResult& t = c->teacher.forward;
    const int S = t.seq;
    for (int s = 0; s < 2; ++s) {
      const int tl = w.mapping()[s];
      // KL(teacher ‖ uniform over the visible keys), mean over heads and rows.
      double uniform = 0.0;
      for (int h = 0; h < t.heads; ++h)
        for (int i = 0; i < S; ++i)
          for (int j = 0; j <= i; ++j) {
            const double p = t.attentionMap(tl, h)[i * S + j];
            if (p > 0) uniform += p * std::log(p * (i + 1));
          }
      uniform /= double(t.heads) * S;
      const double student = c->loss.at(c->loss.kl, tl, s);
      qInfo("student layer %d vs teacher layer %d: KL %.3f (uniform maps: %.3f)", s, tl, student, uniform);
      QVERIFY2(student < 0.5 * uniform, qPrintable(QString("%1 vs %2").arg(student).arg(uniform)));
    }
    for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
    QTest::qWait(100);  // queued replots of the docked plots run first
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/explorer-demo.png")));
  }

  void exportDialogWritesWhatThePanelsShow() {
    MainWindow w(pairOptions("The cat sat on the mat because it was warm."));
    w.show();
    QVERIFY(waitForBoth(w));
    quant::ModelQuantPlan p;
    QVERIFY(quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:group:32", p).ok());
    w.quantPanel()->setPlan(p);
    QTRY_VERIFY_WITH_TIMEOUT(w.quantResult() != nullptr && w.quantResult()->hasForward, kLoadTimeoutMs);
    QCOMPARE(quant::planText(w.compressionPlan().quant), quant::planText(p));
    const auto quantized = w.quantResult()->model;
    attn::test::TempDir tmp;
    const QString out = QString::fromStdString((tmp / "exported").string());
    w.exportPreset_ = [&](QDialog& d) {
      d.findChild<QLineEdit*>("exportDir")->setText(out);
      for (auto* c : d.findChildren<QComboBox*>())
        if (c->findData("compressed") >= 0) c->setCurrentIndex(c->findData("compressed"));
      d.adjustSize();
      d.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/export-dialog.png"));
      d.accept();
    };
    QSignalSpy finished(&w.session(), &Session::exportFinished);
    QSignalSpy loaded(&w.session(), &Session::modelLoaded);
    const auto original = w.session().model(Student);  // the export reopens over it
    QVERIFY(w.runExportDialog());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kLoadTimeoutMs);
    QVERIFY2(finished.at(0).at(0).toBool(), qPrintable(finished.at(0).at(2).toString()));
    QVERIFY(QFile::exists(out + "/model.safetensors"));
    QVERIFY(QFile::exists(out + ".report.json"));
    // The one-page PDF beside it: a PDF with one page and its plots (vector paths).
    QFile pdf(out + ".report.pdf");
    QVERIFY(pdf.open(QIODevice::ReadOnly));
    const QByteArray pdfBytes = pdf.readAll();
    QVERIFY(pdfBytes.startsWith("%PDF-"));
    QCOMPARE(pdfBytes.count("/Type /Page") - pdfBytes.count("/Type /Pages"), 1);
    QVERIFY2(pdfBytes.size() > 20000, qPrintable(QString::number(pdfBytes.size())));
    {
      // Its figures are the engine's: the JSON report's numbers, the worst tensor, the
      // most changed head. The page as an image, to look at.
      const auto& student = original;
      compress::CompressionPlan plan = w.compressionPlan();
      auto applied = compress::applyPlan(*student, plan);
      QVERIFY(applied.ok());
      auto f = compress::reportFigures(*student, *applied, plan, {});
      QVERIFY(f.ok());
      QFile js(out + ".report.json");
      QVERIFY(js.open(QIODevice::ReadOnly));
      const QJsonObject report = QJsonDocument::fromJson(js.readAll()).object();
      QCOMPARE(qint64(f->bytesAfter), qint64(report["bytes_after"].toDouble()));
      QCOMPARE(f->klMean, report["attention_kl_mean"].toDouble());
      double worst = 1e300;
      for (const auto& t : applied->quantized) worst = std::min(worst, t.stats.sqnrDb);
      QVERIFY(!f->errors.empty());
      QCOMPARE(f->errors[0].sqnrDb, worst);
      double maxKl = 0.0;
      for (const auto& h : report["heads"].toArray()) maxKl = std::max(maxKl, h.toObject()["kl"].toDouble());
      QVERIFY(!f->mostChanged.empty());
      QCOMPARE(f->mostChanged[0].kl, maxKl);
      widgets::ReportPdfHeader header{QString::fromStdString(original->source.string()), out, "test"};
      QVERIFY(widgets::reportImage(*f, header, 1.5).save(QStringLiteral(QT_TESTCASE_BUILDDIR "/export-report.png")));
    }
    // Opened as the student: its weights are the quantized student's, bit for bit.
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, kLoadTimeoutMs);
    QCOMPARE(w.session().modelPath(Student), out);
    const auto reopened = w.session().model(Student);
    QCOMPARE(attn::test::firstDifferentWeight(quantized->config, quantized->weights, reopened->weights), std::string());
    // Exporting again into the same folder — now the student's own — is refused,
    // said so, and nothing is reopened.
    QVERIFY(w.runExportDialog());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kLoadTimeoutMs);
    QVERIFY(!finished.at(1).at(0).toBool());
    QVERIFY2(finished.at(1).at(2).toString().contains("refusing to write over the source model"),
             qPrintable(finished.at(1).at(2).toString()));
    QTest::qWait(200);
    QCOMPARE(loaded.count(), 1);
    QVERIFY(QFile::exists(out + "/model.safetensors"));
  }

  void exportHdf5WithProgressAndCancel() {
    MainWindow w(pairOptions("The cat sat on the mat because it was warm."));
    w.show();
    QVERIFY(waitForBoth(w));
    quant::ModelQuantPlan p;
    QVERIFY(quant::applyPlanText("q,k,v,o=uniform:4:channel; ffn_in,ffn_out=kmeans:3", p).ok());
    w.quantPanel()->setPlan(p);
    QTRY_VERIFY_WITH_TIMEOUT(w.quantResult() != nullptr && w.quantResult()->hasForward, kLoadTimeoutMs);
    const auto quantized = w.quantResult()->model;
    attn::test::TempDir tmp;
    QString out = QString::fromStdString((tmp / "student.h5").string());
    bool reopen = true;
    w.exportPreset_ = [&](QDialog& d) {
      d.findChild<QLineEdit*>("exportDir")->setText(out);
      auto* format = d.findChild<QComboBox*>("exportFormat");
      format->setCurrentIndex(format->findData("h5"));
      for (auto* c : d.findChildren<QCheckBox*>())
        if (c->text().contains("Open the exported")) c->setChecked(reopen);
      d.accept();
    };
    QSignalSpy stages(&w.session(), &Session::exportProgress);
    QSignalSpy finished(&w.session(), &Session::exportFinished);
    QSignalSpy loaded(&w.session(), &Session::modelLoaded);
    QVERIFY(w.runExportDialog());
    QPointer<QProgressDialog> progress = w.findChild<QProgressDialog*>("exportProgress");
    QVERIFY(progress != nullptr);
    bool grabbed = false;  // the dialog as it shows the second stage
    connect(&w.session(), &Session::exportProgress, progress, [&](int stage) {
      if (stage == 1)
        QTimer::singleShot(0, progress, [&] {
          grabbed = progress->grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/export-progress.png"));
        });
    });
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kLoadTimeoutMs);
    QVERIFY2(finished.at(0).at(0).toBool(), qPrintable(finished.at(0).at(2).toString()));
    // Three stages reported in order: apply, measure (the report goes inside), write.
    QCOMPARE(stages.count(), 3);
    for (int i = 0; i < 3; ++i) QCOMPARE(stages.at(i).at(0).toInt(), i);
    QVERIFY(QFile::exists(out));
    // Reopened as the student from the one file: the quantized weights, bit for bit.
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, kLoadTimeoutMs);
    QCOMPARE(w.session().modelPath(Student), out);
    const auto reopened = w.session().model(Student);
    QVERIFY(reopened->tokenizer != nullptr);
    QCOMPARE(attn::test::firstDifferentWeight(quantized->config, quantized->weights, reopened->weights), std::string());
    qInfo("progress dialog captured: %d", int(grabbed));
    // Cancel at once: the export stops, says so, and leaves nothing behind.
    out = QString::fromStdString((tmp / "cancelled.h5").string());
    reopen = false;
    QVERIFY(w.runExportDialog());
    progress = w.findChild<QProgressDialog*>("exportProgress");
    QVERIFY(progress != nullptr);
    QVERIFY(progress->isVisible());
    auto* cancelButton = progress->findChild<QPushButton*>();
    QVERIFY(cancelButton != nullptr);
    cancelButton->click();  // before the worker (milliseconds of work) can finish
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kLoadTimeoutMs);
    QVERIFY(!finished.at(1).at(0).toBool());
    QCOMPARE(finished.at(1).at(2).toString(), QString("cancelled"));
    QVERIFY(!QFile::exists(out));
    QCOMPARE(QDir(QString::fromStdString(tmp.path().string())).entryList(QDir::NoDotAndDotDot | QDir::AllEntries),
             (QStringList{"student.h5", "student.h5.report.json", "student.h5.report.pdf"}));
    QVERIFY(w.statusBar()->currentMessage().contains("cancelled"));
  }

  void openedPlanReproducesTheViews() {
    // A plan the panels' controls cannot show in full: different pruning per tensor
    // group, listed heads, a per-layer attention rule, quantization overrides.
    compress::CompressionPlan plan;
    QVERIFY(quant::applyPlanText("q,k,v,o=uniform:4:channel; ffn_in=kmeans:3; layer 1 o=uniform:8", plan.quant).ok());
    sparse::PruneSpec nm;
    nm.method = sparse::PruneMethod::NM;
    plan.prune.targets[int(Target::FfnIn)] = nm;
    sparse::PruneSpec rows;
    rows.method = sparse::PruneMethod::Rows;
    rows.sparsity = 0.25;
    plan.prune.targets[int(Target::O)] = rows;
    plan.prune.heads = {{0, 1}, {1, 0}};
    plan.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
    plan.prune.attention.all.tau = 0.01;
    sparse::AttentionRule top;
    top.kind = sparse::AttentionRule::Kind::TopK;
    top.k = 3;
    plan.prune.attention.overrides.push_back({1, -1, top});
    attn::test::TempDir tmp;
    const QString path = QString::fromStdString((tmp / "plan.json").string());
    QVERIFY(compress::savePlan(path.toStdString(), plan).ok());

    MainWindow w(pairOptions("The cat sat on the mat because it was warm."));
    w.show();
    QVERIFY(waitForBoth(w));
    QString error;
    QVERIFY(!w.openPlan(QString::fromStdString((tmp / "missing.json").string()), &error));
    QVERIFY2(error.contains("missing.json"), qPrintable(error));
    QVERIFY2(w.openPlan(path, &error), qPrintable(error));
    QTRY_VERIFY_WITH_TIMEOUT(w.quantResult() && w.quantResult()->hasForward, kLoadTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(w.sparseResult() && !w.sparseResult()->preview &&
                                 w.sparseResult()->hasForward,
                             kLoadTimeoutMs);
    // The plan the window now holds is the file's, field for field (JSON equal).
    compress::CompressionPlan shown = w.compressionPlan();
    shown.student = plan.student;
    QCOMPARE(QString::fromStdString(compress::planJson(shown)),
             QString::fromStdString(compress::planJson(plan)));
    // The views show what the engine computes for that plan: the quantized student
    // and the pruned student, weights bit for bit.
    const auto student = w.session().model(Student);
    auto q = quant::quantizeModel(*student, plan.quant);
    QVERIFY(q.ok());
    QCOMPARE(attn::test::firstDifferentWeight(student->config, w.quantResult()->model->weights,
                                              q->model->weights),
             std::string());
    auto pr = sparse::pruneModel(*student, plan.prune);
    QVERIFY(pr.ok());
    QCOMPARE(attn::test::firstDifferentWeight(student->config, w.sparseResult()->pruned.model->weights,
                                              pr->model->weights),
             std::string());
    // The report of this plan: sparsity patterns of the sparsest masks (the engine's).
    {
      auto applied = compress::applyPlan(*student, plan);
      QVERIFY(applied.ok());
      auto f = compress::reportFigures(*student, *applied, plan, "The cat sat on the mat because it was warm.");
      QVERIFY(f.ok());
      QCOMPARE(f->patterns.size(), size_t(2));
      double sparsest = 0.0;
      for (const auto& t : applied->pruned) sparsest = std::max(sparsest, t.mask.sparsity());
      QCOMPARE(f->patterns[0].sparsity, sparsest);
      QVERIFY(f->patterns[0].sparsity >= f->patterns[1].sparsity);
      widgets::ReportPdfHeader header{QString::fromStdString(student->source.string()), "(not written)", "test"};
      QVERIFY(widgets::reportImage(*f, header, 1.5).save(QStringLiteral(QT_TESTCASE_BUILDDIR "/export-report-pruned.png")));
    }
    // The sparsity controls show the plan's first spec, τ and the number of heads.
    auto* panel = w.findChild<widgets::SparsityPanel*>();
    QCOMPARE(panel->headsToPrune(), 2);
    QCOMPARE(int(panel->plan().attention.all.kind), int(sparse::AttentionRule::Kind::Threshold));
    // The τ slider has 100 log steps over [1e-4, 0.5] (ratio 5000^(1/100) ≈ 1.089 per step):
    // it shows the nearest, within half a step; the plan applied keeps τ exactly (above).
    QVERIFY2(std::abs(panel->tau() / 0.01 - 1.0) < 0.045, qPrintable(QString::number(panel->tau())));
    QVERIFY(panel->plan().targets[int(Target::O)].has_value());
  }

  void undoRedoAndPresetsRestoreTheNumbersExactly() {
    QSettings().remove("presets");
    MainWindow w(pairOptions("The cat sat on the mat because it was warm."));
    w.show();
    QVERIFY(waitForBoth(w));
    // The result of this plan once it arrives (null on time-out).
    auto quantFor = [&](const std::string& text) -> std::shared_ptr<const QuantResult> {
      QElapsedTimer t;
      t.start();
      while (t.elapsed() < kLoadTimeoutMs) {
        if (w.quantResult() && w.quantResult()->hasForward &&
            quant::planText(w.quantResult()->plan) == text)
          return w.quantResult();
        QTest::qWait(10);
      }
      return nullptr;
    };
    // Step 1: a preset; step 2: an edit in the panel.
    QVERIFY(w.applyPreset("int8 per-channel"));
    const std::string int8 = quant::planText(w.presets()[1].second.quant);
    const auto a = quantFor(int8);
    QVERIFY(a);
    quant::ModelQuantPlan p4;
    QVERIFY(quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:channel", p4).ok());
    w.quantPanel()->setPlan(p4);
    const auto b = quantFor(quant::planText(p4));
    QVERIFY(b);
    QCOMPARE(w.undoStack()->count(), 2);
    QCOMPARE(w.undoStack()->undoText(), QString("Quantization change"));
    // Undo: the int8 numbers again, exactly (weights bit for bit, the same fidelity).
    w.undoStack()->undo();
    QCOMPARE(quant::planText(w.quantPanel()->plan()), int8);
    const auto a2 = quantFor(int8);
    QVERIFY(a2 && a2 != a);  // recomputed, not the old object
    QCOMPARE(attn::test::firstDifferentWeight(a->model->config, a->model->weights, a2->model->weights),
             std::string());
    QCOMPARE(a2->fidelity.klMean, a->fidelity.klMean);
    QCOMPARE(a2->fidelity.hiddenCosine, a->fidelity.hiddenCosine);
    QCOMPARE(a2->bytesAfter, a->bytesAfter);
    // Redo: the 4-bit numbers.
    w.undoStack()->redo();
    const auto b2 = quantFor(quant::planText(p4));
    QVERIFY(b2);
    QCOMPARE(attn::test::firstDifferentWeight(b->model->config, b->model->weights, b2->model->weights),
             std::string());
    QCOMPARE(b2->fidelity.klMean, b->fidelity.klMean);
    // Undo all the way: no compression; the panel is back where it started.
    w.undoStack()->undo();
    w.undoStack()->undo();
    QVERIFY(!w.quantPanel()->plan().quantizesWeights());
    QVERIFY(!w.undoStack()->canUndo());
    // A sparsity preset, undone: the attention rule goes away again.
    QVERIFY(w.applyPreset("τ = 0.01 attention"));
    QTRY_VERIFY_WITH_TIMEOUT(w.sparseResult() && !w.sparseResult()->preview &&
                                 w.sparseResult()->plan.attention.active(),
                             kLoadTimeoutMs);
    QCOMPARE(w.sparseResult()->plan.attention.all.tau, 0.01);
    w.undoStack()->undo();
    QCOMPARE(int(w.sparsityPanel()->plan().attention.all.kind), int(sparse::AttentionRule::Kind::None));
    // A saved preset comes back by name, with the plan it was saved with.
    QVERIFY(w.applyPreset("4-bit group-64 + 2:4"));
    w.savePreset("mine");
    w.undoStack()->undo();
    QVERIFY(w.applyPreset("mine"));
    QTRY_VERIFY_WITH_TIMEOUT(w.sparseResult() && !w.sparseResult()->preview &&
                                 w.sparseResult()->plan.prunesWeights(),
                             kLoadTimeoutMs);
    QCOMPARE(quant::planText(w.compressionPlan().quant), quant::planText(w.presets()[2].second.quant));
    QVERIFY(!w.applyPreset("no such preset"));
    QSettings().remove("presets");
  }

  void badModelKeepsThePreviousOne() {
    Session s;
    QSignalSpy loaded(&s, &Session::modelLoaded);
    QSignalSpy failed(&s, &Session::loadFailed);
    s.loadModel(Teacher, demo("bert-demo"));
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, kLoadTimeoutMs);
    const auto before = s.model(Teacher);
    attn::test::TempDir tmp;
    attn::test::writeBytes(tmp / "config.json", "{\"model_type\": \"bert\"}");
    s.loadModel(Teacher, QString::fromStdString(tmp.path().string()));
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, kLoadTimeoutMs);
    QVERIFY(failed.at(0).at(2).toString().contains("missing key \"hidden_size\""));
    QCOMPARE(s.model(Teacher), before);
    QCOMPARE(s.modelPath(Teacher), demo("bert-demo"));
  }

  void onlyTheLatestRequestIsAnswered() {
    Session s;
    QSignalSpy loaded(&s, &Session::modelLoaded);
    QSignalSpy ready(&s, &Session::comparisonReady);
    s.loadModel(Student, demo("bert-demo-student"));
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, kLoadTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() >= 1, kLoadTimeoutMs);  // the load's own comparison
    ready.clear();
    for (int i = 0; i < 20; ++i) s.setText(longText(10 + i));
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() >= 1, kLoadTimeoutMs);
    QTest::qWait(300);  // nothing stale may arrive later
    QCOMPARE(ready.count(), 1);
    const auto c = ready.at(0).at(0).value<std::shared_ptr<const Comparison>>();
    QCOMPARE(c->generation, s.generation());
    QCOMPARE(c->text, longText(29));
  }

  void guiThreadNeverBlocks() {
    attn::test::TempDir tmp;
    writeBert(tmp / "bert-base");
    Session s(2);
    QSignalSpy loaded(&s, &Session::modelLoaded);
    QSignalSpy ready(&s, &Session::comparisonReady);
    QSignalSpy failed(&s, &Session::comparisonFailed);
    s.setText(longText(508));  // 510 tokens with [CLS] and [SEP]
    LatenessProbe probe;
    probe.start();
    s.loadModel(Teacher, QString::fromStdString((tmp / "bert-base").string()));
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() >= 1 || failed.count() >= 1, 120000);
    const qint64 worst = probe.stop();
    QCOMPARE(failed.count(), 0);
    const auto c = ready.at(0).at(0).value<std::shared_ptr<const Comparison>>();
    QVERIFY(c->teacher.forward.seq >= 500);
    qInfo("seq %d, worst GUI timer lateness %lld ms", c->teacher.forward.seq, worst);
    QVERIFY2(worst <= kMaxTimerLatenessMs, qPrintable(QString("late by %1 ms").arg(worst)));

    // A load queued behind this long comparison and cancelled never replaces
    // anything; a load after the cancel is not affected by it.
    QSignalSpy loadFailed(&s, &Session::loadFailed);
    s.setText(longText(507));
    s.loadModel(Student, demo("bert-demo-student"));
    s.cancelLoads();
    QTRY_COMPARE_WITH_TIMEOUT(loadFailed.count(), 1, 120000);
    QCOMPARE(loadFailed.at(0).at(2).toString(), QString("cancelled"));
    QVERIFY(s.model(Student) == nullptr);
    s.loadModel(Student, demo("bert-demo-student"));
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 2, 120000);
    QVERIFY(s.model(Student) != nullptr);
  }

  void screenshots_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("head");
    QTest::addColumn<QString>("dock");  // which tabbed dock is in front
    QTest::newRow("short") << "explorer-short.png"
                           << "The quick brown fox jumps over the lazy dog." << 1 << "heads";
    QTest::newRow("256 tokens") << "explorer-256.png" << longText(254) << 0 << "heads";
    QTest::newRow("loss matrix") << "explorer-loss.png"
                                 << "The cat sat on the mat. The dog sat on the log." << 1
                                 << "loss";
  }

  // ---- The compression workspace (issue 8) ----

  // The demo pair on a 128-token input with 4-bit weights and τ = 0.01: the
  // workspace is the default view and every part of it shows the engine's numbers.
  void workspaceShowsTheCompressedStudent() {
    // The embedded demo pair (GPT-2 style, the explorer's default) on 128 tokens of text.
    const QString demoDir = QStringLiteral(ATTN_RESOURCE_DIR "/demo");
    auto demoStudent = loadModel((demoDir + "/student").toStdString());
    QVERIFY(demoStudent.ok());
    QString text;
    for (int n = 40; n < 160 && text.isEmpty(); ++n)
      if ((*demoStudent)->tokenizer->encode(longText(n).toStdString()).ids.size() == 128) text = longText(n);
    QVERIFY(!text.isEmpty());
    StartOptions o = pairOptions(text, demoDir + "/teacher", demoDir + "/student");
    o.workspaceByDefault = true;
    MainWindow w(o);
    w.resize(1700, 1000);
    w.show();
    QVERIFY(waitForBoth(w));
    QTRY_COMPARE_WITH_TIMEOUT(int(w.compare()), int(MainWindow::Compare::Workspace), kLoadTimeoutMs);
    compress::CompressionPlan plan;
    QVERIFY(quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:group:64", plan.quant).ok());
    plan.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
    plan.prune.attention.all.tau = 0.01;
    w.applyPlanAsStep(plan, "4-bit + τ");
    const auto r = waitForWorkspace(w);
    QVERIFY(r);
    QCOMPARE(int(w.compare()), int(MainWindow::Compare::Workspace));
    w.selectHead(1, 2);
    w.redrawNow();
    auto* ws = w.workspaceView();
    const int S = r->forward.seq;
    QCOMPARE(S, 128);
    // Independent runs: the student, its compressed copy, the mapped teacher layer.
    const auto student = w.session().model(Student), teacher = w.session().model(Teacher);
    const auto ids = student->tokenizer->encode(text.toStdString()).ids;
    auto ref = forward(student->config, student->weights, ids, {});
    auto applied = compress::applyPlan(*student, plan);
    QVERIFY(ref.ok() && applied.ok());
    auto comp = forward(applied->model->config, applied->model->weights, ids, {}, compress::forwardOptions(plan));
    auto tf = forward(teacher->config, teacher->weights, ids, {});
    QVERIFY(comp.ok() && tf.ok());
    const int tl = uniformLayerMap(student->config.layers, teacher->config.layers)[1];
    auto check = [&](widgets::WorkspaceView::Map m, const float* want, const char* what) {
      auto* v = ws->map(m);
      QVERIFY2(!v->showsMessage(), what);
      QCOMPARE(v->rows(), S);
      std::vector<float> got(size_t(S) * S);
      for (int i = 0; i < S; ++i)
        for (int j = 0; j < S; ++j) got[size_t(i) * S + j] = v->value(i, j);
      ATTN_CHECK_CLOSE(got.data(), want, got.size(), 0.0, what);
    };
    check(widgets::WorkspaceView::Student, ref->attentionMap(1, 2), "student map");
    check(widgets::WorkspaceView::Compressed, comp->attentionMap(1, 2), "compressed map");
    check(widgets::WorkspaceView::Teacher, tf->attentionMap(tl, 2), "teacher map");
    std::vector<float> diff(size_t(S) * S);
    for (size_t k = 0; k < diff.size(); ++k) diff[k] = comp->attentionMap(1, 2)[k] - ref->attentionMap(1, 2)[k];
    check(widgets::WorkspaceView::Difference, diff.data(), "difference map");
    // τ = 0.01 drops entries: the mask shows exactly the kept ones.
    int kept = 0;
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) {
        const bool on = comp->attentionMap(1, 2)[size_t(i) * S + j] > 0;
        QCOMPARE(ws->attentionMask()->value(i, j), on ? 1.0f : 0.0f);
        kept += on;
      }
    QVERIFY(kept < S * S);
    // The selected tensor's error histogram is the quantizer's (computed for the
    // tensor on screen once the layer changed).
    QTRY_VERIFY_WITH_TIMEOUT((w.redrawNow(), ws->errorHistogram()->binCount() > 0), kLoadTimeoutMs);
    QVERIFY(ws->weightHistogram()->levelCount() > 1);
    const auto& q = *std::find_if(applied->quantized.begin(), applied->quantized.end(),
                                  [](const auto& t) { return t.layer == 1 && t.target == Target::Q; });
    for (int b = 0; b < ws->errorHistogram()->binCount(); ++b)
      QCOMPARE(ws->errorHistogram()->count(b), q.stats.errors.counts[size_t(b)]);
    // The strip: the engine's fidelity and size numbers.
    const Fidelity f = fidelity(*ref, *comp);
    QCOMPARE(r->eval.klMean, f.klMean);
    QCOMPARE(r->eval.hiddenCosine, f.hiddenCosine);
    const compress::PlanSize size = compress::planSize(*student, *applied);
    QCOMPARE(r->eval.size.after, size.after);
    const QString strip = ws->readoutText();
    QVERIFY2(strip.contains(QString::number(f.klMean, 'g', 3)), qPrintable(strip));
    QVERIFY2(strip.contains(QString::number(size.bitsPerWeight(), 'f', 2)), qPrintable(strip));
    // Over the quantized matrices: 4-bit codes plus one float32 scale per group of 64.
    QVERIFY2(strip.contains(QString("%1 in the %2 quantized matrices").arg(4.0 + 32.0 / 64, 0, 'f', 2)
                                .arg(applied->quantized.size())),
             qPrintable(strip));
    QVERIFY(std::isfinite(r->eval.teacherKl));  // the pair shares its vocabulary
    QCOMPARE(r->eval.teacherKl, compress::teacherKl(*tf, *comp, uniformLayerMap(student->config.layers,
                                                                              teacher->config.layers)));
    // The Quantization panel shows the same compressed student's numbers.
    QCOMPARE(w.quantPanel()->tensorCount(), int(applied->quantized.size()));
    // The Sparsity panel's τ curve (from the workspace job here): the preview's numbers
    // on the student's dense maps, its marker at the swept τ nearest 0.01.
    auto* curve = w.sparsityPanel()->sweepView();
    QCOMPARE(curve->pointCount(), 21);
    QVERIFY(r->tauCurve);
    sparse::AttentionPlan near;
    near.all = plan.prune.attention.all;
    near.all.tau = r->tauCurve->tau[11];  // 1e-4 · 5000^(11/20) ≈ 0.0108
    QVERIFY(std::fabs(std::log(near.all.tau / 0.01)) < std::fabs(std::log(r->tauCurve->tau[10] / 0.01)));
    const sparse::Preview pv = sparse::preview(*ref, near);
    QCOMPARE(r->tauCurve->sparsity[11], pv.total.sparsity());
    QCOMPARE(r->tauCurve->kl[11], pv.klMean);
    QCOMPARE(curve->markerX(), 100 * pv.total.sparsity());
    QTest::qWait(100);
    for (auto* p : w.findChildren<QCustomPlot*>()) p->replot();  // the grab shows each plot's buffer
    const QString path = QStringLiteral(QT_TESTCASE_BUILDDIR "/workspace-4bit-tau.png");
    QVERIFY(w.grab().save(path));
    QVERIFY(QFileInfo(path).size() > 20000);
    // The Sparsity tab of the same workspace: its τ curve and marker, to look at.
    auto* sparsityDock = w.findChild<QDockWidget*>("sparsity");
    QVERIFY(sparsityDock);
    sparsityDock->raise();
    QTest::qWait(100);
    w.redrawNow();
    // Its kept-attention view shows the workspace's head (L1 h2): exactly the kept entries.
    auto* keptView = w.sparsityPanel()->headMaskView();
    QVERIFY(!keptView->showsMessage());
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j)
        QCOMPARE(keptView->value(i, j), comp->attentionMap(1, 2)[size_t(i) * S + j] > 0 ? 1.0f : 0.0f);
    for (auto* p : w.sparsityPanel()->findChildren<QCustomPlot*>()) p->replot();
    QVERIFY(w.sparsityPanel()->grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/workspace-sparsity.png")));
  }

  // Quick control changes: each part of the workspace is redrawn once per
  // throttled redraw, and never more often than results arrive.
  void controlChangesRedrawEachViewOncePerInterval() {
    StartOptions o = pairOptions("The cat sat on the mat because it was warm.");
    o.workspaceByDefault = true;
    MainWindow w(o);
    w.show();
    QVERIFY(waitForBoth(w));
    QTRY_COMPARE_WITH_TIMEOUT(int(w.compare()), int(MainWindow::Compare::Workspace), kLoadTimeoutMs);
    QVERIFY(waitForWorkspace(w));
    QTest::qWait(200);
    QSignalSpy results(&w.session(), &Session::workspaceReady);
    const auto before = w.workspaceView()->updates();
    const int redrawsBefore = w.workspaceRedraws();
    QElapsedTimer clock;
    clock.start();
    // Five changes in one go (a slider dragged over five steps between two events).
    for (int bits : {8, 7, 6, 5, 4}) {
      quant::ModelQuantPlan p;
      QVERIFY(quant::applyPlanText("all=uniform:" + std::to_string(bits) + ":channel", p).ok());
      w.quantPanel()->setPlan(p);
    }
    const auto r = waitForWorkspace(w);
    QVERIFY(r);
    QCOMPARE(r->plan.quant.targets[0]->bits, 4);
    QTest::qWait(300);  // any redraw still pending runs
    const auto after = w.workspaceView()->updates();
    const int redraws = w.workspaceRedraws() - redrawsBefore;
    QVERIFY(redraws >= 1);
    // Latest request wins: five changes, far fewer results.
    QVERIFY2(results.count() <= 2, qPrintable(QString::number(results.count())));
    QVERIFY2(redraws <= results.count() + 1, qPrintable(QString("%1 redraws for %2 results").arg(redraws).arg(results.count())));
    QCOMPARE(after.maps - before.maps, redraws);
    QCOMPARE(after.tensor - before.tensor, redraws);
    QCOMPARE(after.mask - before.mask, redraws);
    QCOMPARE(after.readout - before.readout, redraws);
    // Undo of the merged edit brings back the previous result's numbers exactly.
    const double kl4 = r->eval.klMean;
    QVERIFY(w.undoStack()->canUndo());
    w.undoStack()->undo();
    const auto back = waitForWorkspace(w);
    QVERIFY(back);
    QVERIFY(!back->plan.quant.quantizesWeights());
    QCOMPARE(back->eval.klMean, 0.0);
    w.undoStack()->redo();
    const auto again = waitForWorkspace(w);
    QVERIFY(again);
    QCOMPARE(QString::fromStdString(compress::planJson(again->plan)), QString::fromStdString(compress::planJson(r->plan)));
    QCOMPARE(again->eval.klMean, kl4);
    QCOMPARE(again->eval.size.after, r->eval.size.after);
    // A new text: the same compressed weights (not quantized again), measured on it —
    // also when the first job for the text is cancelled during its reference runs
    // (they are slowed down here so that the requests that follow the text change
    // cancel it there; the cache used to forget the weights then: 2 runs in 22 failed, and
    // with the delay this check fails every time without the fix).
    const QString text2 = "Birds sang in the trees while the dogs ran.";
    QSignalSpy failed(&w.session(), &Session::workspaceFailed);
    w.session().setWorkspaceReferenceDelayForTesting(150);
    w.session().setText(text2);
    QTRY_VERIFY_WITH_TIMEOUT(w.workspaceResult() && w.workspaceResult()->text == text2, kLoadTimeoutMs);
    w.session().setWorkspaceReferenceDelayForTesting(0);
    QCOMPARE(failed.count(), 0);
    const auto moved = w.workspaceResult();
    QCOMPARE(moved->applied, again->applied);
    const auto student = w.session().model(Student);
    const auto ids2 = student->tokenizer->encode(text2.toStdString()).ids;
    auto fresh = compress::applyPlan(*student, moved->plan);
    QVERIFY(fresh.ok());
    auto ref2 = forward(student->config, student->weights, ids2, {});
    auto got2 = forward(fresh->model->config, fresh->model->weights, ids2, {}, compress::forwardOptions(moved->plan));
    QVERIFY(ref2.ok() && got2.ok());
    QCOMPARE(moved->eval.klMean, fidelity(*ref2, *got2).klMean);
    // One matrix of the last layer changed: the forward pass resumes there (the
    // layers before are the previous run's), and every number equals a full pass.
    const int L = student->config.layers;
    compress::CompressionPlan one = moved->plan;
    QVERIFY(quant::applyPlanText("layer " + std::to_string(L - 1) + " q=uniform:3:channel", one.quant).ok());
    w.applyPlanAsStep(one, "override");
    QTRY_VERIFY_WITH_TIMEOUT(w.workspaceResult() &&
                                 compress::planJson(w.workspaceResult()->plan) == compress::planJson(one),
                             kLoadTimeoutMs);
    const auto resumed = w.workspaceResult();
    QCOMPARE(resumed->resumedAt, L - 1);
    auto whole = compress::applyPlan(*student, one);
    QVERIFY(whole.ok());
    auto wholeRun = forward(whole->model->config, whole->model->weights, ids2, {}, compress::forwardOptions(one));
    QVERIFY(wholeRun.ok());
    QVERIFY(resumed->forward.attention == wholeRun->attention);
    QVERIFY(resumed->forward.lastHidden == wholeRun->lastHidden);
    QCOMPARE(resumed->eval.klMean, fidelity(*ref2, *wholeRun).klMean);
    QVERIFY(resumed->eval.klMean != moved->eval.klMean);
    QVERIFY(!resumed->resumedAtFfn);
    // Feed-forward matrices only — of one layer, then of every layer: the pass
    // resumes at that layer's (layer 0's) feed-forward block, and equals a full pass.
    // Then the embeddings only (layer 0's weights unchanged): the whole pass again.
    compress::CompressionPlan ffnOne = one;
    QVERIFY(quant::applyPlanText("layer " + std::to_string(L - 1) + " ffn_in=uniform:3:channel", ffnOne.quant).ok());
    compress::CompressionPlan ffnAll = ffnOne;
    QVERIFY(quant::applyPlanText("ffn_out=uniform:5:channel", ffnAll.quant).ok());  // was 4-bit
    compress::CompressionPlan embOnly = ffnAll;
    QVERIFY(quant::applyPlanText("emb=uniform:3:channel", embOnly.quant).ok());
    struct Step {
      compress::CompressionPlan plan;
      int layer;
      bool atFfn;
    };
    for (const Step& item : {Step{ffnOne, L - 1, true}, Step{ffnAll, 0, true}, Step{embOnly, 0, false}}) {
      const compress::CompressionPlan& step = item.plan;
      w.applyPlanAsStep(step, "ffn");
      QTRY_VERIFY_WITH_TIMEOUT(w.workspaceResult() &&
                                   compress::planJson(w.workspaceResult()->plan) == compress::planJson(step),
                               kLoadTimeoutMs);
      const auto got = w.workspaceResult();
      QCOMPARE(got->resumedAt, item.layer);
      QCOMPARE(got->resumedAtFfn, item.atFfn);
      auto plain = compress::applyPlan(*student, step);
      QVERIFY(plain.ok());
      auto plainRun = forward(plain->model->config, plain->model->weights, ids2, {}, compress::forwardOptions(step));
      QVERIFY(plainRun.ok());
      QVERIFY(got->forward.attention == plainRun->attention);
      QVERIFY(got->forward.lastHidden == plainRun->lastHidden);
      QCOMPARE(got->eval.klMean, fidelity(*ref2, *plainRun).klMean);
    }
  }

  // A 2-parameter sweep in the background: its points equal single runs of the
  // same plans; clicking a point applies its plan; Cancel keeps what finished.
  void sweepPointsEqualSingleRunsAndApplyOnClick() {
    StartOptions o = pairOptions("The cat sat on the mat because it was warm.");
    o.workspaceByDefault = true;
    MainWindow w(o);
    w.resize(1700, 1000);
    w.show();
    QVERIFY(waitForBoth(w));
    QVERIFY(waitForWorkspace(w));
    auto* panel = w.tradeoffPanel();
    const QString corpus = QDir::temp().filePath("attn-sweep-corpus.txt");
    {
      QFile f(corpus);
      QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
      f.write("the cat sat on the mat\na dog barked at the mailman\n\nbirds sang in the trees\n");
    }
    panel->setCorpus(corpus);
    panel->setAxis(0, compress::SweepParam::Bits, "2, 4, 8");
    panel->setAxis(1, compress::SweepParam::Tau, "0.001, 0.05");
    QSignalSpy finished(&w.session(), &Session::analysisFinished);
    panel->findChild<QPushButton*>("runSweep")->click();
    QVERIFY(finished.wait(kLoadTimeoutMs));
    QCOMPARE(finished.first().at(0).toBool(), true);
    QCOMPARE(int(panel->points().size()), 6);
    const auto student = w.session().model(Student), teacher = w.session().model(Teacher);
    auto ref = compress::makeReference(*student, teacher.get(),
                                       {"the cat sat on the mat", "a dog barked at the mailman", "birds sang in the trees"},
                                       uniformLayerMap(student->config.layers, teacher->config.layers));
    QVERIFY(ref.ok());
    for (const auto& pt : panel->points()) {
      auto applied = compress::applyPlan(*student, pt.plan);
      QVERIFY(applied.ok());
      auto one = compress::evaluatePlan(*student, *applied, pt.plan, *ref);
      QVERIFY(one.ok());
      QCOMPARE(pt.eval.sentences, 3);
      QCOMPARE(pt.eval.klMean, one->klMean);
      QCOMPARE(pt.eval.teacherKl, one->teacherKl);
      QCOMPARE(pt.eval.size.after, one->size.after);
    }
    const auto front = panel->front();
    QVERIFY(!front.empty());
    // Click the front's last point (the closest to the teacher): its plan becomes the workspace's.
    const int pick = front.back();
    panel->view()->plot()->replot();
    const QPoint at = panel->view()->pixelOf(pick);
    QCOMPARE(panel->view()->pointAt(at), pick);
    const int steps = w.undoStack()->count();
    QTest::mouseClick(panel->view()->plot(), Qt::LeftButton, {}, panel->view()->plot()->mapFrom(panel->view(), at));
    QCOMPARE(w.undoStack()->count(), steps + 1);
    const auto r = waitForWorkspace(w);
    QVERIFY(r);
    const auto& chosen = panel->points()[size_t(pick)].plan;
    QCOMPARE(r->plan.quant.targets[0]->bits, chosen.quant.targets[0]->bits);
    QCOMPARE(r->plan.prune.attention.all.tau, chosen.prune.attention.all.tau);
    w.findChild<QDockWidget*>("tradeoffs")->raise();
    QTest::qWait(100);
    for (auto* p : w.findChildren<QCustomPlot*>()) p->replot();
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/workspace-sweep.png")));
    // Cancel after the first point: the finished points stay.
    panel->setAxis(0, compress::SweepParam::Bits, "2, 3, 4, 5, 6");
    panel->setAxis(1, compress::SweepParam::Tau, "0.001, 0.003, 0.01, 0.03, 0.1");
    finished.clear();
    QSignalSpy points(&w.session(), &Session::sweepPoint);
    panel->findChild<QPushButton*>("runSweep")->click();
    QVERIFY(points.wait(kLoadTimeoutMs));
    panel->findChild<QPushButton*>("cancelSweep")->click();
    QVERIFY(finished.wait(kLoadTimeoutMs));
    QCOMPARE(finished.first().at(0).toBool(), false);
    QVERIFY(panel->points().size() >= 1 && panel->points().size() < 25);
    QVERIFY2(panel->statusText().contains("Stopped"), qPrintable(panel->statusText()));
    QFile::remove(corpus);
  }

  // The plan over a corpus, streamed: per-head numbers equal the engine's over the
  // same sentences; the layers × heads map shows them.
  void corpusFidelityStreamsPerHeadNumbers() {
    StartOptions o = pairOptions("The cat sat on the mat.");
    o.workspaceByDefault = true;
    MainWindow w(o);
    w.show();
    QVERIFY(waitForBoth(w));
    QVERIFY(waitForWorkspace(w));
    compress::CompressionPlan plan;
    QVERIFY(quant::applyPlanText("all=uniform:3:channel", plan.quant).ok());
    w.applyPlanAsStep(plan, "3-bit");
    QVERIFY(waitForWorkspace(w));
    const QString corpus = QDir::temp().filePath("attn-corpus-view.txt");
    const std::vector<std::string> lines = {"one sentence here", "the second one is longer than the first",
                                            "three", "and a fourth to end"};
    {
      QFile f(corpus);
      QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
      for (const auto& l : lines) f.write((l + "\n").c_str());
    }
    auto* panel = w.corpusPanel();
    panel->setCorpus(corpus);
    QSignalSpy partial(&w.session(), &Session::corpusPartial);
    QSignalSpy finished(&w.session(), &Session::analysisFinished);
    panel->findChild<QPushButton*>("runCorpus")->click();
    QVERIFY(finished.wait(kLoadTimeoutMs));
    QCOMPARE(finished.first().at(0).toBool(), true);
    QCOMPARE(partial.count(), 4);  // one per sentence
    const auto* e = panel->evaluation();
    QVERIFY(e);
    QCOMPARE(e->sentences, 4);
    const auto student = w.session().model(Student);
    auto ref = compress::makeReference(*student, nullptr, lines, {});
    auto applied = compress::applyPlan(*student, plan);
    QVERIFY(ref.ok() && applied.ok());
    auto want = compress::evaluatePlan(*student, *applied, plan, *ref);
    QVERIFY(want.ok());
    QCOMPARE(e->headKl, want->headKl);
    auto* map = panel->heatmap();
    QCOMPARE(map->rows(), student->config.layers);
    QCOMPARE(map->cols(), student->config.heads);
    for (int l = 0; l < map->rows(); ++l)
      for (int h = 0; h < map->cols(); ++h)
        QCOMPARE(map->value(l, h), float(want->headKl[size_t(l) * map->cols() + h]));
    QVERIFY(panel->readoutText().contains("4 sentences"));
    w.findChild<QDockWidget*>("corpusFidelity")->raise();
    QTest::qWait(100);
    for (auto* p : w.findChildren<QCustomPlot*>()) p->replot();
    QVERIFY(w.grab().save(QStringLiteral(QT_TESTCASE_BUILDDIR "/workspace-corpus.png")));
    // A missing corpus: a clear message, nothing runs.
    panel->setCorpus(QDir::temp().filePath("no-such-corpus.txt"));
    finished.clear();
    panel->findChild<QPushButton*>("runCorpus")->click();
    QVERIFY(finished.count() == 1 || finished.wait(5000));
    QCOMPARE(finished.first().at(0).toBool(), false);
    QVERIFY(!finished.first().at(1).toString().isEmpty());
    QFile::remove(corpus);
  }

  // Docks moved by the user come back where they were in the next window.
  void dockArrangementIsRemembered() {
    StartOptions o;
    {
      MainWindow w(o);
      w.show();
      auto* dock = w.findChild<QDockWidget*>("tradeoffs");
      QVERIFY(dock);
      w.addDockWidget(Qt::LeftDockWidgetArea, dock);
      QCOMPARE(w.dockWidgetArea(dock), Qt::LeftDockWidgetArea);
      w.close();
    }
    {
      MainWindow w(o);
      w.show();
      auto* dock = w.findChild<QDockWidget*>("tradeoffs");
      QCOMPARE(w.dockWidgetArea(dock), Qt::LeftDockWidgetArea);
      QCOMPARE(w.dockWidgetArea(w.findChild<QDockWidget*>("corpusFidelity")), Qt::RightDockWidgetArea);
    }
    QSettings().remove("window/state");
  }

  void screenshots() {
    QFETCH(QString, file);
    QFETCH(QString, text);
    QFETCH(int, head);
    QFETCH(QString, dock);
    StartOptions o = pairOptions(text);
    o.head = head;
    MainWindow w(o);
    w.show();
    QVERIFY(waitForBoth(w));
    for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
    const QString path = QStringLiteral(QT_TESTCASE_BUILDDIR "/") + file;
    QTest::qWait(100);  // queued replots of the docked plots run first
    QVERIFY(w.grab().save(path));
    QVERIFY(QFileInfo(path).size() > 10000);
  }
};

QTEST_MAIN(TestGui)
#include "test_gui.moc"
