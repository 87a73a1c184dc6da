// Saving plots as images (PNG at 2× resolution, SVG, PDF, chosen by the file
// suffix) and the right-click "Save image as…" menu every plot offers.
#pragma once

#include <QString>
#include <functional>

class QCustomPlot;
class QMenu;
class QWidget;

namespace attn::widgets {

bool savePlotImage(QCustomPlot* plot, const QString& path, const QString& title, QString* error);

// Right-click on `plot` opens a menu with "Save image as…"; `extend` may add entries.
void installSaveMenu(QWidget* owner, QCustomPlot* plot, std::function<QString()> title,
                     std::function<void(QMenu&)> extend = {});

}  // namespace attn::widgets
