// Explorer speed (a benchmark, not a test; not run by ctest):
//   QT_QPA_PLATFORM=offscreen build/release/tests/bench_gui
// - switchHead: one layer/head switch = recompute the three maps and replot them
//   (what happens after the 35 ms throttle), demo pair at 128 and 512 tokens;
// - startup: window construction to the first drawn heatmaps on the demo pair.
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTest>

#include "app/gui/main_window.h"
#include "widgets/heatmap_view.h"

using namespace attn::app;

namespace {
QString demo(const char* name) { return QStringLiteral(ATTN_DEMO_DIR "/") + name; }

QString words(int n) {
  static const char* kWords[] = {"the", "cat", "sat", "on", "a", "mat", "and", "looked"};
  QStringList w;
  for (int i = 0; i < n; ++i) w << kWords[i % 8];
  return w.join(' ');
}
}  // namespace

class BenchGui : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void switchHead_data() {
    QTest::addColumn<int>("tokens");
    QTest::newRow("seq 128") << 128;
    QTest::newRow("seq 512") << 512;
  }

  void switchHead() {
    QFETCH(int, tokens);
    StartOptions o;
    o.teacher = demo("bert-demo");
    o.student = demo("bert-demo-student");
    o.text = words(tokens - 2);  // + [CLS], [SEP]
    MainWindow w(o);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasLoss, 60000);
    QCOMPARE(w.shownComparison()->teacher.forward.seq, tokens);
    int head = 0;
    QBENCHMARK {
      w.selectHead(0, head = (head + 1) % 4);
      w.redrawNow();
      for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
    }
  }

  void startup() {
    QBENCHMARK_ONCE {
      QElapsedTimer t;
      t.start();
      StartOptions o;
      o.teacher = demo("bert-demo");
      o.student = demo("bert-demo-student");
      o.text = "The quick brown fox jumps over the lazy dog.";
      MainWindow w(o);
      w.show();
      QSignalSpy drawn(&w, &MainWindow::drawn);
      QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasStudent, 60000);
      for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
      qInfo("start to first drawn heatmaps: %lld ms", t.elapsed());
    }
  }
};

QTEST_MAIN(BenchGui)
#include "bench_gui.moc"
