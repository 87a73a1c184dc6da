// Shared helpers for the engine tests: fixture paths, temporary files and a
// checkTensor-style comparison that reports the largest difference and where.
#pragma once

#include <QTest>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace attn::test {

inline std::filesystem::path dataDir() { return ATTN_TEST_DATA_DIR; }

inline std::string readBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void writeBytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct MaxDiff {
  double value = 0.0;
  size_t index = 0;
  double actual = 0.0, expected = 0.0;
  bool nonFinite = false;
};

template <class A, class B>
MaxDiff maxAbsDiff(const A* actual, const B* expected, size_t n) {
  MaxDiff d;
  for (size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    if (!std::isfinite(a) || !std::isfinite(e)) {
      if (!d.nonFinite) d = MaxDiff{INFINITY, i, a, e, true};
      continue;
    }
    const double diff = std::abs(a - e);
    if (!d.nonFinite && diff > d.value) d = MaxDiff{diff, i, a, e, false};
  }
  return d;
}

// QVERIFY that two arrays agree within tol, printing the worst element.
#define ATTN_CHECK_CLOSE(A_, E_, N_, TOL_, WHAT_)                                       \
  do {                                                                                  \
    const auto d_ = ::attn::test::maxAbsDiff((A_), (E_), (N_));                         \
    const QByteArray msg_ = QByteArray(WHAT_) + ": max |diff| " +                       \
                            QByteArray::number(d_.value, 'g', 4) + " at flat index " +  \
                            QByteArray::number(qulonglong(d_.index)) + " (got " +       \
                            QByteArray::number(d_.actual, 'g', 9) + ", want " +         \
                            QByteArray::number(d_.expected, 'g', 9) + "), tolerance " + \
                            QByteArray::number(double(TOL_), 'g', 3);                   \
    QVERIFY2(!d_.nonFinite && d_.value <= (TOL_), msg_.constData());                    \
  } while (0)

// A fresh temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/attn-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

}  // namespace attn::test
