// The explorer's main window: a thin assembler of the Session, the text input,
// the model panels and the three heatmaps (teacher | student | difference).
#pragma once

#include <QMainWindow>
#include <QTimer>
#include <memory>

#include "app/gui/session.h"

class QLabel;
class QLineEdit;
class QSpinBox;
class QCheckBox;
class QProgressBar;

namespace attn::widgets {
class HeatmapView;
}

namespace attn::app {

struct StartOptions {
  QString teacher, student, text;
  int layer = -1, head = -1;  // student layer / head to select once loaded
  QString screenshot;         // save a PNG once everything is drawn, then quit
};

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(const StartOptions& options, QWidget* parent = nullptr);
  ~MainWindow() override;

  Session& session() { return *session_; }
  widgets::HeatmapView* teacherView() const { return views_[0]; }
  widgets::HeatmapView* studentView() const { return views_[1]; }
  widgets::HeatmapView* diffView() const { return views_[2]; }
  std::shared_ptr<const Comparison> shownComparison() const { return shown_; }
  // Renders now instead of after the throttle interval (tests, screenshots).
  void redrawNow();
  int redrawCount() const { return redraws_; }

 signals:
  void drawn();  // after the heatmaps show a comparison

 private:
  void buildUi();
  void openModel(Side side);
  void updateModelPanel(Side side);
  void scheduleRedraw();
  void redraw();
  void maybeScreenshot();

  std::unique_ptr<Session> session_;
  StartOptions options_;
  widgets::HeatmapView* views_[3] = {};
  QLabel* modelInfo_[2] = {};
  QLabel* tokenStrip_ = nullptr;
  QLineEdit* textEdit_ = nullptr;
  QSpinBox* layerSpin_ = nullptr;
  QSpinBox* headSpin_ = nullptr;
  QCheckBox* headAverage_ = nullptr;
  QCheckBox* logScale_ = nullptr;
  QCheckBox* sharedRange_ = nullptr;
  QProgressBar* busy_ = nullptr;
  QTimer redrawTimer_, textTimer_;
  std::shared_ptr<const Comparison> latest_, shown_;
  int redraws_ = 0;
  bool screenshotTaken_ = false;
};

}  // namespace attn::app
