#!/usr/bin/env bash
# The CUDA checks of training, prepared to run on a lent GPU machine (a bare image with its
# own python3, torch and PyTorch Geometric) as one short command each, from the repo root:
#
#   bash benchmarks/cuda_check.sh tests   # tests/training/test_cuda.py (CPU = CUDA, bf16
#                                         # training eager and compiled, sync-free batches)
#   bash benchmarks/cuda_check.sh epoch   # one 5M-sample epoch, bf16, compiled with CUDA
#                                         # graphs (train.compile=reduce-overhead), then eager
#
# Wheels of what gogooku3.settings imports (pydantic & co., see
# benchmarks/results/train_throughput.md) are installed from .whl/ when it is there.
set -euo pipefail
command -v nvidia-smi >/dev/null || { echo "cuda_check: no NVIDIA GPU on this machine" >&2; exit 2; }
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD:$PWD/plugins" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torch_geometric as g; print('torch', torch.__version__, 'pyg', g.__version__)"
case "${1:-tests}" in
  tests)
    python3 -m pytest -q --noconftest -p no:cacheprovider tests/training/test_cuda.py ;;
  epoch)
    for compile in reduce-overhead none; do
      python3 benchmarks/train_throughput.py --device cuda --epoch-days 1250 \
        --only epoch_bf16 --compile "$compile"
    done ;;
  *)
    echo "usage: bash benchmarks/cuda_check.sh tests|epoch" >&2; exit 2 ;;
esac
