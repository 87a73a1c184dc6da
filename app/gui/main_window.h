// The explorer's main window: a thin assembler of the Session, the text input,
// the model panels and the three heatmaps (teacher | student | difference).
#pragma once

#include <QMainWindow>
#include <functional>
#include <QElapsedTimer>
#include <QTimer>
#include <memory>

#include "app/gui/session.h"
#include "core/compress/plan.h"

class QLabel;
class QMenu;
class QUndoStack;
class QLineEdit;
class QSpinBox;
class QCheckBox;
class QProgressBar;
class QToolButton;

class QComboBox;
class QMenu;
class QDockWidget;

class QDialog;
class QStackedWidget;

namespace attn::widgets {
class DistillPanel;
class HeatmapView;
class HeadGridView;
class BarChartView;
class TokenStripView;
class QuantPanel;
class SparsityPanel;
class WorkspaceView;
class TradeoffPanel;
class CorpusFidelityPanel;
}  // namespace attn::widgets

namespace attn::app {

struct StartOptions {
  QString teacher, student, text;
  QString corpus;  // preset corpus file of the distillation panel
  int layer = -1, head = -1;  // student layer / head to select once loaded
  QString screenshot;         // save a PNG once everything is drawn, then quit
  // Show the compression workspace once a teacher and a student are loaded
  // (unless the user chose another view first).
  bool workspaceByDefault = true;
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
  widgets::HeatmapView* lossView() const { return lossView_; }
  widgets::BarChartView* layerLossView() const { return layerLoss_; }
  widgets::HeadGridView* headGrid(Side side) const { return grids_[side]; }
  widgets::TokenStripView* tokenStrip() const { return tokenStrip_; }
  widgets::QuantPanel* quantPanel() const { return quantPanel_; }
  // What the three big maps compare: teacher | student | difference, or the
  // float student | quantized student | difference.
  // Workspace: the compression workspace (teacher, student, compressed student,
  // difference, error histogram, masks and fidelity read-outs) instead of the three maps.
  enum class Compare { TeacherStudent = 0, Quantized = 1, Sparsified = 2, Workspace = 3 };
  void setCompare(Compare mode);
  Compare compare() const;
  std::shared_ptr<const QuantResult> quantResult() const { return quant_; }
  widgets::SparsityPanel* sparsityPanel() const { return sparsityPanel_; }
  widgets::DistillPanel* distillPanel() const { return distillPanel_; }
  // What the Quantization and Sparsity panels have set (the heads removed by
  // importance as the last sparsity result chose them), as one plan.
  compress::CompressionPlan compressionPlan() const;
  // File ▸ Export compressed student…: format, dtype, report, open the result
  // as the student. Returns false when cancelled.
  bool runExportDialog();
  // Opens a compression plan (JSON) into the Quantization and Sparsity panels and
  // applies it; false with *error set when the file is not a valid plan.
  bool openPlan(const QString& path, QString* error);

  // What the Quantization and Sparsity panels set, as undo / redo restores it.
  struct PanelState {
    quant::ModelQuantPlan quant;
    sparse::ModelPrunePlan prune;  // heads: those listed by an opened plan, else none
    int headsToPrune = 0;          // ranked by `importance` when prune.heads is empty
    sparse::Importance importance = sparse::Importance::Confidence;
  };
  PanelState panelState() const;
  // Sets both panels to `state` and computes it (one undo step named `what`).
  void applyPlanAsStep(const compress::CompressionPlan& plan, const QString& what);
  QUndoStack* undoStack() const { return undo_; }
  // Sets both panels to `state` and computes it, without recording a step (undo / redo).
  void restorePanelState(const PanelState& state);
  // Built-in and saved presets: name → plan.
  std::vector<std::pair<QString, compress::CompressionPlan>> presets() const;
  bool applyPreset(const QString& name);
  // Saves the panels' plan as a named preset (QSettings "presets/<name>").
  void savePreset(const QString& name);
  std::shared_ptr<const SparseResult> sparseResult() const { return sparse_; }
  widgets::WorkspaceView* workspaceView() const { return workspace_; }
  widgets::TradeoffPanel* tradeoffPanel() const { return tradeoff_; }
  widgets::CorpusFidelityPanel* corpusPanel() const { return corpusPanel_; }
  // The workspace's last compressed student (nullptr before the first).
  std::shared_ptr<const WorkspaceResult> workspaceResult() const { return ws_; }
  // The workspace request for the panels' state (panelState(): what undo / redo
  // restore, the panels a user touched): what the next result will be.
  WorkspaceRequest workspaceRequest() const;
  int workspaceRedraws() const { return workspaceRedraws_; }
  // Token `index` of strip row `row` highlighted as row and column bands in the
  // heatmaps (its aligned group in the other model's map); (-1, -1) clears.
  void focusToken(int row, int index);
  // Teacher head shown when head counts differ and heads are not averaged.
  void setTeacherHead(int head);
  bool loading() const { return loadsPending_ > 0; }
  // Student layer s ↔ teacher layer mapping()[s].
  const std::vector<int>& mapping() const { return mapping_; }
  void selectHead(int studentLayer, int head);
  QStringList recentModels() const;
  // Writes the three shown maps: .npy float32 [3, S, S] (teacher, student,
  // teacher − student) or .csv in long format (map, query, key, weight).
  bool exportMaps(const QString& path, QString* error);
  // Loads examples from a corpus file into the example picker; column names
  // the .tsv/.csv column or .jsonl field (empty for .txt).
  bool openCorpus(const QString& path, const QString& column, QString* error);
  int exampleCount() const;
  void chooseExample(int index);
  // What a drop of a model folder / .safetensors file at windowPos does.
  void openDropped(const QString& path, QPoint windowPos);

  std::shared_ptr<const Comparison> shownComparison() const { return shown_; }
  // Renders now instead of after the throttle interval (tests, screenshots).
  void redrawNow();
  int redrawCount() const { return redraws_; }

 signals:
  void drawn();

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;  // after the heatmaps show a comparison

 private:
  void buildUi();
  void recordPanelChange(int panel);  // 0 quantization, 1 sparsity
  void rebuildPresetMenu();
  void openModel(Side side);
  void updateModelPanel(Side side);
  void scheduleRedraw();
  void redraw();
  void maybeScreenshot();
  void updateLossView(const Comparison& c);
  void rememberModel(const QString& path);
  void rebuildRecentMenus();

  std::unique_ptr<Session> session_;
  QUndoStack* undo_ = nullptr;
  PanelState state_;             // the panels' state as last recorded
  bool applyingState_ = false;   // panel signals caused by undo / redo / presets
  QMenu* presetMenu_ = nullptr;
  StartOptions options_;
  widgets::HeatmapView* views_[3] = {};
  QLabel* modelInfo_[2] = {};
  widgets::TokenStripView* tokenStrip_ = nullptr;
  std::shared_ptr<const Comparison> stripFor_;
  QLineEdit* textEdit_ = nullptr;
  QComboBox* examples_ = nullptr;
  QSpinBox* layerSpin_ = nullptr;
  QSpinBox* headSpin_ = nullptr;
  QSpinBox* teacherHeadSpin_ = nullptr;
  QAction* teacherHeadAction_[2] = {};  // label and spin box in the toolbar
  QCheckBox* headAverage_ = nullptr;
  QCheckBox* logScale_ = nullptr;
  QCheckBox* sharedRange_ = nullptr;
  QProgressBar* busy_ = nullptr;
  QToolButton* cancelButton_ = nullptr;
  int loadsPending_ = 0;
  bool sessionBusy_ = false;
  void updateBusy();
  void updateTokenStrip(const Comparison& c);
  std::vector<double> headLossStats(const Comparison& c, Side side, bool kl) const;
  // The three maps in the Quantized / Sparsified modes: the float model, its
  // variant (when `variant` is current for this text), their difference.
  void drawVariant(const Comparison& c, int layer, int head, bool average, int side,
                   const ForwardResult* variant, const QString& what, const QString& waiting);
  void buildQuantDock();
  void buildSparseDock();
  QDockWidget* addPanelDock(const QString& title, const QString& name, QWidget* panel);
  void sendSparsityPlan();
  widgets::SparsityPanel* sparsityPanel_ = nullptr;
  std::shared_ptr<const SparseResult> sparse_;
  bool sparseSent_ = false;
  widgets::QuantPanel* quantPanel_ = nullptr;
  widgets::DistillPanel* distillPanel_ = nullptr;

 public:
  // Called with the export dialog before it runs (tests fill it and accept it).
  std::function<void(QDialog&)> exportPreset_;

 private:
  void buildDistillDock();
  void buildAnalysisDocks();
  void sendWorkspacePlan(const PanelState& state);
  void drawWorkspace(const Comparison& c, int layer, int head, bool average);
  widgets::WorkspaceView* workspace_ = nullptr;
  widgets::TradeoffPanel* tradeoff_ = nullptr;
  widgets::CorpusFidelityPanel* corpusPanel_ = nullptr;
  QStackedWidget* stack_ = nullptr;
  std::shared_ptr<const WorkspaceResult> ws_;
  std::shared_ptr<const TauCurve> wsCurve_;  // the τ curve the Sparsity panel shows (workspace)
  WorkspaceRequest wsRequest_;
  bool wsSent_ = false;
  bool compareChosen_ = false;  // the user picked a view: no switch to the workspace
  int workspaceRedraws_ = 0;
  QString wsTensor_;            // the workspace's tensor target ("q", "ffn_in", …)
  QStringList wsTensorNames_;   // the tensor list it was chosen from
  int analysisKind_ = -1;       // 0 sweep, 1 corpus
  void updateDistillModels();
  QComboBox* compare_ = nullptr;
  std::shared_ptr<const QuantResult> quant_;
  bool quantSent_ = false;
  widgets::HeadGridView* grids_[2] = {};
  widgets::HeatmapView* lossView_ = nullptr;
  widgets::BarChartView* layerLoss_ = nullptr;
  QComboBox* lossKind_ = nullptr;
  QComboBox* gridStat_ = nullptr;
  std::vector<int> mapping_;
  int mappedFor_[2] = {-1, -1};  // (teacher, student) layer counts mapping_ was made for
  std::shared_ptr<const Comparison> gridsFor_[2];  // result the thumbnails show
  QMenu* recentMenus_[2] = {};
  QTimer redrawTimer_, textTimer_;
  QElapsedTimer sinceRedraw_;  // since the last redraw (the throttle's leading edge)
  std::shared_ptr<const Comparison> latest_, shown_;
  int redraws_ = 0;
  bool screenshotTaken_ = false;
};

}  // namespace attn::app
