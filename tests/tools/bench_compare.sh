#!/usr/bin/env bash
# Side-by-side forward benchmark: attnstudio-cli vs PyTorch (Debian's python3-torch with
# OpenBLAS), same machine, same run, alternating so both see the same conditions.
#   tests/tools/bench_compare.sh [SEQ] [THREADS] [ROUNDS]
# Needs a release build and: apt-get install python3-torch python3-numpy libopenblas0-pthread
# PyTorch runs twice a round with OpenBLAS on THREADS threads: once with THREADS intra-op
# threads, once with 1 (on 2 cores the two thread pools otherwise compete).
set -euo pipefail
cd "$(dirname "$0")/../.."
seq=${1:-128}; threads=${2:-2}; rounds=${3:-3}
model=/tmp/attn-bench-bert-base
[ -f "$model/model.safetensors" ] || /usr/bin/python3 tests/tools/make_bench_model.py "$model" >/dev/null
cli=build/release/app/attnstudio-cli
fmt='import json,sys; j=json.load(sys.stdin); print("%-34s median %7.1f ms  min %7.1f ms  peak RSS %5.0f MB" % (sys.argv[1], j["forward_ms_median"], j["forward_ms_min"], j["peak_rss_mb"]))'
torch() {  # $1 label, $2 model, $3 intra-op threads
  OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tests/tools/bench_torch.py \
    --model "$2" --seq "$seq" --threads "$3" --runs 20 | /usr/bin/python3 -c "$fmt" "$1"
}
for r in $(seq "$rounds"); do
  echo "round $r (seq $seq, $threads threads)"
  "$cli" bench "$model" --seq "$seq" --runs 20 --threads "$threads" --json |
    /usr/bin/python3 -c "$fmt" "bert-base  attnstudio"
  torch "bert-base  pytorch (intra-op $threads)" bert-base "$threads"
  [ "$threads" -gt 1 ] && torch "bert-base  pytorch (intra-op 1)" bert-base 1
  "$cli" bench --synthetic gpt2-small --seq "$seq" --runs 20 --threads "$threads" --json |
    /usr/bin/python3 -c "$fmt" "gpt2-small attnstudio"
  torch "gpt2-small pytorch (intra-op $threads)" gpt2-small "$threads"
  [ "$threads" -gt 1 ] && torch "gpt2-small pytorch (intra-op 1)" gpt2-small 1
done
