// Explorer speed (a benchmark, not a test; not run by ctest):
//   QT_QPA_PLATFORM=offscreen build/release/tests/bench_gui
// - switchHead: one layer/head switch = recompute the three maps and replot them
//   (what happens after the 35 ms throttle), demo pair at 128 and 512 tokens;
// - startup: window construction to the first drawn heatmaps on the demo pair;
// - dragTau: the sparsity panel's τ moved 30 times (one step per redraw) on a
//   BERT-base-sized student at 128 tokens, each step timed until the three maps
//   show its preview; needs ATTN_BENCH_BERT_BASE = a BERT-base directory with a
//   vocab.txt (tests/tools/make_bench_model.py, then copy tests/data/shaped_demo/bert-demo/vocab.txt);
// - workspaceControls: one control change in the compression workspace on a
//   BERT-base-sized teacher and student at 128 tokens, timed from the change to
//   every workspace view redrawn with its result (re-quantize / re-prune, forward
//   pass, fidelity, views), per kind of control; and the longest the GUI thread
//   was busy at a time meanwhile: its longest single event (TimedApplication) or
//   the change's own call, and a 1 ms timer's worst lateness (which also counts
//   time the thread was not running); and replotting every plot per redraw.
//   Needs ATTN_BENCH_BERT_BASE as dragTau.
// - requantizeTensor: what one move of a quantization control costs for one
//   BERT-base FFN matrix (3072×768, 4-bit groups of 128): quantize, error
//   statistics and histograms, then the panel's read-outs and both histograms
//   replotted.
#include <qcustomplot.h>

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTest>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "app/gui/main_window.h"
#include "core/compress/plan.h"
#include "core/quant/model_quant.h"
#include "core/util/memory.h"
#include "widgets/heatmap_view.h"
#include "widgets/histogram_view.h"
#include "widgets/quant_panel.h"
#include "widgets/sparsity_panel.h"
#include "widgets/workspace_view.h"

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

// The GUI thread's work, event by event: how long each top-level event took to
// handle (QApplication::notify), and the longest while `timing`. Unlike a timer's
// lateness this does not count the time the thread was not running — on this
// project's VM a virtual CPU is at times not running for tens of ms (README).
class TimedApplication : public QApplication {
 public:
  using QApplication::QApplication;
  bool notify(QObject* receiver, QEvent* event) override {
    if (depth_ > 0 || !timing) {
      ++depth_;
      const bool r = QApplication::notify(receiver, event);
      --depth_;
      return r;
    }
    const int type = int(event->type());
    const char* cls = receiver != nullptr ? receiver->metaObject()->className() : "nothing";
    ++depth_;
    QElapsedTimer t;
    t.start();
    const bool r = QApplication::notify(receiver, event);
    const qint64 ns = t.nsecsElapsed();
    --depth_;
    if (ns > longestNs) {
      longestNs = ns;
      longestWhat = QString("event %1 to %2").arg(type).arg(cls);
    }
    return r;
  }
  bool timing = false;
  qint64 longestNs = 0;
  QString longestWhat;

 private:
  int depth_ = 0;
};

TimedApplication* timedApp() { return static_cast<TimedApplication*>(qApp); }

class BenchGui : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
  }

  void dragTau() {
    const QString path = qEnvironmentVariable("ATTN_BENCH_BERT_BASE");
    if (path.isEmpty()) QSKIP("set ATTN_BENCH_BERT_BASE (see the comment at the top)");
    StartOptions o;
    o.student = path;
    o.text = words(126);
    MainWindow w(o);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasStudent, 120000);
    auto* panel = w.sparsityPanel();
    panel->setTau(0.003);  // not the panel's default, so a request starts
    QTRY_VERIFY_WITH_TIMEOUT(w.sparseResult() && !w.sparseResult()->preview, 120000);
    QElapsedTimer clock;
    std::vector<double> steps;
    for (int i = 0; i < 30; ++i) {
      const double target = 0.005 * std::pow(1.1, i);  // at least one slider step each time
      QEventLoop loop;
      double tau = 0;
      auto conn = connect(&w.session(), &Session::sparseReady, &loop,
                          [&](std::shared_ptr<const SparseResult> r) {
                            if (r && std::fabs(r->plan.attention.all.tau - tau) < 1e-12)
                              loop.quit();
                          });
      clock.start();
      panel->setTau(target);
      tau = panel->tau();
      QTimer::singleShot(20000, &loop, &QEventLoop::quit);  // never hang a benchmark
      loop.exec();  // the first result for this τ: its preview
      QVERIFY(w.sparseResult() &&
              std::fabs(w.sparseResult()->plan.attention.all.tau - tau) < 1e-12);
      disconnect(conn);
      w.redrawNow();
      for (auto* v : {w.teacherView(), w.studentView(), w.diffView()}) v->replotNow();
      steps.push_back(double(clock.nsecsElapsed()) / 1e6);
    }
    std::sort(steps.begin(), steps.end());
    qInfo("tau drag on BERT-base, seq 128: median %.1f ms per step (%.0f redraws/s), worst %.1f ms",
          steps[steps.size() / 2], 1000.0 / steps[steps.size() / 2], steps.back());
  }

  void workspaceControls() {
    const QString path = qEnvironmentVariable("ATTN_BENCH_BERT_BASE");
    if (path.isEmpty()) QSKIP("set ATTN_BENCH_BERT_BASE (see the comment at the top)");
    StartOptions o;
    o.teacher = path;
    o.student = path;
    o.text = words(126);
    MainWindow w(o);
    w.resize(1700, 1000);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(w.shownComparison() && w.shownComparison()->hasStudent &&
                                 w.shownComparison()->hasTeacher,
                             120000);
    QTRY_COMPARE_WITH_TIMEOUT(int(w.compare()), int(MainWindow::Compare::Workspace), 120000);
    auto current = [&]() -> bool {
      const auto r = w.workspaceResult();
      return r && attn::compress::planJson(r->plan) == attn::compress::planJson(w.workspaceRequest().plan);
    };
    // Lateness of a 1 ms timer: the longest stretch the GUI thread was busy.
    QElapsedTimer probeClock;
    probeClock.start();
    qint64 last = 0, worst = 0;
    bool probing = false;
    QTimer probe;
    probe.setInterval(1);
    connect(&probe, &QTimer::timeout, [&] {
      const qint64 now = probeClock.elapsed();
      if (probing) worst = std::max(worst, now - last - 1);
      last = now;
    });
    probe.start();
    auto plots = w.workspaceView()->findChildren<QCustomPlot*>();
    std::vector<double> redraw, worker;
    // One change: apply, wait for its result, redraw every workspace view now.
    auto measure = [&](const std::function<void()>& change) {
      QElapsedTimer clock;
      clock.start();
      const int mapsBefore = w.workspaceView()->updates().maps;
      probing = true;
      last = probeClock.elapsed();
      // Until the window's own (throttled) redraw has drawn this change's result.
      QEventLoop loop;
      auto conn = connect(&w, &MainWindow::drawn, &loop, [&] {
        if (current() && w.workspaceView()->updates().maps > mapsBefore) loop.quit();
      });
      QTimer::singleShot(60000, &loop, &QEventLoop::quit);  // never hang a benchmark
      timedApp()->longestNs = 0;
      timedApp()->longestWhat = "the change itself";
      QElapsedTimer direct;
      direct.start();
      change();  // called directly, not an event: timed here
      timedApp()->longestNs = direct.nsecsElapsed();
      timedApp()->timing = true;
      loop.exec();
      timedApp()->timing = false;
      disconnect(conn);
      probing = false;
      if (!current()) qFatal("no workspace result");
      QElapsedTimer r;
      r.start();
      for (auto* p : plots) p->replot(QCustomPlot::rpImmediateRefresh);  // the queued replots, now
      redraw.push_back(double(r.nsecsElapsed()) / 1e6);
      worker.push_back(w.workspaceResult()->computeMs);
      return double(clock.nsecsElapsed()) / 1e6;
    };
    attn::compress::CompressionPlan base;
    QVERIFY(attn::quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:8:channel", base.quant).ok());
    base.prune.attention.all.kind = attn::sparse::AttentionRule::Kind::Threshold;
    base.prune.attention.all.tau = 0.01;
    // The first plan right after loading (while the explorer touches its heap ahead).
    const double first = measure([&] { w.applyPlanAsStep(base, "start"); });
    qInfo("first plan after loading (int8 on every Linear, τ): %.0f ms", first);
    QTest::qWait(500);
    struct Kind {
      const char* name;
      std::function<void(int)> change;
      std::vector<double> ms, worker;
      qint64 busy = 0;  // the GUI thread's longest busy stretch meanwhile
      qint64 eventNs = 0;  // its longest single event (or the change itself)
      QString eventWhat = QString();
    };
    std::vector<Kind> kinds;
    kinds.push_back({"weight bits (all 72 matrices re-quantized)", [&](int i) {
                       attn::quant::ModelQuantPlan p = w.quantPanel()->plan();
                       for (auto& t : p.targets)
                         if (t) t->bits = i % 2 ? 7 : 8;
                       w.quantPanel()->setPlan(p);
                     }, {}, {}});
    kinds.push_back({"ffn_in bits (12 matrices re-quantized)", [&](int i) {
                       attn::quant::ModelQuantPlan p = w.quantPanel()->plan();
                       if (!attn::quant::applyPlanText(i % 2 ? "ffn_in=uniform:4:channel" : "ffn_in=uniform:8:channel", p))
                         qFatal("plan");
                       w.quantPanel()->setPlan(p);
                     }, {}, {}});
    kinds.push_back({"one layer's q override (1 matrix re-quantized)", [&](int i) {
                       attn::compress::CompressionPlan p = base;
                       if (i % 2 == 0 && !attn::quant::applyPlanText("layer 5 q=uniform:4:group:64", p.quant))
                         qFatal("plan");
                       w.applyPlanAsStep(p, "override");
                     }, {}, {}});
    kinds.push_back({"attention tau (weights reused)", [&](int i) {
                       w.sparsityPanel()->setTau(i % 2 ? 0.02 : 0.015);  // never the starting 0.01
                     }, {}, {}});
    kinds.push_back({"2:4 on ffn_in on/off (prune + re-quantize)", [&](int i) {
                       attn::compress::CompressionPlan p = base;
                       if (i % 2 == 0) {
                         attn::sparse::PruneSpec nm;
                         nm.method = attn::sparse::PruneMethod::NM;
                         p.prune.targets[int(attn::Target::FfnIn)] = nm;
                       }
                       w.applyPlanAsStep(p, "2:4");
                     }, {}, {}});
    for (auto& k : kinds)
      for (int i = 0; i < 8; ++i) {
        worst = 0;
        k.ms.push_back(measure([&] { k.change(i); }));
        k.worker.push_back(worker.back());
        k.busy = std::max(k.busy, worst);
        if (timedApp()->longestNs > k.eventNs) {
          k.eventNs = timedApp()->longestNs;
          k.eventWhat = timedApp()->longestWhat;
        }
        QTest::qWait(300);  // apart, so no two changes merge or queue
      }
    for (auto& k : kinds) {
      std::sort(k.ms.begin(), k.ms.end());
      std::sort(k.worker.begin(), k.worker.end());
      qInfo("%s: median %.0f ms, worst %.0f ms (change to the window's redraw of its result, plus "
            "every plot replotted; worker median %.0f ms); "
            "GUI thread: longest event %.1f ms (%s), a 1 ms timer late by at most %lld ms",
            k.name, k.ms[k.ms.size() / 2], k.ms.back(), k.worker[k.worker.size() / 2],
            double(k.eventNs) / 1e6, qPrintable(k.eventWhat), k.busy);
    }
    std::sort(redraw.begin(), redraw.end());
    qInfo("replotting every workspace plot at once after the redraw: median %.1f ms, worst %.1f ms",
          redraw[redraw.size() / 2], redraw.back());
  }

  void requantizeTensor() {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    std::vector<float> w(3072 * 768);
    for (auto& x : w) x = d(rng);
    attn::ThreadPool pool(2);
    attn::quant::Spec spec;
    spec.bits = 4;
    spec.granularity = attn::quant::Granularity::Group;
    spec.groupSize = 128;
    attn::widgets::QuantPanel panel;
    panel.resize(420, 900);
    panel.show();
    QBENCHMARK {
      auto q = attn::quant::quantize(w.data(), 3072, 768, spec, &pool);
      attn::quant::TensorReport r{"encoder.layer.0.intermediate.dense.weight",
                                  attn::quant::Target::FfnIn, 0, spec,
                                  attn::quant::errorStats(w.data(), *q, 64, &pool)};
      panel.setResult({std::move(r)}, 4 * int64_t(w.size()), q->storageBytes(), nullptr);
      panel.weightHistogram()->plot()->replot(QCustomPlot::rpImmediateRefresh);
      panel.errorHistogram()->plot()->replot(QCustomPlot::rpImmediateRefresh);
    }
  }

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

// keepFreedMemoryForReuse first, before any thread, as the app's main() does.
int main(int argc, char** argv) {
  attn::keepFreedMemoryForReuse();
  TimedApplication app(argc, argv);
  app.setAttribute(Qt::AA_Use96Dpi, true);  // as QTEST_MAIN
  BenchGui tc;
  QTEST_SET_MAIN_SOURCE_PATH
  return QTest::qExec(&tc, argc, argv);
}
#include "bench_gui.moc"
