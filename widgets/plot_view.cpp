#include "widgets/plot_view.h"

#include <qcustomplot.h>

#include <QVBoxLayout>

#include "widgets/plot_export.h"
#include "widgets/plot_theme.h"

namespace attn::widgets {

PlotView::PlotView(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(plot_);
  applyPlotPalette(plot_, palette());
  installSaveMenu(
      this, plot_, [this] { return imageTitle(); }, [this](QMenu& menu) { extendMenu(menu); });
}

void PlotView::changeEvent(QEvent* event) {
  if (event->type() == QEvent::PaletteChange) {
    applyPlotPalette(plot_, palette());
    paletteChanged();
  }
  QWidget::changeEvent(event);
}

}  // namespace attn::widgets
