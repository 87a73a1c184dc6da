#include "core/distill/mapping.h"

#include <sstream>

#include "core/attention/compare.h"

namespace attn::distill {

namespace {
Result<int> parseInt(const std::string& s, const std::string& what) {
  try {
    size_t used = 0;
    const int v = std::stoi(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  return makeError("'" + s + "' is not a " + what);
}
}  // namespace

Result<std::vector<int>> parseMapping(const std::string& text, int Lt, int Ls) {
  if (Lt <= 0 || Ls <= 0) return makeError("both models need layers");
  if (text.empty() || text == "uniform") return uniformLayerMap(Ls, Lt);
  if (text == "auto")
    return makeError("the 'auto' mapping needs a loss matrix (compare the models first)");
  std::vector<int> m(static_cast<size_t>(Ls), -1);
  if (text.rfind("last", 0) == 0) {
    int k = 1;
    if (text.size() > 4) {
      if (text[4] != ':') return makeError("expected last or last:K, got '" + text + "'");
      auto v = parseInt(text.substr(5), "layer count");
      if (!v) return v.error();
      k = *v;
    }
    if (k < 1 || k > Ls || k > Lt)
      return makeError("last:" + std::to_string(k) + " needs 1 ≤ K ≤ min(teacher " +
                       std::to_string(Lt) + ", student " + std::to_string(Ls) + " layers)");
    for (int i = 0; i < k; ++i) m[Ls - k + i] = Lt - k + i;
    return m;
  }
  std::stringstream ss(text);
  std::string pair;
  while (std::getline(ss, pair, ',')) {
    const size_t colon = pair.find(':');
    if (colon == std::string::npos)
      return makeError("mapping entry '" + pair +
                       "' is not student:teacher (or use uniform, last, last:K, auto)");
    auto s = parseInt(pair.substr(0, colon), "student layer");
    if (!s) return s.error();
    auto t = parseInt(pair.substr(colon + 1), "teacher layer");
    if (!t) return t.error();
    if (*s < 0 || *s >= Ls)
      return makeError("student layer " + std::to_string(*s) + " is outside 0.." +
                       std::to_string(Ls - 1));
    if (*t < 0 || *t >= Lt)
      return makeError("teacher layer " + std::to_string(*t) + " is outside 0.." +
                       std::to_string(Lt - 1));
    if (m[*s] >= 0) return makeError("student layer " + std::to_string(*s) + " is mapped twice");
    m[*s] = *t;
  }
  return m;
}

std::string mappingText(const std::vector<int>& mapping) {
  std::string out;
  for (size_t s = 0; s < mapping.size(); ++s) {
    if (mapping[s] < 0) continue;
    if (!out.empty()) out += ',';
    out += std::to_string(s) + ':' + std::to_string(mapping[s]);
  }
  return out;
}

}  // namespace attn::distill
