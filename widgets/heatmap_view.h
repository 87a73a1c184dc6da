// One attention heatmap: crisp cells, token labels on both axes (thinned to
// what fits), a colour scale, a hover tooltip "query → key: weight", a cell
// highlight for linked cursors, wheel zoom and drag pan. Items are created once;
// setMatrix() only replaces data (DESIGN rule 5).
#pragma once

#include <QStringList>
#include <QWidget>
#include <vector>

#include "widgets/plot_view.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QCPItemText;
class QCPTextElement;
class QCPRange;

namespace attn::widgets {

class HeatmapView : public PlotView {
  Q_OBJECT

 public:
  enum class Scale {
    Sequential,  // viridis over [lo, hi]; attention probabilities
    Diverging,   // blue–white–red symmetric around 0; differences
  };

  explicit HeatmapView(QWidget* parent = nullptr);

  // values: [rows, cols] row-major; row i = query token i, column j = key token j.
  void setMatrix(std::vector<float> values, int rows, int cols, QStringList rowLabels,
                 QStringList colLabels);
  // Replaces the data by a centred message (e.g. "no student loaded").
  void setMessage(const QString& message);
  void setTitle(const QString& title);
  void setAxisLabels(const QString& columns, const QString& rows);  // default "key", "query"
  void setScale(Scale scale);
  // Colour range: automatic from the data (sequential: [0, max]; diverging:
  // [−m, m] with m = max |value|) unless a fixed range is set (shared ranges).
  void setFixedRange(double lo, double hi);
  void setAutoRange();
  // Log colour scale (sequential only): log10 of values clamped to 1e-4.
  void setLogScale(bool on);
  void setHighlight(int row, int col);  // -1: none
  // Outlines rows and columns [first, last] (a token, or the tokens of one
  // aligned group, chosen in the token strip); first = -1 clears.
  void setFocusBand(int first, int last);
  std::pair<int, int> focusBand() const { return {focusFirst_, focusLast_}; }
  // Outlined cells (e.g. the current layer mapping in a loss matrix).
  void setMarkedCells(const std::vector<std::pair<int, int>>& cells);
  // Writes each cell's value in it (small matrices only: at most 400 cells).
  void setShowValues(bool on);
  // Visible cell window, for linking zoom/pan across views.
  void setVisibleWindow(double x0, double x1, double y0, double y1);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  float value(int row, int col) const { return values_[size_t(row) * cols_ + col]; }
  const QStringList& rowLabels() const { return rowLabels_; }
  const QStringList& colLabels() const { return colLabels_; }
  QString tooltipFor(int row, int col) const;
  // Colour-map cell as drawn (after the log transform, if on).
  double drawnValue(int row, int col) const;
  void colorRange(double* lo, double* hi) const;
  QString title() const { return titleText_; }
  bool showsMessage() const { return hasMessage_; }
  void replotNow();  // draw pending changes immediately (screenshots)
  // Lays the plot out at `size` and thins the axis labels for it: for a view that
  // is drawn off screen (the PDF report) at a size it never had as a widget.
  void labelTicksFor(const QSize& size);
  // Saves the plot as .png (2× resolution), .svg or .pdf, chosen by the suffix.
  bool saveImage(const QString& path, QString* error);

 signals:
  void cellHovered(int row, int col);  // (-1, -1) when the mouse leaves the cells
  void cellClicked(int row, int col);
  void windowChanged(double x0, double x1, double y0, double y1);

 protected:
  void paletteChanged() override;
  QString imageTitle() const override { return titleText_; }
  void extendMenu(QMenu& menu) override;

 private:
  void applyRange();
  void updateTicks();
  void onMouseMove(QMouseEvent* event);
  bool cellAt(QPointF pos, int* row, int* col) const;
  void updateValueTexts();
  void updateFocusBand();

  QCPColorMap* map_;
  QCPColorScale* colorScale_;
  QCPItemRect* highlight_;
  QCPItemRect* focusRows_;
  QCPItemRect* focusCols_;
  int focusFirst_ = -1, focusLast_ = -1;
  QCPItemText* message_;
  QCPTextElement* title_;
  std::vector<QCPItemRect*> marks_;       // grown on demand, never deleted
  std::vector<QCPItemText*> valueTexts_;  // likewise
  bool showValues_ = false;
  std::vector<float> values_;
  int rows_ = 0, cols_ = 0;
  QStringList rowLabels_, colLabels_;
  QString titleText_;
  Scale scale_ = Scale::Sequential;
  bool fixedRange_ = false, log_ = false, hasMessage_ = true;
  double lo_ = 0, hi_ = 1;
  int hoverRow_ = -1, hoverCol_ = -1;
  bool syncing_ = false;
};

}  // namespace attn::widgets
