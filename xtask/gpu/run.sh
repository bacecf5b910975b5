#!/usr/bin/env bash
# The GPU check, run on a bare GPU machine from the bundle `cargo xtask gpu-bundle` makes: no
# Rust, no network, Python with torch + torchvision (+ CUDA) already there.
#
#   bash gpu-bundle/run.sh            # parity, bench and training on the GPU (about 8 minutes)
#   bash gpu-bundle/run.sh --quick    # a smaller check (lavapipe here; the first minute on a GPU)
#
# Tables go to $OUT (or gpu-bundle/out): report.md (all of it), parity.txt, bench/results.md,
# train.txt, env.txt. Every phase has its own time limit, so one slow phase cannot eat the rest.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out=${OUT:-$here/out}
work=${ZOO_GPU_WORK:-/tmp/zoo-gpu}
mkdir -p "$out" "$work"
export ZOO_ROOT=$here ZOO_CACHE=$work/cache ZOO_PYTHON=${ZOO_PYTHON:-$(command -v python3)}
export PYTHONUNBUFFERED=1 RUST_BACKTRACE=1
started=$SECONDS
elapsed() { echo "$((SECONDS - started)) s"; }

# The binaries travel compressed (xz); unpack them with xz, or Python's lzma where xz is absent.
mkdir -p "$work/bin"
for name in xtask zoo-train; do
  if command -v xz >/dev/null; then
    xz -dc "$here/bin/$name.xz" >"$work/bin/$name"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$here/bin/$name.xz" "$work/bin/$name"
  fi
  chmod +x "$work/bin/$name"
done
xtask=$work/bin/xtask
zoo_train=$work/bin/zoo-train

# The Vulkan loader (and the GL dispatch libraries NVIDIA's Vulkan driver loads): a bare GPU
# image may lack them; the bundle carries Debian's packages. As root they are unpacked into /
# (the lending workplace's own recipe), otherwise beside the bundle.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if [ "$(id -u)" = 0 ]; then
    for deb in "$here"/debs/*.deb; do dpkg -x "$deb" /; done
    ldconfig
    echo "vulkan loader: unpacked from the bundle into /"
  else
    for deb in "$here"/debs/*.deb; do dpkg -x "$deb" "$work/sysroot"; done
    export LD_LIBRARY_PATH=$work/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "vulkan loader: from the bundle ($work/sysroot)"
  fi
fi
# NVIDIA's Vulkan driver, where no ICD is registered in the usual places.
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] \
  && ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/nvidia/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; echo "vulkan driver: $icd"; break; fi
  done
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$ZOO_PYTHON" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, cuda {torch.cuda.is_available()}")'
  echo "bundle: $(cat "$here/VERSION" 2>/dev/null)"
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

cuda=$("$ZOO_PYTHON" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo cpu)
if [ $quick = 1 ]; then
  parity_models=(lenet5 resnet18 alexnet vgg11)
  parity_size=()  # lavapipe: the small cases, as CI
  bench_args=(--models resnet18 --batches 1 --train-model resnet18 --train-batch 2 --runs 2 --size 64)
  train_epochs=1 train_model=lenet5 limit_parity=900 limit_bench=600 limit_train=600
else
  mapfile -t parity_models < <("$xtask" list --names)
  parity_size=(--full)  # a real GPU: the full-size cases too
  bench_models=resnet50,vgg16
  "$xtask" list --names | grep -qx mobilenet_v3_large && bench_models=mobilenet_v3_large,$bench_models
  bench_args=(--models "$bench_models" --batches 1,32,128 --train-model resnet50 --train-batch 32 --runs 5)
  train_epochs=3 train_model=resnet18 limit_parity=240 limit_bench=180 limit_train=90
fi

echo "== parity on wgpu against PyTorch on this machine ($(elapsed))"
timeout -k 10 $limit_parity "$xtask" parity "${parity_models[@]}" "${parity_size[@]}" --train-step --backend wgpu \
  --refs "$work/refs" 2>&1 | tee "$out/parity.txt"
parity_status=${PIPESTATUS[0]}

echo "== bench: wgpu beside PyTorch eager $cuda ($(elapsed))"
timeout -k 10 $limit_bench "$xtask" bench --backend wgpu --torch-device "$cuda" --no-import \
  --out "$out/bench" "${bench_args[@]}" 2>&1 | tee "$out/bench.txt"
bench_status=${PIPESTATUS[0]}

echo "== zoo-train: $train_model, $train_epochs epochs on the demo data, wgpu ($(elapsed))"
{
  "$zoo_train" demo-data --out "$work/demo" >/dev/null
  images=$(find "$work/demo/train" -name '*.png' | wc -l)
  rm -rf "$work/run"
  t0=$(date +%s.%N)
  timeout -k 10 $limit_train "$zoo_train" train --backend wgpu --model "$train_model" \
    --data "$work/demo" --epochs $train_epochs --batch-size 32 --image-size 64 --lr 0.01 \
    --out "$work/run" --no-tui
  status=$?
  t1=$(date +%s.%N)
  python3 - "$images" "$train_epochs" "$t0" "$t1" "$status" <<'PY'
import sys
images, epochs, t0, t1, status = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
seconds = t1 - t0
print(f"zoo-train: {images} training images x {epochs} epochs in {seconds:.1f} s "
      f"(validation, start-up and compilation included): {images * epochs / seconds:.1f} img/s; exit {status}")
PY
  [ -f "$work/run/metrics.csv" ] && cat "$work/run/metrics.csv"
} >"$out/train.txt" 2>&1
train_status=$(grep -o 'exit [0-9]*' "$out/train.txt" | tail -1 | cut -d' ' -f2)
cat "$out/train.txt"

{
  echo "# GPU check ($(date -u +%F))"
  echo; echo '```'; cat "$out/env.txt"; echo '```'
  echo; echo "## Parity (wgpu)"; echo; echo '```'; grep -E '^(parity:|[0-9]+ checks)|FAIL|SKIP' "$out/parity.txt"; echo '```'
  echo; echo "## Speed"; echo; cat "$out/bench/results.md" 2>/dev/null || echo "(bench failed: see bench.txt)"
  echo; echo "## zoo-train"; echo; echo '```'; grep '^zoo-train:' "$out/train.txt"; echo '```'
  echo; echo "statuses: parity $parity_status, bench $bench_status, train ${train_status:-?}; $(elapsed) in all"
} >"$out/report.md"
cat "$out/report.md"
[ "$parity_status" = 0 ] && [ "$bench_status" = 0 ] && [ "${train_status:-1}" = 0 ]
