#include "widgets/plot_export.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QSvgGenerator>

namespace attn::widgets {

bool savePlotImage(QCustomPlot* plot, const QString& path, const QString& title, QString* error) {
  const int w = plot->width(), h = plot->height();
  bool ok = false;
  if (path.endsWith(".png", Qt::CaseInsensitive)) {
    ok = plot->savePng(path, w, h, 2.0);
  } else if (path.endsWith(".pdf", Qt::CaseInsensitive)) {
    ok = plot->savePdf(path, w, h);
  } else if (path.endsWith(".svg", Qt::CaseInsensitive)) {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(QSize(w, h));
    svg.setViewBox(QRect(0, 0, w, h));
    svg.setTitle(title);
    QCPPainter painter;
    ok = painter.begin(&svg);
    if (ok) {
      plot->toPainter(&painter, w, h);
      ok = painter.end();
    }
  } else {
    if (error) *error = QObject::tr("use a .png, .svg or .pdf file name");
    return false;
  }
  if (!ok && error) *error = QObject::tr("cannot write %1").arg(path);
  return ok;
}

void installSaveMenu(QWidget* owner, QCustomPlot* plot, std::function<QString()> title,
                     std::function<void(QMenu&)> extend) {
  plot->setContextMenuPolicy(Qt::CustomContextMenu);
  QObject::connect(plot, &QWidget::customContextMenuRequested, owner,
                   [owner, plot, title, extend](const QPoint& at) {
                     QMenu menu(owner);
                     menu.addAction(QObject::tr("Save image as…"), owner, [owner, plot, title] {
                       const QString path = QFileDialog::getSaveFileName(
                           owner, QObject::tr("Save image"), QString(),
                           QObject::tr("PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"));
                       QString error;
                       if (!path.isEmpty() && !savePlotImage(plot, path, title(), &error))
                         QMessageBox::warning(owner, QObject::tr("Could not save"), error);
                     });
                     if (extend) extend(menu);
                     menu.exec(plot->mapToGlobal(at));
                   });
}

}  // namespace attn::widgets
