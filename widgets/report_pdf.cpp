#include "widgets/report_pdf.h"

#include <qcustomplot.h>

#include <QDateTime>
#include <QFileInfo>
#include <QPdfWriter>
#include <QRegularExpression>
#include <QSaveFile>
#include <algorithm>
#include <cmath>

#include "widgets/bar_chart_view.h"
#include "widgets/heatmap_view.h"
#include "widgets/histogram_view.h"

namespace attn::widgets {

namespace {

constexpr int kDpi = 96;        // page units: A4 = 794 × 1123
constexpr int kMargin = 36;
constexpr int kGap = 10;

QStringList tokenLabels(const std::vector<std::string>& tokens) {
  QStringList out;
  for (const auto& t : tokens) out << QString::fromStdString(t);
  return out;
}

QString megabytes(int64_t bytes) { return QString::number(double(bytes) / 1e6, 'f', 2) + " MB"; }

// A plot widget drawn into the page at `cell` (vector output).
void drawPlot(QCPPainter& painter, PlotView& view, const QRect& cell) {
  view.resize(cell.size());
  painter.save();
  painter.translate(cell.topLeft());
  view.plot()->toPainter(&painter, cell.width(), cell.height());
  painter.restore();
}

void drawMessage(QPainter& painter, const QRect& cell, const QString& text) {
  painter.save();
  painter.setPen(QColor(120, 120, 120));
  painter.drawRect(cell.adjusted(0, 0, -1, -1));
  painter.drawText(cell, Qt::AlignCenter | Qt::TextWordWrap, text);
  painter.restore();
}

// "encoder.layer.3.attention.self.query.weight" → "L3 query"; "h.1.mlp.c_fc.weight" → "L1 c_fc".
QString shortName(const std::string& name) {
  static const QRegularExpression layer(R"((?:^|\.)(?:layer|h)\.(\d+)\.)");
  QString s = QString::fromStdString(name);
  s.remove(QRegularExpression(R"(\.weight$)"));
  const auto m = layer.match(s);
  QString part = s.section('.', -1);
  if (part == "dense") part = s.section('.', -2, -2);
  if (part == "output") part = s.contains("attention") ? "o" : "ffn_out";
  static const std::pair<const char*, const char*> names[] = {
      {"query", "q"},     {"key", "k"},        {"value", "v"},         {"intermediate", "ffn_in"},
      {"q_lin", "q"},     {"k_lin", "k"},      {"v_lin", "v"},         {"out_lin", "o"},
      {"lin1", "ffn_in"}, {"lin2", "ffn_out"}, {"c_fc", "ffn_in"}};
  for (const auto& [from, to] : names)
    if (part == from) part = to;
  if (part == "c_proj") part = s.contains("mlp") ? "ffn_out" : "o";
  return m.hasMatch() ? QString("L%1 %2").arg(m.captured(1), part) : part;
}

}  // namespace

static void drawReport(QCPPainter& painter, const QSize& page, const compress::ReportFigures& f,
                       const ReportPdfHeader& header) {
  const int W = page.width(), H = page.height();
  const int inner = W - 2 * kMargin;
  int y = kMargin;

  // Header.
  QFont title = painter.font();
  title.setPointSizeF(15);
  title.setBold(true);
  painter.setFont(title);
  painter.drawText(QRect(kMargin, y, inner, 26), Qt::AlignLeft | Qt::AlignVCenter,
                   QObject::tr("Compression report — %1").arg(QFileInfo(header.model).fileName()));
  y += 30;
  QFont body = painter.font();
  body.setPointSizeF(8.5);
  body.setBold(false);
  painter.setFont(body);
  const double ratio = f.bytesAfter > 0 ? double(f.bytesBefore) / double(f.bytesAfter) : 1.0;
  const QStringList lines = {
      QObject::tr("Model: %1    →    %2").arg(header.model, header.output),
      QObject::tr("Plan: %1").arg(QString::fromStdString(f.planText.empty() ? "no weight quantization"
                                                                            : f.planText)),
      QObject::tr("Weights: %1 → %2 (%3×), %4 bits per quantized weight")
          .arg(megabytes(f.bytesBefore), megabytes(f.bytesAfter))
          .arg(ratio, 0, 'f', 2)
          .arg(f.bitsPerWeight, 0, 'f', 2),
      QObject::tr("Attention against the original (%1 tokens): KL %2, JS %3 (mean over heads); "
                  "final hidden-state cosine %4")
          .arg(f.tokens.size())
          .arg(f.klMean, 0, 'g', 4)
          .arg(f.jsMean, 0, 'g', 4)
          .arg(f.hiddenCosine, 0, 'f', 5),
      QObject::tr("Attention Studio %1, %2")
          .arg(header.version, QDateTime::currentDateTime().toString(Qt::ISODate))};
  for (const QString& line : lines) {
    const QRect r = painter.boundingRect(QRect(kMargin, y, inner, 200), Qt::TextWordWrap, line);
    painter.drawText(QRect(kMargin, y, inner, r.height()), Qt::TextWordWrap, line);
    y += r.height() + 2;
  }
  y += kGap;

  // Row 1: the most changed heads, before (top) and after (bottom).
  const int cols3 = (inner - 2 * kGap) / 3;
  const int mapH = 215;
  QFont section = body;
  section.setBold(true);
  section.setPointSizeF(9.5);
  auto heading = [&](const QString& text) {
    painter.setFont(section);
    painter.drawText(QRect(kMargin, y, inner, 16), Qt::AlignLeft | Qt::AlignVCenter, text);
    painter.setFont(body);
    y += 18;
  };
  heading(QObject::tr("Most changed heads (attention KL to the original), before and after"));
  const QStringList tokens = tokenLabels(f.tokens);
  const int S = int(f.tokens.size());
  for (int i = 0; i < 3; ++i) {
    const QRect top(kMargin + i * (cols3 + kGap), y, cols3, mapH);
    const QRect bottom = top.translated(0, mapH + kGap);
    if (i >= int(f.mostChanged.size())) {
      drawMessage(painter, top, QObject::tr("—"));
      drawMessage(painter, bottom, QObject::tr("—"));
      continue;
    }
    const auto& h = f.mostChanged[size_t(i)];
    float hi = 0.0f;
    for (float v : h.before) hi = std::max(hi, v);
    for (float v : h.after) hi = std::max(hi, v);
    for (int k = 0; k < 2; ++k) {
      HeatmapView view;
      view.setFixedRange(0.0, std::max(1e-6f, hi));
      view.setMatrix(k == 0 ? h.before : h.after, S, S, tokens, tokens);
      view.labelTicksFor((k == 0 ? top : bottom).size());  // token labels for the cell's size
      view.setTitle(k == 0 ? QObject::tr("L%1 h%2 original").arg(h.layer).arg(h.head)
                           : h.removed ? QObject::tr("head removed, KL %1").arg(h.kl, 0, 'g', 3)
                                       : QObject::tr("compressed, KL %1").arg(h.kl, 0, 'g', 3));
      drawPlot(painter, view, k == 0 ? top : bottom);
    }
  }
  y += 2 * mapH + kGap + 14;

  // Row 2: error histograms of the worst-quantized tensors and the per-layer KL.
  const int rowH = 205;
  heading(QObject::tr("Quantization error (w − ŵ) of the lowest-SQNR tensors; attention KL per layer"));
  for (int i = 0; i < 2; ++i) {
    const QRect cell(kMargin + i * (cols3 + kGap), y, cols3, rowH);
    if (i >= int(f.errors.size())) {
      drawMessage(painter, cell, QObject::tr("no quantized tensor"));
      continue;
    }
    const auto& e = f.errors[size_t(i)];
    HistogramView view;
    view.setHistogram(e.errors.lo, e.errors.hi, e.errors.counts,
                      QObject::tr("w − ŵ  (%1)").arg(QString::fromStdString(e.method)));
    view.setTitle(QObject::tr("%1, SQNR %2 dB").arg(shortName(e.tensor)).arg(e.sqnrDb, 0, 'f', 1));
    drawPlot(painter, view, cell);
  }
  {
    const QRect cell(kMargin + 2 * (cols3 + kGap), y, cols3, rowH);
    BarChartView view;
    QStringList labels;
    for (int l = 0; l < int(f.layerKl.size()); ++l) labels << QObject::tr("L%1").arg(l);
    view.setBars(labels, f.layerKl, QObject::tr("attention KL"));
    drawPlot(painter, view, cell);
  }
  y += rowH + kGap + 14;

  // Row 3: sparsity patterns.
  heading(QObject::tr("Sparsity patterns of the sparsest weight masks (kept fraction per block)"));
  const int patH = std::min(rowH, H - kMargin - y);
  if (f.patterns.empty())
    drawMessage(painter, QRect(kMargin, y, inner, std::min(patH, 60)),
                QObject::tr("No weight was pruned."));
  for (int i = 0; i < int(std::min<size_t>(3, f.patterns.size())); ++i) {
    const QRect cell(kMargin + i * (cols3 + kGap), y, cols3, patH);
    const auto& p = f.patterns[size_t(i)];
    QStringList rl, cl;
    for (int r = 0; r < p.density.rows; ++r) rl << QString::number(r * p.density.rowStep);
    for (int c = 0; c < p.density.cols; ++c) cl << QString::number(c * p.density.colStep);
    HeatmapView view;
    view.setFixedRange(0.0, 1.0);
    view.setAxisLabels(QObject::tr("input"), QObject::tr("output"));
    view.setMatrix(p.density.values, p.density.rows, p.density.cols, rl, cl);
    view.setTitle(QObject::tr("%1: %2 % zero").arg(shortName(p.tensor)).arg(100 * p.sparsity, 0, 'f', 1));
    view.labelTicksFor(cell.size());  // row / column indices for the cell's size
    drawPlot(painter, view, cell);
  }
}

bool writeReportPdf(const QString& path, const compress::ReportFigures& f,
                    const ReportPdfHeader& header, QString* error) {
  QSaveFile file(path);  // atomic: written beside the target, renamed on commit
  if (!file.open(QIODevice::WriteOnly)) {
    if (error) *error = QObject::tr("cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  QPdfWriter pdf(&file);
  pdf.setPageSize(QPageSize(QPageSize::A4));
  pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
  pdf.setResolution(kDpi);
  pdf.setTitle(QObject::tr("Attention Studio compression report"));
  pdf.setCreator("Attention Studio " + header.version);
  QCPPainter painter;
  if (!painter.begin(&pdf)) {
    if (error) *error = QObject::tr("cannot start the PDF %1").arg(path);
    return false;
  }
  painter.setMode(QCPPainter::pmVectorized);
  painter.setMode(QCPPainter::pmNoCaching);
  drawReport(painter, QSize(pdf.width(), pdf.height()), f, header);
  if (!painter.end() || !file.commit()) {
    if (error) *error = QObject::tr("cannot write %1").arg(path);
    return false;
  }
  return true;
}

QImage reportImage(const compress::ReportFigures& f, const ReportPdfHeader& header, double scale) {
  const QSize page(794, 1123);  // A4 at 96 dpi, as the PDF
  QImage img(page * scale, QImage::Format_ARGB32);
  img.setDevicePixelRatio(scale);
  img.fill(Qt::white);
  QCPPainter painter(&img);
  painter.setRenderHint(QPainter::Antialiasing);
  drawReport(painter, page, f, header);
  painter.end();
  return img;
}

}  // namespace attn::widgets
