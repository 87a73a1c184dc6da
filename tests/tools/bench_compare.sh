#!/usr/bin/env bash
# Side-by-side forward benchmark: attnstudio-cli vs PyTorch (Debian's python3-torch with
# OpenBLAS), same machine, same run, alternating so both see the same conditions.
#   tests/tools/bench_compare.sh [SEQ] [THREADS] [ROUNDS]
# Needs a release build and: apt-get install python3-torch python3-numpy libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/../.."
seq=${1:-128}; threads=${2:-2}; rounds=${3:-3}
model=/tmp/attn-bench-bert-base
[ -f "$model/model.safetensors" ] || /usr/bin/python3 tests/tools/make_bench_model.py "$model" >/dev/null
cli=build/release/app/attnstudio-cli
for r in $(seq "$rounds"); do
  "$cli" bench "$model" --seq "$seq" --runs 20 --threads "$threads" --json |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("attnstudio  median %.1f ms  min %.1f ms  peak RSS %.0f MB" % (j["forward_ms_median"], j["forward_ms_min"], j["peak_rss_mb"]))'
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tests/tools/bench_torch.py --seq "$seq" --threads "$threads" --runs 20 |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("pytorch     median %.1f ms  min %.1f ms  peak RSS %.0f MB" % (j["forward_ms_median"], j["forward_ms_min"], j["peak_rss_mb"]))'
done
