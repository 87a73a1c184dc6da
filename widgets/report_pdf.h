// The one-page PDF report of an export (QPdfWriter, A4 portrait, vector plots):
// a header with the plan and its cost (size before → after, bits per weight,
// attention KL / JS, hidden-state cosine), the most changed heads before and after
// compression, the quantization error histograms of the worst tensors, the
// sparsity patterns of the sparsest weight masks, and the attention KL per layer.
// Drawn from compress::ReportFigures (computed by the engine); GUI thread only.
#pragma once

#include <QImage>
#include <QString>

#include "core/compress/report.h"

namespace attn::widgets {

struct ReportPdfHeader {
  QString model;    // path of the model that was compressed
  QString output;   // where the export went, and its format
  QString version;  // tool version
};

bool writeReportPdf(const QString& path, const compress::ReportFigures& figures,
                    const ReportPdfHeader& header, QString* error);
// The same page as an image (to look at, and for tests).
QImage reportImage(const compress::ReportFigures& figures, const ReportPdfHeader& header,
                   double scale = 1.0);

}  // namespace attn::widgets
