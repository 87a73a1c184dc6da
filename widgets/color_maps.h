// Colour maps for heatmaps. QCustomPlot 2.1 has no perceptually uniform
// preset, so the stops are defined here.
#pragma once

#include <qcustomplot.h>

namespace attn::widgets {

// viridis (matplotlib): dark blue (low) to yellow (high), for probabilities.
QCPColorGradient viridisGradient();
// Diverging blue – white – red, for signed differences centred on 0.
QCPColorGradient divergingGradient();

}  // namespace attn::widgets
