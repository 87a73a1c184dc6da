#include "widgets/plot_theme.h"

#include <qcustomplot.h>

namespace attn::widgets {

namespace {
void styleAxis(QCPAxis* ax, const QColor& fg, const QColor& grid) {
  ax->setBasePen(QPen(fg, 1));
  ax->setTickPen(QPen(fg, 1));
  ax->setSubTickPen(QPen(fg, 1));
  ax->setTickLabelColor(fg);
  ax->setLabelColor(fg);
  ax->grid()->setPen(QPen(grid, 1, Qt::DotLine));
  ax->grid()->setZeroLinePen(Qt::NoPen);
}
}  // namespace

void applyPlotPalette(QCustomPlot* plot, const QPalette& palette) {
  const QColor bg = palette.color(QPalette::Window);
  const QColor fg = palette.color(QPalette::WindowText);
  QColor grid = fg;
  grid.setAlphaF(0.25f);
  plot->setBackground(bg);
  for (QCPAxisRect* r : plot->axisRects()) {
    r->setBackground(Qt::NoBrush);
    for (QCPAxis* ax : r->axes()) styleAxis(ax, fg, grid);
  }
  for (QCPLayoutElement* e : plot->plotLayout()->elements(true)) {
    if (auto* t = qobject_cast<QCPTextElement*>(e)) t->setTextColor(fg);
    if (auto* s = qobject_cast<QCPColorScale*>(e)) styleAxis(s->axis(), fg, grid);
  }
  plot->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace attn::widgets
