// Base of every plot widget: owns the QCustomPlot (the rest of the app does
// not need to know the plot library), follows the palette (light/dark), and
// offers "Save image as…" (PNG, SVG, PDF) on right-click.
#pragma once

#include <QString>
#include <QWidget>

class QCustomPlot;
class QMenu;

namespace attn::widgets {

class PlotView : public QWidget {
  Q_OBJECT

 public:
  QCustomPlot* plot() const { return plot_; }

 protected:
  explicit PlotView(QWidget* parent);
  void changeEvent(QEvent* event) override;
  // After the palette was applied to the plot: recolour the view's own items.
  virtual void paletteChanged() {}
  // Title written into saved SVGs.
  virtual QString imageTitle() const { return {}; }
  // Extra entries of the right-click menu.
  virtual void extendMenu(QMenu&) {}

  QCustomPlot* plot_;
};

}  // namespace attn::widgets
