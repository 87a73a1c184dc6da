// Plots follow the widget palette (light or dark system themes): background,
// axes, tick labels, titles and colour-scale axes take the palette's colours.
#pragma once

#include <QPalette>

class QCustomPlot;

namespace attn::widgets {

// Applies `palette` to every axis rect, colour scale and text element of `plot`.
void applyPlotPalette(QCustomPlot* plot, const QPalette& palette);

}  // namespace attn::widgets
