#include "core/text/corpus.h"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace attn::text {

namespace {
enum class Kind { Txt, Tsv, Csv, Jsonl };

Result<Kind> kindOf(const std::filesystem::path& p) {
  const std::string e = p.extension().string();
  if (e == ".txt") return Kind::Txt;
  if (e == ".tsv") return Kind::Tsv;
  if (e == ".csv") return Kind::Csv;
  if (e == ".jsonl") return Kind::Jsonl;
  return makeError(p.string() + ": unknown corpus type '" + e + "' (.txt, .tsv, .csv, .jsonl)");
}

Result<std::string> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return makeError("cannot open '" + p.string() + "'");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= text.size()) {
    size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    std::string l = text.substr(p, e - p);
    if (!l.empty() && l.back() == '\r') l.pop_back();
    out.push_back(std::move(l));
    p = e + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// Rows of delimited text; CSV honours quotes (RFC 4180), TSV splits on tabs.
Result<std::vector<std::vector<std::string>>> table(const std::string& text, char sep, bool quotes,
                                                    const std::string& name) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool inQuotes = false;
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (inQuotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        inQuotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (quotes && c == '"' && field.empty()) {
      inQuotes = true;
    } else if (c == sep) {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
      row.clear();
      ++line;
    } else {
      field += c;
    }
  }
  if (inQuotes)
    return makeError(name + ": a quoted field opened before line " + std::to_string(line) +
                     " is never closed");
  if (!field.empty() || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}
}  // namespace

Result<std::vector<std::string>> corpusColumns(const std::filesystem::path& path) {
  auto kind = kindOf(path);
  if (!kind) return kind.error();
  auto text = slurp(path);
  if (!text) return text.error();
  if (*kind == Kind::Txt) return std::vector<std::string>{};
  if (*kind == Kind::Jsonl) {
    for (const std::string& l : lines(*text)) {
      if (l.empty()) continue;
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return makeError(path.string() + ": line 1 is not a JSON object");
      std::vector<std::string> keys;
      for (auto it = j.begin(); it != j.end(); ++it)
        if (it.value().is_string()) keys.push_back(it.key());
      return keys;
    }
    return std::vector<std::string>{};
  }
  auto rows = table(*text, *kind == Kind::Tsv ? '\t' : ',', *kind == Kind::Csv, path.string());
  if (!rows) return rows.error();
  if (rows->empty()) return std::vector<std::string>{};
  return rows->front();
}

Result<std::vector<std::string>> readCorpus(const std::filesystem::path& path,
                                            const std::string& column) {
  auto kind = kindOf(path);
  if (!kind) return kind.error();
  auto text = slurp(path);
  if (!text) return text.error();
  std::vector<std::string> out;
  const std::string name = path.string();
  if (*kind == Kind::Txt) {
    for (auto& l : lines(*text))
      if (!l.empty()) out.push_back(std::move(l));
    return out;
  }
  if (*kind == Kind::Jsonl) {
    size_t n = 0;
    for (const std::string& l : lines(*text)) {
      ++n;
      if (l.empty()) continue;
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return makeError(name + ": line " + std::to_string(n) + " is not a JSON object");
      auto it = j.find(column);
      if (it == j.end() || !it->is_string())
        return makeError(name + ": line " + std::to_string(n) + " has no string field \"" + column +
                         "\"");
      out.push_back(it->get<std::string>());
    }
    return out;
  }
  auto rows = table(*text, *kind == Kind::Tsv ? '\t' : ',', *kind == Kind::Csv, name);
  if (!rows) return rows.error();
  if (rows->empty()) return out;
  const auto& header = rows->front();
  size_t col = header.size();
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == column) col = i;
  if (col == header.size()) return makeError(name + ": no column named \"" + column + "\"");
  for (size_t r = 1; r < rows->size(); ++r) {
    const auto& row = (*rows)[r];
    if (col >= row.size())
      return makeError(name + ": row " + std::to_string(r + 1) + " has " +
                       std::to_string(row.size()) + " fields, column \"" + column + "\" is field " +
                       std::to_string(col + 1));
    if (!row[col].empty()) out.push_back(row[col]);
  }
  return out;
}

}  // namespace attn::text
