#include "core/attention/align.h"

#include <algorithm>

#include "core/model/transformer.h"

namespace attn {

namespace {
bool special(const std::pair<int32_t, int32_t>& o) { return o.first >= o.second; }

// Index of the first and one-past-last non-special token.
std::pair<size_t, size_t> textRange(const std::vector<std::pair<int32_t, int32_t>>& off) {
  size_t b = 0, e = off.size();
  while (b < e && special(off[b])) ++b;
  while (e > b && special(off[e - 1])) --e;
  return {b, e};
}
}  // namespace

bool TokenAlignment::identity() const {
  if (droppedA != 0 || droppedB != 0 || groupA.size() != groupB.size()) return false;
  for (size_t i = 0; i < groupA.size(); ++i)
    if (groupA[i] != int(i) || groupB[i] != int(i)) return false;
  return true;
}

TokenAlignment alignTokens(const std::vector<std::pair<int32_t, int32_t>>& offA,
                           const std::vector<std::pair<int32_t, int32_t>>& offB) {
  TokenAlignment a;
  a.groupA.assign(offA.size(), -1);
  a.groupB.assign(offB.size(), -1);
  const auto [ab, ae] = textRange(offA);
  const auto [bb, be] = textRange(offB);

  // Start group: the leading special tokens, when both sides have some.
  if (ab > 0 && bb > 0) {
    for (size_t i = 0; i < ab; ++i) a.groupA[i] = a.groups;
    for (size_t i = 0; i < bb; ++i) a.groupB[i] = a.groups;
    a.spans.emplace_back(-1, -1);
    ++a.groups;
  }

  // Text tokens of both sides, swept in order of their start.
  struct Item {
    int32_t begin, end;
    int side;
    size_t index;
  };
  std::vector<Item> items;
  for (size_t i = ab; i < ae; ++i)
    if (!special(offA[i])) items.push_back({offA[i].first, offA[i].second, 0, i});
  for (size_t i = bb; i < be; ++i)
    if (!special(offB[i])) items.push_back({offB[i].first, offB[i].second, 1, i});
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.begin < y.begin; });
  std::vector<std::vector<const Item*>> raw;  // overlap components
  int32_t end = 0;
  for (const Item& it : items) {
    if (raw.empty() || it.begin >= end) {
      raw.emplace_back();
      end = it.end;
    }
    raw.back().push_back(&it);
    end = std::max(end, it.end);
  }
  // One-sided components join the previous two-sided group (or the next one).
  std::vector<const Item*> pending;
  int last = -1;
  auto assign = [&](const Item* it, int g) {
    (it->side == 0 ? a.groupA : a.groupB)[it->index] = g;
    auto& s = a.spans[g];
    s.first = std::min(s.first, it->begin);
    s.second = std::max(s.second, it->end);
  };
  for (const auto& comp : raw) {
    bool sides[2] = {false, false};
    for (const Item* it : comp) sides[it->side] = true;
    if (sides[0] && sides[1]) {
      last = a.groups++;
      a.spans.emplace_back(comp.front()->begin, comp.front()->end);
      for (const Item* it : pending) assign(it, last);
      pending.clear();
      for (const Item* it : comp) assign(it, last);
    } else if (last >= 0) {
      for (const Item* it : comp) assign(it, last);
    } else {
      pending.insert(pending.end(), comp.begin(), comp.end());
    }
  }

  // End group: the trailing special tokens, when both sides have some.
  if (ae < offA.size() && be < offB.size()) {
    for (size_t i = ae; i < offA.size(); ++i) a.groupA[i] = a.groups;
    for (size_t i = be; i < offB.size(); ++i) a.groupB[i] = a.groups;
    a.spans.emplace_back(-1, -1);
    ++a.groups;
  }
  a.droppedA = int(std::count(a.groupA.begin(), a.groupA.end(), -1));
  a.droppedB = int(std::count(a.groupB.begin(), a.groupB.end(), -1));
  return a;
}

std::vector<float> alignedMap(const float* map, int seq, const std::vector<int>& group,
                              int groups) {
  std::vector<double> sum(size_t(groups) * groups, 0.0);
  std::vector<int> members(groups, 0);
  bool dropped = false;
  for (int i = 0; i < seq; ++i) {
    const int gi = group[i];
    if (gi < 0) {
      dropped = true;
      continue;
    }
    ++members[gi];
    double* row = &sum[size_t(gi) * groups];
    const float* in = map + size_t(i) * seq;
    for (int j = 0; j < seq; ++j)
      if (group[j] >= 0) row[group[j]] += in[j];
  }
  std::vector<float> out(sum.size(), 0.0f);
  for (int g = 0; g < groups; ++g) {
    double* row = &sum[size_t(g) * groups];
    double total = 0.0;
    for (int h = 0; h < groups; ++h) total += row[h];
    // Mean over the group's queries; after dropping keys, rows sum to 1 again.
    const double scale =
        dropped ? (total > 0 ? 1.0 / total : 0.0) : (members[g] > 0 ? 1.0 / members[g] : 0.0);
    for (int h = 0; h < groups; ++h) out[size_t(g) * groups + h] = float(row[h] * scale);
  }
  return out;
}

ForwardResult alignedAttention(const ForwardResult& r, const std::vector<int>& group, int groups) {
  ForwardResult out;
  out.layers = r.layers;
  out.heads = r.heads;
  out.seq = groups;
  out.attention.reserve(size_t(r.layers) * r.heads * groups * groups);
  for (int l = 0; l < r.layers; ++l)
    for (int h = 0; h < r.heads; ++h) {
      const auto m = alignedMap(r.attentionMap(l, h), r.seq, group, groups);
      out.attention.insert(out.attention.end(), m.begin(), m.end());
    }
  return out;
}

}  // namespace attn
