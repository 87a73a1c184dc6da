#include "app/cli/cli_util.h"

#include "core/compress/export.h"

#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <iostream>
#include <thread>

#include "core/text/corpus.h"

namespace attn::cli {

// Invalid UTF-8 (a Latin-1 file name, a vocabulary entry) is replaced, not thrown.
void printJson(const Json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

int fail(const std::string& msg) {
  std::cerr << "error: " << msg << '\n';
  return 1;
}

Result<std::shared_ptr<const Model>> load(const std::string& path) {
  auto m = loadModel(path);
  if (m)
    for (const auto& w : (*m)->warnings) std::cerr << "warning: " << w << '\n';
  return m;
}

int threadCount(int requested) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return requested > 0 ? requested : hw;
}

double peakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

Result<std::vector<int32_t>> parseIntList(const std::string& s, const char* what) {
  std::vector<int32_t> out;
  size_t p = 0;
  while (p < s.size()) {
    size_t e = s.find(',', p);
    if (e == std::string::npos) e = s.size();
    const std::string item = s.substr(p, e - p);
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      if (v < INT32_MIN || v > INT32_MAX)
        return makeError(std::string(what) + ": " + item + " is out of range");
      out.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return makeError(std::string(what) + ": '" + item + "' is not an integer");
    }
    p = e + 1;
  }
  if (out.empty()) return makeError(std::string(what) + " is empty");
  return out;
}

// The inputs a command runs on: --ids, --text, every example of --corpus, or a fixed sentence.
Result<std::vector<std::vector<int32_t>>> inputsFor(const Model& m, const std::string& ids,
                                                    const std::string& text,
                                                    const std::string& corpus,
                                                    const std::string& column, int* truncated) {
  std::vector<std::vector<int32_t>> out;
  if (!ids.empty()) {
    auto parsed = parseIntList(ids, "--ids");
    if (!parsed) return parsed.error();
    out.push_back(*parsed);
    return out;
  }
  if (!m.tokenizer) return makeError("the model has no tokenizer files; pass --ids instead");
  std::vector<std::string> texts;
  if (!corpus.empty()) {
    auto r = text::readCorpus(corpus, column);
    if (!r) return r.error();
    texts = std::move(*r);
    if (texts.empty()) return makeError("'" + corpus + "' has no examples");
  } else {
    texts.push_back(text.empty() ? "The quick brown fox jumps over the lazy dog." : text);
  }
  for (const auto& t : texts) {
    auto e = m.tokenizer->encode(t).ids;
    if (e.size() > size_t(m.config.maxPositions)) {
      e.resize(size_t(m.config.maxPositions));
      ++*truncated;
    }
    out.push_back(std::move(e));
  }
  return out;
}

Status writeModelAs(const std::string& out, const std::string& format, const Model& source,
                    const compress::AppliedPlan& applied, compress::CompressionPlan plan,
                    const std::string& sourcePath) {
  const auto f = compress::exportFormatFromName(format);
  if (!f) return makeError("--format must be hf, compressed or h5");
  if (plan.student.empty()) plan.student = sourcePath;
  compress::ExportOptions eo;
  eo.format = *f;
  return compress::exportModel(out, source, applied, plan, eo);
}

}  // namespace attn::cli
