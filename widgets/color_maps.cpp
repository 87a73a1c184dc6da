#include "widgets/color_maps.h"

namespace attn::widgets {

namespace {
// Evenly spaced stops, interpolated in RGB.
template <size_t N>
QCPColorGradient gradientFrom(const QRgb (&stops)[N]) {
  QCPColorGradient g;
  g.clearColorStops();
  for (size_t i = 0; i < N; ++i) g.setColorStopAt(double(i) / (N - 1), QColor(stops[i]));
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  return g;
}
}  // namespace

QCPColorGradient viridisGradient() {
  // 9 samples of matplotlib's viridis.
  static const QRgb kStops[] = {0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21918c,
                                0x28ae80, 0x5ec962, 0xaadc32, 0xfde725};
  return gradientFrom(kStops);
}

QCPColorGradient divergingGradient() {
  // ColorBrewer RdBu (reversed): negative blue, zero white, positive red.
  static const QRgb kStops[] = {0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7,
                                0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b};
  return gradientFrom(kStops);
}

}  // namespace attn::widgets
