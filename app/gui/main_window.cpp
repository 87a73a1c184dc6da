#include "app/gui/main_window.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QFormLayout>
#include <QDialogButtonBox>
#include <QDialog>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QProgressDialog>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSettings>
#include <QDateTime>
#include <QUndoCommand>
#include <QUndoStack>
#include <QSpinBox>
#include <QStackedWidget>
#include <QThreadPool>
#include <QStatusBar>
#include <QTabWidget>
#include <QTextStream>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>

#include "core/attention/align.h"
#include "core/attention/compare.h"
#include "widgets/bar_chart_view.h"
#include "widgets/head_grid_view.h"
#include "widgets/heatmap_view.h"
#include "widgets/report_pdf.h"
#include "widgets/distill_panel.h"
#include "widgets/layer_map_view.h"
#include "widgets/loss_curves_view.h"
#include "widgets/quant_panel.h"
#include "widgets/sparsity_panel.h"
#include "widgets/token_strip_view.h"
#include "widgets/corpus_fidelity_panel.h"
#include "widgets/tradeoff_panel.h"
#include "widgets/workspace_view.h"

namespace attn::app {

namespace {
constexpr int kRedrawIntervalMs = 35;  // throttle: one redraw per interval, latest data
constexpr int kTextDebounceMs = 250;

QString sideName(Side s) { return s == Teacher ? QObject::tr("Teacher") : QObject::tr("Student"); }

QString humanBytes(double b) {
  if (b >= 1e9) return QString::number(b / 1e9, 'f', 2) + " GB";
  if (b >= 1e6) return QString::number(b / 1e6, 'f', 1) + " MB";
  return QString::number(b / 1e3, 'f', 1) + " kB";
}

// [S, S] map of one layer: one head, or the mean over heads.
std::vector<float> layerMap(const ForwardResult& r, int layer, int head, bool average) {
  const size_t n = size_t(r.seq) * r.seq;
  if (average) return headAverage(r.attentionMap(layer, 0), r.heads, r.seq);
  const float* p = r.attentionMap(layer, std::clamp(head, 0, r.heads - 1));
  return std::vector<float>(p, p + n);
}
}  // namespace

MainWindow::MainWindow(const StartOptions& options, QWidget* parent)
    : QMainWindow(parent), session_(std::make_unique<Session>()), options_(options) {
  buildUi();
  redrawTimer_.setSingleShot(true);
  redrawTimer_.setInterval(kRedrawIntervalMs);
  connect(&redrawTimer_, &QTimer::timeout, this, &MainWindow::redraw);
  textTimer_.setSingleShot(true);
  textTimer_.setInterval(kTextDebounceMs);
  connect(&textTimer_, &QTimer::timeout, this, [this] { session_->setText(textEdit_->text()); });

  connect(session_.get(), &Session::loadStarted, this, [this](int side, QString path) {
    statusBar()->showMessage(tr("Loading %1: %2").arg(sideName(Side(side)), path));
    ++loadsPending_;
    busy_->setValue(0);
    updateBusy();
  });
  connect(session_.get(), &Session::loadProgress, this, [this](int, double f) {
    if (loadsPending_ > 0) busy_->setValue(int(f * 100));
  });
  connect(session_.get(), &Session::modelLoaded, this, [this](int side, QString path) {
    --loadsPending_;
    updateBusy();
    updateModelPanel(Side(side));
    updateDistillModels();
    if (options_.workspaceByDefault && !compareChosen_ && session_->model(Teacher) &&
        session_->model(Student) && compare() == Compare::TeacherStudent)
      setCompare(Compare::Workspace);
    else if (compare() == Compare::Workspace)
      sendWorkspacePlan(state_);
    rememberModel(path);
    statusBar()->showMessage(tr("%1 loaded: %2").arg(sideName(Side(side)), path), 5000);
  });
  connect(
      session_.get(), &Session::loadFailed, this, [this](int side, QString path, QString message) {
        --loadsPending_;
        updateBusy();
        if (message == QLatin1String("cancelled")) {
          statusBar()->showMessage(tr("Loading %1 cancelled; the %2 shown is unchanged")
                                       .arg(path, sideName(Side(side)).toLower()),
                                   8000);
          return;
        }
        statusBar()->showMessage(tr("Could not load %1").arg(path), 8000);
        if (!options_.screenshot.isEmpty()) {
          qCritical("%s", qPrintable(message));
          QApplication::exit(1);
          return;
        }
        QMessageBox::warning(this, tr("Could not load the %1").arg(sideName(Side(side))), message);
      });
  connect(session_.get(), &Session::comparisonReady, this,
          [this](std::shared_ptr<const Comparison> c) {
            latest_ = std::move(c);
            if (distillPanel_ && latest_ && latest_->hasLoss) distillPanel_->setLossMatrix(latest_->loss.kl);
            if (compare() == Compare::Workspace && latest_ && (!ws_ || ws_->text != latest_->text))
              sendWorkspacePlan(state_);
            scheduleRedraw();
          });
  connect(session_.get(), &Session::comparisonFailed, this,
          [this](QString message) { statusBar()->showMessage(message, 8000); });
  connect(session_.get(), &Session::busyChanged, this, [this](bool b) {
    sessionBusy_ = b;
    updateBusy();
  });

  textEdit_->setText(options.text);
  session_->setText(options.text);
  if (!options.corpus.isEmpty()) distillPanel_->setCorpus(options.corpus);
  if (!options.teacher.isEmpty()) session_->loadModel(Teacher, options.teacher);
  if (!options.student.isEmpty()) session_->loadModel(Student, options.student);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildUi() {
  setWindowTitle(tr("Attention Studio"));
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  textEdit_ = new QLineEdit(central);
  textEdit_->setPlaceholderText(tr("Type a sentence to compare the two models' attention…"));
  textEdit_->setClearButtonEnabled(true);
  connect(textEdit_, &QLineEdit::textEdited, this, [this] { textTimer_.start(); });
  connect(textEdit_, &QLineEdit::returnPressed, this, [this] {
    textTimer_.stop();
    session_->setText(textEdit_->text());
  });
  examples_ = new QComboBox(central);
  examples_->setToolTip(tr("Examples from the corpus file (File ▸ Open corpus)"));
  examples_->setMinimumWidth(260);
  examples_->setMaximumWidth(420);
  examples_->setVisible(false);
  connect(examples_, &QComboBox::activated, this, &MainWindow::chooseExample);
  auto* textRow = new QHBoxLayout();
  textRow->addWidget(textEdit_, 1);
  textRow->addWidget(examples_);
  layout->addLayout(textRow);
  // One line of tokens that scrolls sideways, so long inputs do not push the maps down.
  tokenStrip_ = new widgets::TokenStripView(central);
  tokenStrip_->setMessage(tr("Tokens appear here once a model has read the text"));
  tokenStrip_->setToolTip(tr("Click a token to outline its row and column in the maps"));
  auto* strip = new QScrollArea(central);
  strip->setWidget(tokenStrip_);
  strip->setWidgetResizable(true);
  strip->setFrameShape(QFrame::NoFrame);
  strip->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  strip->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Fixed);
  layout->addWidget(strip);
  connect(tokenStrip_, &widgets::TokenStripView::tokenClicked, this, [this](int row, int index) {
    const bool same = row == tokenStrip_->focusRow() && index == tokenStrip_->focusIndex();
    focusToken(same ? -1 : row, same ? -1 : index);  // a second click clears
  });

  stack_ = new QStackedWidget(central);
  auto* mapsPage = new QWidget(stack_);
  auto* maps = new QHBoxLayout(mapsPage);
  maps->setContentsMargins(0, 0, 0, 0);
  for (int i = 0; i < 3; ++i) {
    views_[i] = new widgets::HeatmapView(mapsPage);
    maps->addWidget(views_[i], 1);
  }
  views_[2]->setScale(widgets::HeatmapView::Scale::Diverging);
  stack_->addWidget(mapsPage);
  workspace_ = new widgets::WorkspaceView(stack_);
  workspace_->setObjectName("workspace");
  stack_->addWidget(workspace_);
  connect(workspace_, &widgets::WorkspaceView::tensorChanged, this, &MainWindow::scheduleRedraw);
  connect(workspace_, &widgets::WorkspaceView::diffAgainstChanged, this, &MainWindow::scheduleRedraw);
  layout->addWidget(stack_, 1);
  setCentralWidget(central);
  // Linked cursors and linked zoom/pan across the three maps.
  for (auto* v : views_) {
    connect(v, &widgets::HeatmapView::cellHovered, this, [this](int r, int c) {
      for (auto* w : views_) w->setHighlight(r, c);
    });
    connect(v, &widgets::HeatmapView::windowChanged, this,
            [this, v](double x0, double x1, double y0, double y1) {
              for (auto* w : views_)
                if (w != v) w->setVisibleWindow(x0, x1, y0, y1);
            });
  }

  auto* tools = addToolBar(tr("Selection"));
  tools->setObjectName("selection");
  auto* openT = tools->addAction(tr("Open teacher…"), this, [this] { openModel(Teacher); });
  auto* openS = tools->addAction(tr("Open student…"), this, [this] { openModel(Student); });
  tools->addSeparator();
  compare_ = new QComboBox(tools);
  compare_->addItems({tr("Teacher vs student"), tr("Student vs quantized student"),
                      tr("Student vs sparsified student"), tr("Compression workspace")});
  connect(compare_, &QComboBox::activated, this, [this] { compareChosen_ = true; });
  compare_->setToolTip(tr("What the three maps compare"));
  tools->addWidget(compare_);
  connect(compare_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i == int(Compare::Quantized) && !quantSent_) {
      quantSent_ = true;
      session_->setQuantPlan(quantPanel_->plan());
    }
    if (i == int(Compare::Sparsified) && !sparseSent_) sendSparsityPlan();
    stack_->setCurrentIndex(i == int(Compare::Workspace) ? 1 : 0);
    if (i == int(Compare::Workspace) && !wsSent_) sendWorkspacePlan(state_);
    scheduleRedraw();
  });
  tools->addSeparator();
  tools->addWidget(new QLabel(tr(" Student layer "), tools));
  layerSpin_ = new QSpinBox(tools);
  tools->addWidget(layerSpin_);
  tools->addWidget(new QLabel(tr(" Head "), tools));
  headSpin_ = new QSpinBox(tools);
  tools->addWidget(headSpin_);
  // Only when the two models have different head counts: the teacher head of the pair.
  teacherHeadAction_[0] = tools->addWidget(new QLabel(tr(" Teacher head "), tools));
  teacherHeadSpin_ = new QSpinBox(tools);
  teacherHeadSpin_->setToolTip(
      tr("The models have different head counts: the teacher head compared with the student "
         "head (or tick Average heads)"));
  teacherHeadAction_[1] = tools->addWidget(teacherHeadSpin_);
  for (auto* a : teacherHeadAction_) a->setVisible(false);
  connect(teacherHeadSpin_, &QSpinBox::valueChanged, this, &MainWindow::scheduleRedraw);
  headAverage_ = new QCheckBox(tr("Average heads"), tools);
  logScale_ = new QCheckBox(tr("Log scale"), tools);
  sharedRange_ = new QCheckBox(tr("Shared colour range"), tools);
  sharedRange_->setChecked(true);
  for (auto* w : {headAverage_, logScale_, sharedRange_}) {
    tools->addWidget(w);
    connect(w, &QCheckBox::toggled, this, &MainWindow::scheduleRedraw);
  }
  connect(layerSpin_, &QSpinBox::valueChanged, this, &MainWindow::scheduleRedraw);
  connect(headSpin_, &QSpinBox::valueChanged, this, &MainWindow::scheduleRedraw);

  auto* file = menuBar()->addMenu(tr("&File"));
  openT->setShortcut(QKeySequence(tr("Ctrl+T")));
  openS->setShortcut(QKeySequence(tr("Ctrl+O")));
  file->addAction(openT);
  file->addAction(openS);
  recentMenus_[Teacher] = file->addMenu(tr("Recent as &teacher"));
  recentMenus_[Student] = file->addMenu(tr("Recent as &student"));
  file->addSeparator();
  file->addAction(tr("Open &corpus…"), this, [this] {
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Open corpus"), QString(),
        tr("Corpus (*.txt *.tsv *.csv *.jsonl);;Text, one example per line (*.txt);;"
           "Tab-separated (*.tsv);;CSV (*.csv);;JSON lines (*.jsonl)"));
    if (path.isEmpty()) return;
    auto cols = session_->corpusColumns(path);
    if (!cols)
      return (void)QMessageBox::warning(this, tr("Cannot open corpus"),
                                        QString::fromStdString(cols.message()));
    QString column;
    if (!cols->empty()) {
      QStringList names;
      for (const auto& c : *cols) names << QString::fromStdString(c);
      int guess = 0;
      for (const char* likely : {"sentence", "text"})
        if (names.contains(likely)) guess = int(names.indexOf(likely));
      bool ok = false;
      column = QInputDialog::getItem(this, tr("Corpus column"), tr("Column with the text:"), names,
                                     guess, false, &ok);
      if (!ok) return;
    }
    QString error;
    if (!openCorpus(path, column, &error))
      QMessageBox::warning(this, tr("Cannot open corpus"), error);
  });
  file->addAction(tr("&Export shown maps…"), this, [this] {
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export maps"), QString(), tr("NumPy array (*.npy);;CSV, long format (*.csv)"));
    QString error;
    if (!path.isEmpty() && !exportMaps(path, &error))
      QMessageBox::warning(this, tr("Export failed"), error);
  });
  file->addSeparator();
  file->addAction(tr("E&xport compressed student…"), this, [this] { runExportDialog(); });
  file->addAction(tr("Open compression p&lan…"), this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open a compression plan"),
                                                      QString(), tr("Plan (*.json)"));
    QString error;
    if (!path.isEmpty() && !openPlan(path, &error))
      QMessageBox::warning(this, tr("Cannot open the plan"), error);
  });
  file->addAction(tr("Save compression &plan…"), this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save the compression plan"),
                                                      QString(), tr("Plan (*.json)"));
    if (path.isEmpty()) return;
    if (Status st = compress::savePlan(path.toStdString(), compressionPlan()); !st)
      QMessageBox::warning(this, tr("Not saved"), QString::fromStdString(st.message()));
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  undo_ = new QUndoStack(this);
  auto* edit = menuBar()->addMenu(tr("&Edit"));
  QAction* undoAction = undo_->createUndoAction(this, tr("&Undo"));
  undoAction->setShortcut(QKeySequence::Undo);
  QAction* redoAction = undo_->createRedoAction(this, tr("&Redo"));
  redoAction->setShortcut(QKeySequence::Redo);
  edit->addAction(undoAction);
  edit->addAction(redoAction);
  presetMenu_ = menuBar()->addMenu(tr("&Presets"));
  rebuildPresetMenu();

  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About Attention Studio"), this, [this] {
    QMessageBox::about(
        this, tr("About Attention Studio"),
        tr("<h3>Attention Studio %1</h3><p>Compare the attention of a teacher and a student "
           "Transformer and compress the student: distillation, quantization, "
           "sparsification.</p><p>The embedded demo pair (resources/demo) was <b>trained by this "
           "program</b>: a 4-layer GPT-2 style teacher learned English from the fortunes of "
           "Debian's <i>fortunes</i> package with its own byte-level BPE tokenizer, and a "
           "2-layer student was distilled from it (attention KL, value relation and logits). "
           "<tt>resources/demo/reproduce.sh</tt> rebuilds both from nothing.</p>")
            .arg(QApplication::applicationVersion()));
  });

  auto* dock = new QDockWidget(tr("Models"), this);
  dock->setObjectName("models");
  auto* panel = new QWidget(dock);
  auto* pl = new QVBoxLayout(panel);
  for (int s = 0; s < 2; ++s) {
    modelInfo_[s] = new QLabel(panel);
    modelInfo_[s]->setTextFormat(Qt::RichText);
    modelInfo_[s]->setWordWrap(true);
    modelInfo_[s]->setMinimumWidth(200);
    pl->addWidget(modelInfo_[s]);
    updateModelPanel(Side(s));
  }
  pl->addStretch(1);
  dock->setWidget(panel);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  // Layers × heads overview per model.
  auto* headsDock = new QDockWidget(tr("Heads"), this);
  headsDock->setObjectName("heads");
  auto* headsPanel = new QWidget(headsDock);
  auto* hl = new QVBoxLayout(headsPanel);
  hl->setContentsMargins(0, 0, 0, 0);
  gridStat_ = new QComboBox(headsPanel);
  gridStat_->addItems({tr("Entropy (nats)"), tr("Mean attention distance (tokens)"),
                       tr("Loss vs mapped teacher head")});
  gridStat_->setItemData(2, tr("KL or MSE, as chosen in the Distillation loss panel"),
                         Qt::ToolTipRole);
  connect(gridStat_, &QComboBox::currentIndexChanged, this, &MainWindow::scheduleRedraw);
  hl->addWidget(gridStat_);
  auto* tabs = new QTabWidget(headsPanel);
  hl->addWidget(tabs, 1);
  for (int sIdx = 0; sIdx < 2; ++sIdx) {
    auto* scroll = new QScrollArea(tabs);  // deep models scroll instead of being clipped
    grids_[sIdx] = new widgets::HeadGridView(scroll);
    scroll->setWidget(grids_[sIdx]);
    scroll->setWidgetResizable(true);
    tabs->addTab(scroll, sideName(Side(sIdx)));
  }
  connect(grids_[Student], &widgets::HeadGridView::headSelected, this,
          [this](int l, int h) { selectHead(l, h); });
  connect(grids_[Teacher], &widgets::HeadGridView::headSelected, this, [this](int l, int h) {
    // Show the first student layer mapped to this teacher layer, if any. With
    // different head counts the teacher head is chosen on its own.
    const bool differ = teacherHeadAction_[1]->isVisible();
    if (differ) setTeacherHead(h);
    const int studentHead = differ ? headSpin_->value() : h;
    for (size_t j = 0; j < mapping_.size(); ++j)
      if (mapping_[j] == l) return selectHead(int(j), studentHead);
    if (!differ) headSpin_->setValue(h);
  });
  headsDock->setWidget(headsPanel);
  addDockWidget(Qt::LeftDockWidgetArea, headsDock);

  // Loss between every (teacher layer, student layer) pair; the mapping is outlined.
  auto* lossDock = new QDockWidget(tr("Distillation loss"), this);
  lossDock->setObjectName("loss");
  auto* lossPanel = new QWidget(lossDock);
  auto* ll = new QVBoxLayout(lossPanel);
  auto* row = new QHBoxLayout();
  lossKind_ = new QComboBox(lossPanel);
  lossKind_->addItems({tr("KL(teacher ‖ student)"), tr("MSE")});
  auto* best = new QPushButton(tr("Best mapping"), lossPanel);
  best->setToolTip(tr("Monotone mapping with the smallest total loss (dynamic programming)"));
  auto* uniform = new QPushButton(tr("Uniform"), lossPanel);
  row->addWidget(lossKind_, 1);
  row->addWidget(best);
  row->addWidget(uniform);
  ll->addLayout(row);
  lossView_ = new widgets::HeatmapView(lossPanel);
  lossView_->setShowValues(true);
  lossView_->setAxisLabels(tr("student layer"), tr("teacher layer"));
  lossView_->setMinimumSize(340, 240);
  ll->addWidget(lossView_, 1);
  layerLoss_ = new widgets::BarChartView(lossPanel);
  ll->addWidget(layerLoss_);
  lossDock->setWidget(lossPanel);
  addDockWidget(Qt::LeftDockWidgetArea, lossDock);
  connect(lossKind_, &QComboBox::currentIndexChanged, this, &MainWindow::scheduleRedraw);
  connect(lossView_, &widgets::HeatmapView::cellClicked, this, [this](int t, int s) {
    if (s < int(mapping_.size())) {
      mapping_[s] = t;
      if (distillPanel_) distillPanel_->mapView()->setMapping(mapping_);
      scheduleRedraw();
    }
  });
  connect(best, &QPushButton::clicked, this, [this] {
    const auto c = shown_;
    if (!c || !c->hasLoss) return;
    const auto& m = c->loss;
    mapping_ = bestMonotoneMap(lossKind_->currentIndex() == 0 ? m.kl : m.mse, m.teacherLayers,
                               m.studentLayers);
    if (distillPanel_) distillPanel_->mapView()->setMapping(mapping_);
    scheduleRedraw();
  });
  connect(uniform, &QPushButton::clicked, this, [this] {
    mappedFor_[0] = mappedFor_[1] = -1;  // rebuilt as uniform on the next redraw
    scheduleRedraw();
  });

  buildQuantDock();
  buildSparseDock();
  buildDistillDock();
  buildAnalysisDocks();
  setAcceptDrops(true);
  rebuildRecentMenus();
  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
  logScale_->setChecked(settings.value("view/logScale", false).toBool());
  headAverage_->setChecked(settings.value("view/headAverage", false).toBool());

  busy_ = new QProgressBar(this);
  busy_->setRange(0, 0);
  busy_->setMaximumWidth(160);
  busy_->setVisible(false);
  statusBar()->addPermanentWidget(busy_);
  cancelButton_ = new QToolButton(this);
  cancelButton_->setObjectName("cancelLoad");
  cancelButton_->setText(tr("Cancel"));
  cancelButton_->setToolTip(tr("Stop loading; the models shown stay"));
  cancelButton_->setVisible(false);
  connect(cancelButton_, &QToolButton::clicked, session_.get(), &Session::cancelLoads);
  statusBar()->addPermanentWidget(cancelButton_);
  resize(1600, 900);
}

// A tuning panel in a scrolling right-hand dock, as wide as its controls need.
QDockWidget* MainWindow::addPanelDock(const QString& title, const QString& name, QWidget* panel) {
  auto* dock = new QDockWidget(title, this);
  dock->setObjectName(name);
  auto* scroll = new QScrollArea(dock);
  scroll->setWidget(panel);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setMinimumWidth(panel->minimumSizeHint().width() + 24);
  dock->setWidget(scroll);
  addDockWidget(Qt::RightDockWidgetArea, dock);
  return dock;
}

void MainWindow::buildQuantDock() {
  quantPanel_ = new widgets::QuantPanel(this);
  addPanelDock(tr("Quantization"), "quantization", quantPanel_);
  connect(quantPanel_, &widgets::QuantPanel::planChanged, this, [this] {
    quantSent_ = true;
    if (compare() == Compare::Workspace) {  // one compressed student for both panels
      if (applyingState_) return;          // restorePanelState sends the whole state
      recordPanelChange(0);
      sendWorkspacePlan(state_);
      return;
    }
    quantPanel_->setStatus(tr("quantizing…"));
    session_->setQuantPlan(quantPanel_->plan());
    if (!applyingState_) {
      if (compare() != Compare::Quantized) setCompare(Compare::Quantized);
      recordPanelChange(0);
    }
  });
  connect(quantPanel_, &widgets::QuantPanel::tensorSelected, this, [this](int i) {
    if (compare() == Compare::Workspace && ws_ && i >= 0 && i < int(ws_->reports.size()) &&
        ws_->reports[size_t(i)].stats.errors.counts.empty())
      sendWorkspacePlan(state_);  // the same plan: only that tensor's histograms are computed
  });
  connect(quantPanel_, &widgets::QuantPanel::sensitivityRequested, this, [this](int by) {
    quantPanel_->setStatus(tr("sensitivity scan…"));
    session_->runSensitivity(by);
  });
  connect(session_.get(), &Session::quantReady, this, [this](std::shared_ptr<const QuantResult> r) {
    quant_ = std::move(r);
    quantPanel_->setStatus(QString());
    if (quant_)
      quantPanel_->setResult(quant_->tensors, quant_->bytesBefore, quant_->bytesAfter,
                             quant_->hasForward ? &quant_->fidelity : nullptr);
    else
      quantPanel_->setResult({}, 0, 0, nullptr);
    scheduleRedraw();
  });
  connect(session_.get(), &Session::quantFailed, this,
          [this](QString message) { quantPanel_->setStatus(message); });
  connect(session_.get(), &Session::sensitivityProgress, this, [this](int done, int total) {
    quantPanel_->setStatus(tr("sensitivity scan: %1 of %2").arg(done).arg(total));
  });
  connect(session_.get(), &Session::sensitivityReady, this,
          [this](std::vector<quant::Sensitivity> entries) {
            quantPanel_->setStatus(QString());
            quantPanel_->setSensitivity(entries);
          });
  connect(session_.get(), &Session::sensitivityFailed, this,
          [this](QString message) { quantPanel_->setStatus(message); });
}

void MainWindow::buildDistillDock() {
  distillPanel_ = new widgets::DistillPanel(this);
  QDockWidget* dock = addPanelDock(tr("Distillation"), "distillation", distillPanel_);
  if (auto* sparse = findChild<QDockWidget*>("sparsity")) tabifyDockWidget(sparse, dock);
  widgets::DistillPanel* p = distillPanel_;
  connect(p, &widgets::DistillPanel::corpusChosen, this, [this, p](const QString& path) {
    auto cols = session_->corpusColumns(path);
    QStringList names;
    if (cols)
      for (const auto& c : *cols) names << QString::fromStdString(c);
    p->setColumns(names);
  });
  connect(p, &widgets::DistillPanel::mappingEdited, this,
          [this](const std::vector<int>& m) {
            for (size_t s = 0; s < m.size() && s < mapping_.size(); ++s)
              if (m[s] >= 0) mapping_[s] = m[s];  // the loss views show mapped pairs
            scheduleRedraw();
          });
  connect(p, &widgets::DistillPanel::startRequested, this, [this, p] {
    if (p->corpus().isEmpty()) {
      p->runFinished(false, tr("choose a corpus file first"));
      return;
    }
    TrainRequest r;
    r.options = p->options();
    r.corpus = p->corpus();
    r.column = p->column();
    r.refreshEvery = p->refreshEvery();
    p->setStatus(tr("reading the corpus…"));
    session_->startTraining(r);
  });
  connect(p, &widgets::DistillPanel::pauseRequested, session_.get(), &Session::pauseTraining);
  connect(p, &widgets::DistillPanel::resumeRequested, session_.get(), &Session::resumeTraining);
  connect(p, &widgets::DistillPanel::cancelRequested, session_.get(), &Session::cancelTraining);
  connect(p, &widgets::DistillPanel::saveRequested, session_.get(), &Session::saveTrainedStudent);
  connect(session_.get(), &Session::trainingStarted, p, &widgets::DistillPanel::runStarted);
  connect(session_.get(), &Session::trainingStep, p, &widgets::DistillPanel::addStep);
  connect(session_.get(), &Session::trainingPaused, p, &widgets::DistillPanel::setPaused);
  connect(session_.get(), &Session::trainingFinished, p, &widgets::DistillPanel::runFinished);
  connect(session_.get(), &Session::studentRefreshed, this, [this](int step) {
    statusBar()->showMessage(tr("Student maps: trained weights at step %1").arg(step), 3000);
  });
  connect(session_.get(), &Session::trainedStudentSaved, this, [this, p](QString dir) {
    p->setStatus(tr("student saved to %1").arg(dir));
    rememberModel(dir);
  });
  connect(session_.get(), &Session::trainedStudentSaveFailed, p,
          [p](QString message) { p->setStatus(tr("not saved: %1").arg(message)); });
}

compress::CompressionPlan MainWindow::compressionPlan() const {
  compress::CompressionPlan p;
  if (compare() == Compare::Workspace && wsSent_) {
    p = wsRequest_.plan;
    // Heads ranked by importance: as the last result for this request chose them.
    if (p.prune.heads.empty() && wsRequest_.headsToPrune > 0 && ws_) p.prune.heads = ws_->plan.prune.heads;
    const QString student = session_->modelPath(Student);
    p.student = (student.isEmpty() ? session_->modelPath(Teacher) : student).toStdString();
    return p;
  }
  if (quantSent_ && quantPanel_) p.quant = quantPanel_->plan();
  if (sparse_) p.prune = sparse_->plan;  // heads as the importance ranking chose them
  else if (sparseSent_ && sparsityPanel_) p.prune = sparsityPanel_->plan();
  const QString student = session_->modelPath(Student);
  p.student = (student.isEmpty() ? session_->modelPath(Teacher) : student).toStdString();
  return p;
}

bool MainWindow::openPlan(const QString& path, QString* error) {
  auto plan = compress::loadPlan(path.toStdString());
  if (!plan) {
    *error = QString::fromStdString(plan.message());
    return false;
  }
  applyPlanAsStep(*plan, tr("Open plan %1").arg(QFileInfo(path).fileName()));
  statusBar()->showMessage(tr("Plan %1 opened").arg(QFileInfo(path).fileName()), 6000);
  return true;
}

// ---------------------------------------------------------------- undo / redo, presets

namespace {
// A change of the compression settings. The panels already show `after` when a
// user edit is recorded, so the first redo does nothing; consecutive edits of the
// same panel within kMergeMs (a slider drag, typing) are one step.
class PanelCommand : public QUndoCommand {
 public:
  static constexpr qint64 kMergeMs = 800;
  PanelCommand(MainWindow* w, MainWindow::PanelState before, MainWindow::PanelState after,
               int panel, bool applied, const QString& text)
      : QUndoCommand(text), w_(w), before_(std::move(before)), after_(std::move(after)),
        panel_(panel), skip_(applied), at_(QDateTime::currentMSecsSinceEpoch()) {}
  void undo() override { w_->restorePanelState(before_); }
  void redo() override {
    if (skip_) {
      skip_ = false;
      return;
    }
    w_->restorePanelState(after_);
  }
  int id() const override { return 1; }
  bool mergeWith(const QUndoCommand* other) override {
    const auto* o = static_cast<const PanelCommand*>(other);
    if (panel_ < 0 || o->panel_ != panel_ || o->at_ - at_ > kMergeMs) return false;
    after_ = o->after_;
    at_ = o->at_;
    return true;
  }

 private:
  MainWindow* w_;
  MainWindow::PanelState before_, after_;
  int panel_;  // -1: a whole plan (open, preset): never merged
  bool skip_;
  qint64 at_;
};

std::string stateKey(const MainWindow::PanelState& s) {
  compress::CompressionPlan p;
  p.quant = s.quant;
  p.prune = s.prune;
  return compress::planJson(p) + "|" + std::to_string(s.headsToPrune) + "|" +
         std::to_string(int(s.importance));
}

MainWindow::PanelState stateOf(const compress::CompressionPlan& plan) {
  MainWindow::PanelState s;
  s.quant = plan.quant;
  s.prune = plan.prune;
  s.headsToPrune = int(plan.prune.heads.size());
  return s;
}
}  // namespace

MainWindow::PanelState MainWindow::panelState() const { return state_; }

void MainWindow::restorePanelState(const PanelState& s) {
  applyingState_ = true;
  if (compare() == Compare::Workspace) {
    const bool exact = sparsityPanel_->setPlan(s.prune);
    if (s.prune.heads.empty()) sparsityPanel_->setHeads(s.headsToPrune, s.importance);
    quantPanel_->setPlan(s.quant);
    quantSent_ = sparseSent_ = true;
    state_ = s;
    applyingState_ = false;
    sendWorkspacePlan(s);
    if (!exact)
      workspace_->setStatus(tr("computing… (the plan has settings the Sparsity controls cannot "
                               "show; it is applied as written)"));
    return;
  }
  const bool exact = sparsityPanel_->setPlan(s.prune);
  if (s.prune.heads.empty()) sparsityPanel_->setHeads(s.headsToPrune, s.importance);
  quantPanel_->setPlan(s.quant);  // the panel asks for the quantized student itself
  sparseSent_ = true;
  sparsityPanel_->setStatus(exact ? tr("sparsifying…")
                                  : tr("sparsifying… (the plan has settings the controls cannot "
                                       "show; it is applied as written)"));
  session_->setSparsityPlan(s.prune, s.prune.heads.empty() ? s.headsToPrune : 0, s.importance);
  const bool sparsifies = s.prune.prunesWeights() || s.prune.attention.active() ||
                          !s.prune.heads.empty() || s.headsToPrune > 0;
  setCompare(sparsifies && !s.quant.quantizesWeights() ? Compare::Sparsified : Compare::Quantized);
  state_ = s;
  applyingState_ = false;
}

void MainWindow::recordPanelChange(int panel) {
  if (applyingState_) return;
  PanelState after = state_;
  if (panel == 0) {
    after.quant = quantPanel_->plan();
  } else {
    after.prune = sparsityPanel_->plan();
    after.headsToPrune = sparsityPanel_->headsToPrune();
    after.importance = sparsityPanel_->importance();
  }
  if (stateKey(after) == stateKey(state_)) return;
  undo_->push(new PanelCommand(this, state_, after, panel, true,
                               panel == 0 ? tr("Quantization change") : tr("Sparsity change")));
  state_ = after;
}

void MainWindow::applyPlanAsStep(const compress::CompressionPlan& plan, const QString& what) {
  undo_->push(new PanelCommand(this, state_, stateOf(plan), -1, false, what));
}

std::vector<std::pair<QString, compress::CompressionPlan>> MainWindow::presets() const {
  std::vector<std::pair<QString, compress::CompressionPlan>> out;
  auto add = [&](const QString& name, const char* weights, auto&& more) {
    compress::CompressionPlan p;
    if (*weights) (void)quant::applyPlanText(weights, p.quant);
    more(p);
    out.emplace_back(name, std::move(p));
  };
  add(tr("No compression"), "", [](compress::CompressionPlan&) {});
  add(tr("int8 per-channel"), "q,k,v,o,ffn_in,ffn_out=uniform:8:channel",
      [](compress::CompressionPlan&) {});
  add(tr("4-bit group-64 + 2:4"), "q,k,v,o,ffn_in,ffn_out=uniform:4:group:64",
      [](compress::CompressionPlan& p) {
        sparse::PruneSpec nm;
        nm.method = sparse::PruneMethod::NM;
        for (Target t : {Target::Q, Target::K, Target::V, Target::O, Target::FfnIn, Target::FfnOut})
          p.prune.targets[size_t(t)] = nm;
      });
  add(tr("τ = 0.01 attention"), "", [](compress::CompressionPlan& p) {
    p.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
    p.prune.attention.all.tau = 0.01;
  });
  QSettings settings;
  settings.beginGroup("presets");
  for (const QString& key : settings.childKeys()) {
    auto p = compress::parsePlanJson(settings.value(key).toString().toStdString(), key.toStdString());
    if (p) out.emplace_back(key, std::move(*p));  // a damaged entry is skipped
  }
  return out;
}

bool MainWindow::applyPreset(const QString& name) {
  for (const auto& [n, plan] : presets())
    if (n == name) {
      applyPlanAsStep(plan, tr("Preset %1").arg(name));
      statusBar()->showMessage(tr("Preset %1").arg(name), 4000);
      return true;
    }
  return false;
}

void MainWindow::savePreset(const QString& name) {
  compress::CompressionPlan p;
  p.quant = state_.quant;
  p.prune = state_.prune;
  QSettings().setValue("presets/" + name, QString::fromStdString(compress::planJson(p)));
  rebuildPresetMenu();
}

void MainWindow::rebuildPresetMenu() {
  if (!presetMenu_) return;
  presetMenu_->clear();
  for (const auto& [name, plan] : presets())
    presetMenu_->addAction(name, this, [this, n = name] { applyPreset(n); });
  presetMenu_->addSeparator();
  presetMenu_->addAction(tr("Save current as preset…"), this, [this] {
    bool ok = false;
    const QString name = QInputDialog::getText(this, tr("Save preset"), tr("Name:"),
                                               QLineEdit::Normal, QString(), &ok);
    if (ok && !name.trimmed().isEmpty()) savePreset(name.trimmed());
  });
}

bool MainWindow::runExportDialog() {
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Export compressed student"));
  dialog.setMinimumWidth(520);
  auto* form = new QFormLayout(&dialog);
  auto* format = new QComboBox(&dialog);
  format->addItem(tr("Hugging Face (dequantized weights)"), "hf");
  format->addItem(tr("Compressed safetensors (codes + parameters)"), "compressed");
  format->addItem(tr("HDF5, one file (codes + parameters, plan, report)"), "h5");
  format->setObjectName("exportFormat");
  auto* dtype = new QComboBox(&dialog);
  dtype->addItem("F32", int(DType::F32));
  dtype->addItem("F16", int(DType::F16));
  dtype->addItem("BF16", int(DType::BF16));
  connect(format, &QComboBox::currentIndexChanged, dtype,
          [format, dtype] { dtype->setEnabled(format->currentData().toString() == "hf"); });
  auto* dirRow = new QHBoxLayout();
  auto* dir = new QLineEdit(&dialog);
  dir->setObjectName("exportDir");
  auto* browse = new QToolButton(&dialog);
  browse->setText("…");
  connect(browse, &QToolButton::clicked, &dialog, [this, dir, format] {
    const bool h5 = format->currentData().toString() == "h5";
    QString d = h5 ? QFileDialog::getSaveFileName(this, tr("New HDF5 model file"), {},
                                                  tr("HDF5 (*.h5)"))
                   : QFileDialog::getSaveFileName(this, tr("New model folder"));
    if (h5 && !d.isEmpty() && !d.endsWith(".h5")) d += ".h5";
    if (!d.isEmpty()) dir->setText(d);
  });
  dirRow->addWidget(dir, 1);
  dirRow->addWidget(browse);
  auto* report = new QCheckBox(tr("Write a report beside it (JSON and a one-page PDF)"), &dialog);
  report->setChecked(true);
  auto* open = new QCheckBox(tr("Open the exported model as the student"), &dialog);
  open->setChecked(true);
  const compress::CompressionPlan plan = compressionPlan();
  auto* summary = new QLabel(plan.empty() ? tr("The panels set no compression: the model is "
                                              "written as it is.")
                                          : tr("Quantization: %1\nPruning: %2 tensor group(s), %3 head(s)")
                                                .arg(QString::fromStdString(quant::planText(plan.quant)))
                                                .arg(std::count_if(plan.prune.targets.begin(),
                                                                   plan.prune.targets.end(),
                                                                   [](const auto& t) { return t.has_value(); }))
                                                .arg(plan.prune.heads.size()),
                             &dialog);
  summary->setWordWrap(true);
  form->addRow(summary);
  form->addRow(tr("Format"), format);
  form->addRow(tr("Weights as"), dtype);
  auto* dirLabel = new QLabel(tr("Folder"), &dialog);
  connect(format, &QComboBox::currentIndexChanged, dirLabel, [format, dirLabel] {
    dirLabel->setText(format->currentData().toString() == "h5" ? tr("File") : tr("Folder"));
  });
  form->addRow(dirLabel, dirRow);
  form->addRow(report);
  form->addRow(open);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (exportPreset_) exportPreset_(dialog);  // tests fill the dialog and accept it
  if (dialog.result() != QDialog::Accepted && dialog.exec() != QDialog::Accepted) return false;
  if (dir->text().isEmpty()) return false;
  const QString out = dir->text();
  const bool reopen = open->isChecked();
  statusBar()->showMessage(tr("Exporting to %1…").arg(out));
  // Progress by stage, with Cancel: the worker stops at the next tensor and the
  // temporary output is removed.
  auto* progress = new QProgressDialog(tr("Exporting to %1…").arg(out), tr("Cancel"), 0, 3, this);
  progress->setObjectName("exportProgress");
  progress->setWindowTitle(tr("Export"));
  progress->setWindowModality(Qt::WindowModal);
  progress->setMinimumDuration(0);
  progress->setAutoClose(false);
  progress->setAutoReset(false);
  progress->setValue(0);
  progress->show();
  connect(progress, &QProgressDialog::canceled, session_.get(), &Session::cancelExport);
  auto* stageConn = new QMetaObject::Connection;
  *stageConn = connect(session_.get(), &Session::exportProgress, progress,
                       [progress](int stage, int stages, QString what) {
                         progress->setMaximum(stages);
                         progress->setValue(stage);
                         progress->setLabelText(what);
                       });
  auto* pdfConn = new QMetaObject::Connection;
  *pdfConn = connect(session_.get(), &Session::exportFigures, this,
                     [this](QString d, std::shared_ptr<const compress::ReportFigures> f) {
                       widgets::ReportPdfHeader h;
                       h.model = session_->modelPath(Student).isEmpty()
                                     ? session_->modelPath(Teacher)
                                     : session_->modelPath(Student);
                       h.output = d;
                       h.version = QCoreApplication::applicationVersion();
                       QString error;
                       if (!widgets::writeReportPdf(d + ".report.pdf", *f, h, &error))
                         statusBar()->showMessage(tr("PDF report not written: %1").arg(error), 10000);
                     });
  auto* conn = new QMetaObject::Connection;
  *conn = connect(session_.get(), &Session::exportFinished, this,
                  [this, conn, stageConn, pdfConn, progress, reopen](bool ok, QString d, QString message) {
                    disconnect(*conn);
                    delete conn;
                    disconnect(*stageConn);
                    delete stageConn;
                    disconnect(*pdfConn);
                    delete pdfConn;
                    const bool cancelled = progress->wasCanceled();
                    progress->deleteLater();
                    if (cancelled && !ok) {
                      statusBar()->showMessage(tr("Export cancelled; nothing was written"), 8000);
                      return;
                    }
                    if (!ok) {
                      statusBar()->showMessage(tr("Export failed: %1").arg(message), 10000);
                      if (options_.screenshot.isEmpty() && !exportPreset_)
                        QMessageBox::warning(this, tr("Export failed"), message);
                      return;
                    }
                    statusBar()->showMessage(tr("Exported to %1").arg(d), 8000);
                    if (reopen) session_->loadModel(Student, d);
                  });
  session_->exportStudent(plan, out, format->currentData().toString(),
                          DType(dtype->currentData().toInt()), report->isChecked());
  return true;
}

void MainWindow::updateDistillModels() {
  if (!distillPanel_) return;
  auto t = session_->model(Teacher), s = session_->model(Student);
  if (!t || !s) {
    distillPanel_->setModels(0, 0, false, false);
    return;
  }
  const bool lm = s->config.arch == Architecture::Gpt2;
  const bool logits = lm && t->config.arch == Architecture::Gpt2 &&
                      t->config.vocabSize == s->config.vocabSize;
  distillPanel_->setModels(t->config.layers, s->config.layers, logits, lm);
}

void MainWindow::setCompare(Compare mode) { compare_->setCurrentIndex(int(mode)); }

MainWindow::Compare MainWindow::compare() const { return Compare(compare_->currentIndex()); }

void MainWindow::buildSparseDock() {
  sparsityPanel_ = new widgets::SparsityPanel(this);
  QDockWidget* dock = addPanelDock(tr("Sparsity"), "sparsity", sparsityPanel_);
  if (auto* quant = findChild<QDockWidget*>("quantization")) tabifyDockWidget(quant, dock);
  connect(dock, &QDockWidget::visibilityChanged, this, [this](bool visible) {
    if (visible && compare() == Compare::Workspace) scheduleRedraw();  // its views follow
  });
  connect(sparsityPanel_, &widgets::SparsityPanel::planChanged, this, [this] {
    if (compare() == Compare::Workspace) {
      if (applyingState_) return;
      sparseSent_ = true;
      recordPanelChange(1);
      sendWorkspacePlan(state_);
      return;
    }
    sendSparsityPlan();
    if (compare() != Compare::Sparsified) setCompare(Compare::Sparsified);
    recordPanelChange(1);
  });
  connect(
      session_.get(), &Session::sparseReady, this, [this](std::shared_ptr<const SparseResult> r) {
        sparse_ = std::move(r);
        if (sparse_ && sparse_->preview) {  // maps follow at once; numbers come with the full run
          sparsityPanel_->setStatus(
              tr("preview: %1 % of the attention dropped on the dense maps; propagating…")
                  .arg(100 * sparse_->total.sparsity(), 0, 'f', 1));
          scheduleRedraw();
          return;
        }
        sparsityPanel_->setStatus(QString());
        if (sparse_) {
          widgets::SparsityPanel::Readout ro;
          ro.weightSparsity = sparse_->pruned.sparsity();
          ro.attentionSparsity = sparse_->total.sparsity();
          ro.retainedMass = sparse_->total.retainedMass();
          ro.klMean = sparse_->fidelity.klMean;
          ro.hiddenCosine = sparse_->fidelity.hiddenCosine;
          for (const auto& t : sparse_->pruned.tensors) {
            ro.denseBytes += t.bytes.dense;
            ro.bitmapBytes += t.bytes.bitmap;
            ro.csrBytes += t.bytes.csr;
          }
          ro.prunedHeads = sparse_->pruned.heads;
          sparsityPanel_->setResult(sparse_->pruned.tensors, ro);
          if (!sparse_->sweepTau.empty())
            sparsityPanel_->setSweep(sparse_->sweepTau, sparse_->sweepSparsity, sparse_->sweepKl);
          if (!sparse_->importance.empty())
            sparsityPanel_->setImportance(sparse_->importance, sparse_->base->config.layers,
                                          sparse_->base->config.heads);
        }
        scheduleRedraw();
      });
  connect(session_.get(), &Session::sparseFailed, this,
          [this](QString message) { sparsityPanel_->setStatus(message); });
}

void MainWindow::sendSparsityPlan() {
  sparseSent_ = true;
  sparsityPanel_->setStatus(tr("sparsifying…"));
  session_->setSparsityPlan(sparsityPanel_->plan(), sparsityPanel_->headsToPrune(),
                            sparsityPanel_->importance());
}

void MainWindow::drawVariant(const Comparison& c, int layer, int head, bool average, int side,
                             const ForwardResult* variant, const QString& what,
                             const QString& waiting) {
  const bool has = side == Student ? c.hasStudent : c.hasTeacher;
  const QString who = sideName(Side(side));
  if (!has) {
    for (auto* v : views_) v->setMessage(tr("load a model to compress"));
    return;
  }
  const SideResult& f = side == Student ? c.student : c.teacher;
  const int l = std::min(layer, f.forward.layers - 1), h = std::min(head, f.forward.heads - 1);
  const QString where =
      average ? tr("layer %1 · head average").arg(l) : tr("layer %1 · head %2").arg(l).arg(h);
  const std::vector<float> a = layerMap(f.forward, l, h, average);
  views_[0]->setTitle(tr("%1 (float)\n%2").arg(who, where));
  views_[0]->setLogScale(logScale_->isChecked());
  views_[0]->setMatrix(a, f.forward.seq, f.forward.seq, f.tokens, f.tokens);
  views_[1]->setTitle(tr("%1, %2\n%3").arg(who, what, where));
  views_[2]->setTitle(tr("Float − %1\n%2").arg(what, where));
  if (variant == nullptr || variant->seq != f.forward.seq) {
    views_[1]->setMessage(waiting);
    views_[2]->setMessage(waiting);
    views_[0]->setAutoRange();
    return;
  }
  const std::vector<float> b = layerMap(*variant, l, h, average);
  views_[1]->setLogScale(logScale_->isChecked());
  views_[1]->setMatrix(b, f.forward.seq, f.forward.seq, f.tokens, f.tokens);
  std::vector<float> diff(a.size());
  for (size_t i = 0; i < diff.size(); ++i) diff[i] = a[i] - b[i];
  views_[2]->setMatrix(std::move(diff), f.forward.seq, f.forward.seq, f.tokens, f.tokens);
  if (sharedRange_->isChecked()) {
    const float mx =
        std::max(*std::max_element(a.begin(), a.end()), *std::max_element(b.begin(), b.end()));
    for (int s = 0; s < 2; ++s) views_[s]->setFixedRange(0.0, mx);
  } else {
    for (int s = 0; s < 2; ++s) views_[s]->setAutoRange();
  }
}

// Loading: a percentage bar and a Cancel button; computing: a busy indicator.
void MainWindow::updateBusy() {
  const bool loading = loadsPending_ > 0;
  busy_->setRange(0, loading ? 100 : 0);
  busy_->setFormat(tr("Loading %p%"));
  busy_->setTextVisible(loading);
  busy_->setVisible(loading || sessionBusy_);
  cancelButton_->setVisible(loading);
}

void MainWindow::openModel(Side side) {
  const QString dir = QFileDialog::getExistingDirectory(
      this, tr("Open %1 model folder").arg(sideName(side)), session_->modelPath(side));
  if (!dir.isEmpty()) session_->loadModel(side, dir);
}

void MainWindow::updateModelPanel(Side side) {
  const auto m = session_->model(side);
  if (!m) {
    modelInfo_[side]->setText(tr("<b>%1</b><br>none — File ▸ Open").arg(sideName(side)));
    return;
  }
  const auto& c = m->config;
  // The dtype of the weights: that of the largest tensor (not of a small buffer).
  QString dtype = "F32";
  size_t largest = 0;
  for (const auto& [name, entry] : m->checkpoint.tensors)
    if (entry.tensor.nbytes() > largest) {
      largest = entry.tensor.nbytes();
      dtype = QString::fromUtf8(dtypeName(entry.tensor.dtype()));
    }
  modelInfo_[side]->setText(
      tr("<b>%1</b><br>%2<br>%3 (%4)<br>%5 layers × %6 heads, hidden %7<br>%8 parameters, "
         "%9, %10")
          .arg(sideName(side), session_->modelPath(side).toHtmlEscaped(),
               QString::fromStdString(architectureName(c.arch)),
               QString::fromStdString(c.hfClass).toHtmlEscaped())
          .arg(c.layers)
          .arg(c.heads)
          .arg(c.hidden)
          .arg(QLocale().toString(qlonglong(m->parameters)), humanBytes(double(m->fileBytes)),
               dtype));
}

void MainWindow::scheduleRedraw() {
  // At most one redraw per interval, but not later than needed: after a quiet
  // interval the redraw runs as soon as the events of this turn are handled.
  if (redrawTimer_.isActive()) return;
  const qint64 since = sinceRedraw_.isValid() ? sinceRedraw_.elapsed() : kRedrawIntervalMs;
  redrawTimer_.start(int(std::clamp<qint64>(kRedrawIntervalMs - since, 0, kRedrawIntervalMs)));
}

void MainWindow::redrawNow() {
  redrawTimer_.stop();
  redraw();
}

void MainWindow::redraw() {
  const auto c = latest_;
  if (!c) return;
  ++redraws_;
  sinceRedraw_.start();
  const bool newResult = c != shown_;
  shown_ = c;
  const bool avg = headAverage_->isChecked();
  // Layer selection follows the student when there is one (the mapping runs
  // student → teacher). The head is shared when head counts match; otherwise
  // the student head and the teacher head are chosen separately.
  const int sl = c->hasStudent ? c->student.forward.layers : 0;
  const int tl = c->hasTeacher ? c->teacher.forward.layers : 0;
  const int sh = c->hasStudent ? c->student.forward.heads : 0;
  const int th = c->hasTeacher ? c->teacher.forward.heads : 0;
  const bool headsDiffer = sh > 0 && th > 0 && sh != th;
  const int layers = sl > 0 ? sl : tl;
  for (auto* spin : {layerSpin_, headSpin_, teacherHeadSpin_}) spin->blockSignals(true);
  layerSpin_->setRange(0, std::max(0, layers - 1));
  headSpin_->setRange(0, std::max(0, (sh > 0 ? sh : th) - 1));
  teacherHeadSpin_->setRange(0, std::max(0, th - 1));
  if (options_.layer >= 0) layerSpin_->setValue(options_.layer), options_.layer = -1;
  if (options_.head >= 0) headSpin_->setValue(options_.head), options_.head = -1;
  for (auto* spin : {layerSpin_, headSpin_, teacherHeadSpin_}) spin->blockSignals(false);
  for (auto* a : teacherHeadAction_) a->setVisible(headsDiffer);
  teacherHeadSpin_->setEnabled(!avg);
  const int layer = layerSpin_->value();
  const int heads[2] = {headsDiffer ? teacherHeadSpin_->value() : headSpin_->value(),
                        headSpin_->value()};
  if (sl > 0 && tl > 0 && (mappedFor_[0] != tl || mappedFor_[1] != sl)) {
    mapping_ = uniformLayerMap(sl, tl);  // default until the user picks pairs
    mappedFor_[0] = tl;
    mappedFor_[1] = sl;
  }
  const int teacherLayer =
      sl > 0 && tl > 0 ? mapping_[std::min(layer, sl - 1)] : std::min(layer, tl - 1);

  std::vector<float> maps[2];
  const SideResult* sides[2] = {c->hasTeacher ? &c->teacher : nullptr,
                                c->hasStudent ? &c->student : nullptr};
  int shownLayer[2] = {0, 0}, shownHead[2] = {0, 0};
  for (int s = 0; s < 2; ++s) {
    if (sides[s] == nullptr) {
      views_[s]->setTitle(sideName(Side(s)));
      views_[s]->setMessage(tr("no %1 loaded").arg(sideName(Side(s)).toLower()));
      continue;
    }
    const auto& r = sides[s]->forward;
    shownLayer[s] = s == Teacher ? teacherLayer : std::min(layer, r.layers - 1);
    shownHead[s] = std::min(heads[s], r.heads - 1);
    maps[s] = layerMap(r, shownLayer[s], shownHead[s], avg);
    views_[s]->setTitle(
        avg ? tr("%1\nlayer %2 · head average").arg(sideName(Side(s))).arg(shownLayer[s])
            : tr("%1\nlayer %2 · head %3")
                  .arg(sideName(Side(s)))
                  .arg(shownLayer[s])
                  .arg(shownHead[s]));
    views_[s]->setLogScale(logScale_->isChecked());
    views_[s]->setMatrix(maps[s], r.seq, r.seq, sides[s]->tokens, sides[s]->tokens);
  }
  if (sharedRange_->isChecked() && !maps[0].empty() && !maps[1].empty()) {
    const float mx = std::max(*std::max_element(maps[0].begin(), maps[0].end()),
                              *std::max_element(maps[1].begin(), maps[1].end()));
    for (int s = 0; s < 2; ++s) views_[s]->setFixedRange(0.0, mx);
  } else {
    for (int s = 0; s < 2; ++s) views_[s]->setAutoRange();
  }

  views_[2]->setTitle(tr("Teacher − student"));
  const QString pair = avg ? tr("Teacher L%1 − student L%2\nhead average")
                                 .arg(shownLayer[Teacher])
                                 .arg(shownLayer[Student])
                       : headsDiffer ? tr("Teacher L%1 h%2 − student L%3 h%4\n")
                                           .arg(shownLayer[Teacher])
                                           .arg(shownHead[Teacher])
                                           .arg(shownLayer[Student])
                                           .arg(shownHead[Student])
                                     : tr("Teacher L%1 − student L%2\nhead %3")
                                           .arg(shownLayer[Teacher])
                                           .arg(shownLayer[Student])
                                           .arg(shownHead[Student]);
  if (maps[0].empty() || maps[1].empty()) {
    views_[2]->setMessage(tr("load a teacher and a student to compare"));
  } else if (c->teacher.ids == c->student.ids) {
    std::vector<float> diff(maps[0].size());
    for (size_t i = 0; i < diff.size(); ++i) diff[i] = maps[0][i] - maps[1][i];
    const int seq = c->teacher.forward.seq;
    views_[2]->setMatrix(std::move(diff), seq, seq, c->teacher.tokens, c->teacher.tokens);
    views_[2]->setTitle(pair);
  } else if (c->aligned) {
    // Different tokenizations: both maps mapped onto the common character groups.
    const int g = c->alignment.groups;
    const auto a = alignedMap(maps[0].data(), c->teacher.forward.seq, c->alignment.groupA, g);
    const auto b = alignedMap(maps[1].data(), c->student.forward.seq, c->alignment.groupB, g);
    std::vector<float> diff(a.size());
    for (size_t i = 0; i < diff.size(); ++i) diff[i] = a[i] - b[i];
    views_[2]->setMatrix(std::move(diff), g, g, c->groupLabels, c->groupLabels);
    views_[2]->setTitle(pair + tr(" · aligned by characters: %1 groups").arg(g));
  } else {
    views_[2]->setMessage(tr("the two models' tokens share no characters to align"));
  }
  std::vector<std::pair<int, int>> crossed;
  if (compare() == Compare::Quantized) {
    const QuantResult* q = quant_.get();
    const int side = q != nullptr ? q->side : (c->hasStudent ? Student : Teacher);
    const bool current = q != nullptr && q->hasForward && q->text == c->text &&
                         q->base == session_->model(Side(side));
    drawVariant(
        *c, layer, heads[Student], avg, side, current ? &q->forward : nullptr, tr("quantized"),
        q == nullptr ? tr("choose a quantization in the Quantization panel") : tr("quantizing…"));
  } else if (compare() == Compare::Sparsified) {
    const SparseResult* sp = sparse_.get();
    const int side = sp != nullptr ? sp->side : (c->hasStudent ? Student : Teacher);
    const bool current = sp != nullptr && sp->hasForward && sp->text == c->text &&
                         sp->base == session_->model(Side(side));
    drawVariant(*c, layer, heads[Student], avg, side, current ? &sp->forward : nullptr,
                sp != nullptr && sp->preview ? tr("sparsified (preview)") : tr("sparsified"),
                sp == nullptr ? tr("choose a sparsity in the Sparsity panel") : tr("sparsifying…"));
    if (current) {
      const SideResult& f = side == Student ? c->student : c->teacher;
      const int l = std::min(layer, sp->forward.layers - 1);
      const int h = std::min(heads[Student], sp->forward.heads - 1);
      sparsityPanel_->setHeadMask(sp->forward.attentionMap(l, h), sp->forward.seq, f.tokens,
                                  tr("Attention kept · L%1 h%2").arg(l).arg(h));
      crossed =
          sp->preview ? grids_[c->hasStudent ? Student : Teacher]->crossed() : sp->pruned.heads;
    }
  }
  if (compare() == Compare::Workspace) {
    drawWorkspace(*c, layer, heads[Student], avg);
    if (ws_) crossed = ws_->plan.prune.heads;
    // The Sparsity panel's kept-attention view shows the workspace's head too (when
    // its tab is on screen; raising it redraws).
    if (ws_ && sparsityPanel_->isVisible() && ws_->text == c->text &&
        ws_->base == session_->model(Side(ws_->side))) {
      const SideResult& f = ws_->side == Student ? c->student : c->teacher;
      const int l = std::min(layer, ws_->forward.layers - 1);
      const int h = std::min(heads[Student], ws_->forward.heads - 1);
      sparsityPanel_->setHeadMask(ws_->forward.attentionMap(l, h), ws_->forward.seq, f.tokens,
                                  tr("Attention kept · L%1 h%2").arg(l).arg(h));
    }
  }
  grids_[c->hasStudent ? Student : Teacher]->setCrossed(crossed);
  const bool lossStat = gridStat_->currentIndex() == 2;
  const bool kl = lossKind_->currentIndex() == 0;
  for (int sIdx = 0; sIdx < 2; ++sIdx) {
    if (sides[sIdx] == nullptr) {
      grids_[sIdx]->clear(tr("no %1 loaded").arg(sideName(Side(sIdx)).toLower()));
      continue;
    }
    const auto& r = sides[sIdx]->forward;
    std::vector<double> stats;
    QString statName = gridStat_->currentText();
    if (lossStat) {
      stats = headLossStats(*c, Side(sIdx), kl);
      statName = kl ? tr("KL(teacher ‖ student) of the mapped pair") : tr("MSE of the mapped pair");
    } else {
      stats = gridStat_->currentIndex() == 1 ? sides[sIdx]->distance : sides[sIdx]->entropy;
    }
    if (c != gridsFor_[sIdx])  // thumbnails are rebuilt only for a new result
      grids_[sIdx]->setData(r.attention.data(), r.layers, r.heads, r.seq, std::move(stats),
                            statName);
    else
      grids_[sIdx]->setStats(std::move(stats), statName);
    gridsFor_[sIdx] = c;
    grids_[sIdx]->setSelected(shownLayer[sIdx], shownHead[sIdx]);
  }
  updateLossView(*c);
  if (newResult || c != stripFor_) updateTokenStrip(*c);
  emit drawn();
  maybeScreenshot();
}

// Per-head statistic "loss against the mapped teacher head" ([L * H], NaN where
// it does not apply): for the student, each head of layer s against the mapped
// teacher layer's head (or head average); for the teacher, its heads of each
// mapped layer against the first student layer mapped to it (equal head counts).
std::vector<double> MainWindow::headLossStats(const Comparison& c, Side side, bool kl) const {
  const auto& r = side == Teacher ? c.teacher.forward : c.student.forward;
  std::vector<double> out(size_t(r.layers) * r.heads, std::nan(""));
  if (!c.hasLoss) return out;
  const LossMatrix& m = c.loss;
  const auto& values = kl ? m.headKl : m.headMse;
  for (size_t s = 0; s < mapping_.size() && int(s) < m.studentLayers; ++s) {
    const int t = mapping_[s];
    if (side == Student) {
      for (int h = 0; h < r.heads; ++h) out[s * r.heads + h] = m.headAt(values, t, int(s), h);
    } else if (r.heads == m.studentHeads && std::isnan(out[size_t(t) * r.heads])) {
      for (int h = 0; h < r.heads; ++h)
        out[size_t(t) * r.heads + h] = m.headAt(values, t, int(s), h);
    }
  }
  return out;
}

void MainWindow::updateTokenStrip(const Comparison& c) {
  stripFor_ = latest_;
  for (auto* v : views_) v->setFocusBand(-1, -1);
  if (!c.hasTeacher && !c.hasStudent) {
    tokenStrip_->setMessage(tr("no model loaded"));
    return;
  }
  std::vector<widgets::TokenStripView::Row> rows;
  if (c.hasTeacher && c.hasStudent && c.teacher.ids != c.student.ids && c.aligned) {
    rows.push_back(
        {tr("Teacher (%1)").arg(c.teacher.tokens.size()), c.teacher.tokens, c.alignment.groupA});
    rows.push_back(
        {tr("Student (%1)").arg(c.student.tokens.size()), c.student.tokens, c.alignment.groupB});
  } else if (c.hasTeacher && c.hasStudent && c.teacher.ids != c.student.ids) {
    rows.push_back({tr("Teacher (%1)").arg(c.teacher.tokens.size()), c.teacher.tokens, {}});
    rows.push_back({tr("Student (%1)").arg(c.student.tokens.size()), c.student.tokens, {}});
  } else {
    const SideResult& any = c.hasTeacher ? c.teacher : c.student;
    const QString who =
        c.hasTeacher && c.hasStudent ? tr("Both") : sideName(c.hasTeacher ? Teacher : Student);
    rows.push_back({tr("%1 (%2)").arg(who).arg(any.tokens.size()), any.tokens, {}});
  }
  tokenStrip_->setRows(std::move(rows));
  tokenStrip_->parentWidget()->parentWidget()->setFixedHeight(tokenStrip_->sizeHint().height() +
                                                              18);
}

void MainWindow::focusToken(int row, int index) {
  tokenStrip_->setFocusToken(row, index);
  const auto c = stripFor_;
  if (!c || tokenStrip_->focusRow() < 0) {
    for (auto* v : views_) v->setFocusBand(-1, -1);
    return;
  }
  if (tokenStrip_->rowCount() == 1) {  // one tokenization: the same index everywhere
    for (auto* v : views_) v->setFocusBand(index, index);
    return;
  }
  // Two tokenizations: the clicked token's group, as token ranges on each side.
  const int g = tokenStrip_->groupOf(row, index);
  const std::vector<int>* groups[2] = {&c->alignment.groupA, &c->alignment.groupB};
  for (int s = 0; s < 2; ++s) {
    int first = -1, last = -1;
    if (g < 0 || !c->aligned) {
      if (s == row) first = last = index;  // not aligned: only its own map
    } else {
      for (int i = 0; i < int(groups[s]->size()); ++i)
        if ((*groups[s])[size_t(i)] == g) {
          if (first < 0) first = i;
          last = i;
        }
    }
    views_[s]->setFocusBand(first, last);
  }
  views_[2]->setFocusBand(c->aligned ? g : -1, c->aligned ? g : -1);
}

void MainWindow::setTeacherHead(int head) {
  teacherHeadSpin_->setValue(head);
  scheduleRedraw();
}

bool MainWindow::openCorpus(const QString& path, const QString& column, QString* error) {
  auto examples = session_->readCorpus(path, column);
  if (!examples) {
    *error = QString::fromStdString(examples.message());
    return false;
  }
  examples_->clear();
  for (const auto& e : *examples) {
    const QString text = QString::fromStdString(e);
    const QString shown = text.simplified();
    examples_->addItem(shown.size() > 70 ? shown.left(67) + "…" : shown, text);
  }
  examples_->setVisible(examples_->count() > 0);
  statusBar()->showMessage(tr("%1 examples from %2").arg(examples_->count()).arg(path), 5000);
  return true;
}

int MainWindow::exampleCount() const { return examples_->count(); }

void MainWindow::chooseExample(int index) {
  if (index < 0 || index >= examples_->count()) return;
  examples_->setCurrentIndex(index);
  const QString text = examples_->itemData(index).toString();
  textEdit_->setText(text);
  textTimer_.stop();
  session_->setText(text);
}

QStringList MainWindow::recentModels() const {
  return QSettings().value("models/recent").toStringList();
}

void MainWindow::rememberModel(const QString& path) {
  QStringList list = recentModels();
  list.removeAll(path);
  list.prepend(path);
  while (list.size() > 8) list.removeLast();
  QSettings().setValue("models/recent", list);
  rebuildRecentMenus();
}

void MainWindow::rebuildRecentMenus() {
  const QStringList list = recentModels();
  for (int side = 0; side < 2; ++side) {
    recentMenus_[side]->clear();
    for (const QString& p : list)
      recentMenus_[side]->addAction(p, this, [this, side, p] { session_->loadModel(side, p); });
    recentMenus_[side]->setEnabled(!list.isEmpty());
  }
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  settings.setValue("view/logScale", logScale_->isChecked());
  settings.setValue("view/headAverage", headAverage_->isChecked());
  settings.setValue("text/last", textEdit_->text());
  QMainWindow::closeEvent(event);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  const auto urls = event->mimeData()->urls();
  if (urls.size() == 1 && urls.front().isLocalFile()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const auto urls = event->mimeData()->urls();
  if (urls.size() != 1 || !urls.front().isLocalFile()) return;
  openDropped(urls.front().toLocalFile(), event->position().toPoint());
  event->acceptProposedAction();
}

// Dropped on the teacher's map (or left of it): the teacher; elsewhere: the student.
void MainWindow::openDropped(const QString& path, QPoint windowPos) {
  const QPoint at = views_[Teacher]->mapFrom(this, windowPos);
  session_->loadModel(at.x() < views_[Teacher]->width() ? Teacher : Student, path);
}

bool MainWindow::exportMaps(const QString& path, QString* error) {
  const auto c = shown_;
  if (!c || views_[0]->showsMessage() || views_[1]->showsMessage()) {
    *error = tr("load a teacher and a student first");
    return false;
  }
  const int n = views_[0]->rows();
  const bool withDiff = !views_[2]->showsMessage();
  if (views_[1]->rows() != n) {
    *error = tr("the two maps have different sizes (the models tokenize differently)");
    return false;
  }
  if (path.endsWith(".csv", Qt::CaseInsensitive)) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) {
      *error = f.errorString();
      return false;
    }
    QTextStream out(&f);
    out << "map,query_index,query_token,key_index,key_token,weight\n";
    const char* names[] = {"teacher", "student", "difference"};
    auto quote = [](QString t) { return '"' + t.replace('"', "\"\"") + '"'; };
    for (int v = 0; v < (withDiff ? 3 : 2); ++v)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          out << names[v] << ',' << i << ',' << quote(views_[v]->rowLabels().value(i)) << ',' << j
              << ',' << quote(views_[v]->colLabels().value(j)) << ','
              << QString::number(views_[v]->value(i, j), 'g', 9) << '\n';
    out.flush();
    if (!f.commit()) {
      *error = f.errorString();
      return false;
    }
    return true;
  }
  std::vector<float> data;
  for (int v = 0; v < (withDiff ? 3 : 2); ++v)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) data.push_back(views_[v]->value(i, j));
  const QString npy = path.endsWith(".npy") ? path : path + ".npy";
  const Status st = session_->writeArray(npy, {withDiff ? 3 : 2, n, n}, data);
  if (!st) *error = QString::fromStdString(st.message());
  return st.ok();
}

void MainWindow::selectHead(int studentLayer, int head) {
  layerSpin_->setValue(studentLayer);
  headSpin_->setValue(head);
  scheduleRedraw();
}

void MainWindow::updateLossView(const Comparison& c) {
  if (!c.hasLoss) {
    lossView_->setTitle(tr("Distillation loss"));
    lossView_->setMessage(c.hasTeacher && c.hasStudent
                              ? tr("the models tokenize this text differently")
                              : tr("load a teacher and a student"));
    return;
  }
  const auto& m = c.loss;
  const bool kl = lossKind_->currentIndex() == 0;
  const auto& values = kl ? m.kl : m.mse;
  QStringList rows, cols;
  for (int t = 0; t < m.teacherLayers; ++t) rows << tr("T%1").arg(t);
  for (int s = 0; s < m.studentLayers; ++s) cols << tr("S%1").arg(s);
  lossView_->setTitle((kl ? tr("KL(T ‖ S), mean over rows") : tr("MSE = ‖A_T − A_S‖²_F / n")) +
                      (c.aligned ? tr("\non maps aligned by characters") : QString()));
  lossView_->setMatrix(std::vector<float>(values.begin(), values.end()), m.teacherLayers,
                       m.studentLayers, rows, cols);
  std::vector<std::pair<int, int>> marks;
  QStringList pairs;
  std::vector<double> perLayer;
  for (size_t s = 0; s < mapping_.size(); ++s) {
    marks.emplace_back(mapping_[s], int(s));
    pairs << tr("S%1↔T%2").arg(s).arg(mapping_[s]);
    perLayer.push_back(m.at(values, mapping_[s], int(s)));
  }
  lossView_->setMarkedCells(marks);
  layerLoss_->setBars(pairs, perLayer, kl ? tr("KL of mapped pair") : tr("MSE of mapped pair"));
}

void MainWindow::maybeScreenshot() {
  if (options_.screenshot.isEmpty() || screenshotTaken_) return;
  const bool wantT = !options_.teacher.isEmpty(), wantS = !options_.student.isEmpty();
  const auto c = shown_;
  if (!c || (wantT && !c->hasTeacher) || (wantS && !c->hasStudent)) return;
  if (compare() == Compare::Workspace && (!ws_ || ws_->text != c->text)) return;  // its result first
  screenshotTaken_ = true;
  // Let the queued replots run first, then grab what a person would see.
  QTimer::singleShot(150, this, [this] {
    for (auto* v : views_) v->replotNow();
    for (auto* p : workspace_->findChildren<QCustomPlot*>()) p->replot();
    const bool ok = grab().save(options_.screenshot);
    if (!ok) qCritical("cannot write %s", qPrintable(options_.screenshot));
    QApplication::exit(ok ? 0 : 1);
  });
}

}  // namespace attn::app

namespace attn::app {

WorkspaceRequest MainWindow::workspaceRequest() const { return wsRequest_; }

void MainWindow::sendWorkspacePlan(const PanelState& state) {
  WorkspaceRequest req;
  req.plan.quant = state.quant;
  req.plan.prune = state.prune;
  req.headsToPrune = state.prune.heads.empty() ? state.headsToPrune : 0;
  req.by = state.importance;
  const auto t = session_->model(Teacher), st = session_->model(Student);
  if (t && st) {
    req.mapping = mapping_;
    if (int(req.mapping.size()) != st->config.layers)
      req.mapping = uniformLayerMap(st->config.layers, t->config.layers);
  }
  // The histograms on screen: the workspace's tensor of the selected layer and the
  // Quantization panel's tensor.
  int target = 0;  // q until the user picks another
  for (int t = 0; t < kTargetCount; ++t)
    if (wsTensor_ == kTargetNames[t]) target = t;
  if (ws_) {
    for (const auto& t : ws_->reports)
      if (t.layer == layerSpin_->value() && int(t.target) == target) {
        req.histograms.push_back(t.name);
        break;
      }
    const int q = quantPanel_->selectedTensor();
    if (q >= 0 && q < int(ws_->reports.size())) req.histograms.push_back(ws_->reports[size_t(q)].name);
  }
  wsRequest_ = req;
  wsSent_ = true;
  workspace_->setStatus(tr("computing…"));
  session_->setWorkspacePlan(req);
}

void MainWindow::drawWorkspace(const Comparison& c, int layer, int head, bool average) {
  ++workspaceRedraws_;
  const WorkspaceResult* r = ws_.get();
  if (r == nullptr || r->text != c.text || r->base != session_->model(Side(r->side))) {
    if (r == nullptr)
      for (auto m : {widgets::WorkspaceView::Teacher, widgets::WorkspaceView::Student,
                     widgets::WorkspaceView::Compressed, widgets::WorkspaceView::Difference})
        workspace_->map(m)->setMessage(tr("compressing the student…"));
    return;
  }
  const ForwardResult& f = r->forward;
  const SideResult& side = r->side == Student ? c.student : c.teacher;
  if (r->plan.empty() && r->plan.prune.heads.empty())
    workspace_->setStatus(tr("No compression yet: set one in the Quantization or Sparsity panel, "
                             "or pick a preset."));
  const int L = std::min(layer, f.layers - 1), h = std::min(head, f.heads - 1), S = f.seq;
  const QString where = average ? tr("L%1 · head average").arg(L) : tr("L%1 h%2").arg(L).arg(h);
  const std::vector<float> student = layerMap(*r->reference, L, h, average);
  const std::vector<float> compressed = layerMap(f, L, h, average);
  std::vector<float> teacher;
  QString teacherWhere;
  QString note = session_->model(Teacher) && r->side == Student
                     ? tr("the teacher reads this text as other tokens")
                     : tr("no teacher loaded");
  if (r->teacher) {
    const int tl = L < int(wsRequest_.mapping.size()) ? wsRequest_.mapping[size_t(L)] : L;
    const int tL = std::clamp(tl, 0, r->teacher->layers - 1);
    const bool sameHeads = r->teacher->heads == f.heads;
    teacher = layerMap(*r->teacher, tL, sameHeads ? h : 0, average || !sameHeads);
    teacherWhere = average || !sameHeads ? tr("L%1 · head average").arg(tL) : tr("L%1 h%2").arg(tL).arg(h);
  }
  workspace_->setMaps(teacher.empty() ? nullptr : teacher.data(), student.data(), compressed.data(), S,
                      side.tokens, where, teacherWhere, note);
  // The selected tensor of this layer: what the plan did to it.
  const compress::AppliedPlan& a = *r->applied;
  QStringList names;
  std::vector<Target> targets;
  for (int t = 0; t < kTargetCount; ++t) {
    const bool q = std::any_of(a.quantized.begin(), a.quantized.end(),
                               [&](const auto& x) { return x.layer == L && int(x.target) == t; });
    const bool p = std::any_of(a.pruned.begin(), a.pruned.end(),
                               [&](const auto& x) { return x.layer == L && int(x.target) == t; });
    if (q || p) names << kTargetNames[t], targets.push_back(Target(t));
  }
  // The target the user looked at last stays selected across layers and results.
  const int previous = workspace_->currentTensor();
  if (previous >= 0 && previous < wsTensorNames_.size()) wsTensor_ = wsTensorNames_[previous];
  wsTensorNames_ = names;
  const int current = names.isEmpty() ? -1 : std::max<int>(0, int(names.indexOf(wsTensor_)));
  workspace_->setTensorNames(names, current);
  if (current < 0) {
    workspace_->setTensor(tr("layer %1").arg(L), nullptr, nullptr);
  } else {
    const Target t = targets[size_t(current)];
    const quant::TensorReport* q = nullptr;
    const sparse::PrunedTensor* p = nullptr;
    for (const auto& x : r->reports)
      if (x.layer == L && x.target == t) q = &x;
    // Its histograms come with a request that names it (same plan: no recomputation).
    if (q != nullptr && q->stats.errors.counts.empty() &&
        std::find(wsRequest_.histograms.begin(), wsRequest_.histograms.end(), q->name) ==
            wsRequest_.histograms.end())
      QTimer::singleShot(0, this, [this] { sendWorkspacePlan(state_); });
    for (const auto& x : a.pruned)
      if (x.layer == L && x.target == t) p = &x;
    workspace_->setTensor(QString("L%1 %2").arg(L).arg(names[current]), q, p);
  }
  double dropped = 0.0;
  if (!average && size_t(L * f.heads + h) < r->counts.size())
    dropped = r->counts[size_t(L * f.heads + h)].sparsity();
  workspace_->setAttentionMask(compressed.data(), S, side.tokens,
                               average ? tr("Attention kept") : tr("Kept (%1 % dropped)").arg(100 * dropped, 0, 'f', 1));
  const compress::Evaluation& e = r->eval;
  widgets::WorkspaceView::Readout ro;
  ro.klTeacher = e.teacherKl;
  ro.klTeacherBase = e.studentTeacherKl;
  ro.klStudent = e.klMean;
  ro.jsStudent = e.jsMean;
  ro.hiddenCosine = e.hiddenCosine;
  const size_t k = size_t(L) * size_t(f.heads) + size_t(h);
  ro.headKlStudent = k < e.headKl.size() ? e.headKl[k] : compress::kNoValue;
  ro.headKlTeacher = k < r->teacherHeadKl.size() ? r->teacherHeadKl[k] : compress::kNoValue;
  ro.bytesBefore = e.size.before;
  ro.bytesAfter = e.size.after;
  ro.bitsPerWeight = e.size.bitsPerWeight();
  ro.quantizedMatrices = int(r->reports.size());
  ro.quantizedBitsPerWeight = quant::bitsPerQuantizedWeight(r->reports);
  ro.weightSparsity = e.weightSparsity;
  ro.attentionSparsity = e.attention.sparsity();
  ro.computeMs = r->computeMs;
  workspace_->setReadout(ro);
}

void MainWindow::buildAnalysisDocks() {
  connect(session_.get(), &Session::workspaceReady, this,
          [this](std::shared_ptr<const WorkspaceResult> r) {
            // The previous result may hold the last reference to hundreds of MB of
            // weights: let them go on a pool thread, not the GUI thread.
            if (auto old = std::exchange(ws_, std::move(r)))
              QThreadPool::globalInstance()->start([old = std::move(old)]() mutable { old.reset(); });
            workspace_->setStatus(QString());
            // The panels show the numbers of the same compressed student.
            const compress::AppliedPlan& a = *ws_->applied;
            Fidelity fid;
            fid.layers = ws_->eval.layers;
            fid.heads = ws_->eval.heads;
            fid.kl = ws_->eval.headKl;
            fid.js = ws_->eval.headJs;
            fid.klMean = ws_->eval.klMean;
            fid.jsMean = ws_->eval.jsMean;
            fid.hiddenCosine = ws_->eval.hiddenCosine;
            quantPanel_->setStatus(QString());
            quantPanel_->setResult(ws_->reports, ws_->eval.size.before, ws_->eval.size.after, &fid);
            widgets::SparsityPanel::Readout ro;
            ro.weightSparsity = ws_->eval.weightSparsity;
            ro.attentionSparsity = ws_->eval.attention.sparsity();
            ro.retainedMass = ws_->eval.attention.retainedMass();
            ro.klMean = ws_->eval.klMean;
            ro.hiddenCosine = ws_->eval.hiddenCosine;
            for (const auto& t : a.pruned) {
              ro.denseBytes += t.bytes.dense;
              ro.bitmapBytes += t.bytes.bitmap;
              ro.csrBytes += t.bytes.csr;
            }
            ro.prunedHeads = ws_->plan.prune.heads;
            sparsityPanel_->setStatus(QString());
            sparsityPanel_->setResult(a.pruned, ro);
            if (ws_->tauCurve && ws_->tauCurve != wsCurve_) {  // new with the text: the panel
              wsCurve_ = ws_->tauCurve;                          // moves its marker with τ itself
              sparsityPanel_->setSweep(wsCurve_->tau, wsCurve_->sparsity, wsCurve_->kl);
            }
            if (!ws_->importance.empty())
              sparsityPanel_->setImportance(ws_->importance, ws_->eval.layers, ws_->eval.heads);
            scheduleRedraw();
          });
  connect(session_.get(), &Session::workspaceFailed, this,
          [this](QString message) { workspace_->setStatus(message); });

  tradeoff_ = new widgets::TradeoffPanel(this);
  QDockWidget* tradeDock = addPanelDock(tr("Trade-offs"), "tradeoffs", tradeoff_);
  corpusPanel_ = new widgets::CorpusFidelityPanel(this);
  QDockWidget* corpusDock = addPanelDock(tr("Corpus fidelity"), "corpusFidelity", corpusPanel_);
  if (auto* quant = findChild<QDockWidget*>("quantization")) {
    tabifyDockWidget(quant, tradeDock);
    tabifyDockWidget(quant, corpusDock);
    quant->raise();
  }
  if (!options_.corpus.isEmpty()) {
    tradeoff_->setCorpus(options_.corpus);
    corpusPanel_->setCorpus(options_.corpus);
  }
  auto request = [this](bool sweep) {
    AnalysisRequest req;
    req.plan = compressionPlan();
    req.corpus = sweep ? tradeoff_->corpus() : corpusPanel_->corpus();
    req.maxSentences = sweep ? tradeoff_->maxSentences() : corpusPanel_->maxSentences();
    req.text = session_->text();
    const auto t = session_->model(Teacher), st = session_->model(Student);
    if (t && st)
      req.mapping = int(mapping_.size()) == st->config.layers
                        ? mapping_
                        : uniformLayerMap(st->config.layers, t->config.layers);
    return req;
  };
  connect(tradeoff_, &widgets::TradeoffPanel::runRequested, this, [this, request] {
    AnalysisRequest req = request(true);
    QString error;
    if (!tradeoff_->axes(&req.axes, &error)) return tradeoff_->setStatus(error);
    analysisKind_ = 0;
    session_->runAnalysis(req);
  });
  connect(corpusPanel_, &widgets::CorpusFidelityPanel::runRequested, this, [this, request] {
    AnalysisRequest req = request(false);
    if (req.corpus.isEmpty()) {
      corpusPanel_->finished(false, tr("choose a corpus file first"));
      return;
    }
    analysisKind_ = 1;
    session_->runAnalysis(req);
  });
  connect(tradeoff_, &widgets::TradeoffPanel::cancelRequested, session_.get(), &Session::cancelAnalysis);
  connect(corpusPanel_, &widgets::CorpusFidelityPanel::cancelRequested, session_.get(),
          &Session::cancelAnalysis);
  connect(tradeoff_, &widgets::TradeoffPanel::applyRequested, this,
          [this](const compress::CompressionPlan& plan, const QString& what) {
            if (compare() != Compare::Workspace) setCompare(Compare::Workspace);
            applyPlanAsStep(plan, what);
          });
  connect(session_.get(), &Session::analysisStarted, this, [this](int total) {
    if (analysisKind_ == 0) tradeoff_->started(total);
    if (analysisKind_ == 1) corpusPanel_->started(total);
  });
  connect(session_.get(), &Session::sweepPoint, this,
          [this](std::shared_ptr<const compress::SweepPoint> p, int, int) { tradeoff_->addPoint(*p); });
  connect(session_.get(), &Session::corpusPartial, this,
          [this](std::shared_ptr<const compress::Evaluation> e, int done, int total) {
            corpusPanel_->setPartial(*e, done, total);
          });
  connect(session_.get(), &Session::analysisFinished, this, [this](bool completed, QString message) {
    if (analysisKind_ == 0) tradeoff_->finished(completed, message);
    if (analysisKind_ == 1) corpusPanel_->finished(completed, message);
  });
}

}  // namespace attn::app
