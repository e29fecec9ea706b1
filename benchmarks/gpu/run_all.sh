#!/usr/bin/env bash
# The one-shot GPU check of issue 21, on a bare machine with one CUDA GPU and no internet, the repository
# copied there:
#
#     bash benchmarks/gpu/run_all.sh [results.json]        # default: .gpu-check/gpu_results.json
#
# 1. Python environment: the interpreter already on PATH if it imports torch with CUDA and talker's
#    dependencies; otherwise a virtual environment in .gpu-check/venv, installed from the wheels carried
#    in wheels/ (pip --no-index --find-links wheels/: no network needed) when that folder exists, else
#    from the package index (needs the index to be reachable). Which one was used is printed and written
#    to the results. Carry the wheels with e.g. `pip download -d wheels/ torch==2.13.0 -e .` on a
#    connected machine of the same platform and Python (CUDA build of torch), with setuptools and wheel
#    (they build talker itself): pip download -d wheels -c constraints.txt . pytest setuptools wheel
# 2. Every test marked requires_cuda (pytest -m requires_cuda): tiny-cuda-nn against torch where
#    tinycudann imports, the CUDA autocast tests, CUDA events in the speed profile.
# 3. benchmarks/gpu/measure.py: ms per 450 x 450 head+torso frame for the R2-Talker, RAD-NeRF and
#    ER-NeRF fields on the training path and the fast path; training iterations per second at the
#    reference codes' ray batch (65536); Table 5's module profile.
# 4. All of it merged into one JSON file, the tables printed side by side.
#
# Each part runs under `timeout` so that the whole script ends within 8 minutes (the budgets below add
# up to 460 s); a part that fails or runs out of time is recorded as such in the JSON and the others
# still run. Extra arguments for measure.py (e.g. --device cpu --quick, to try the script without a
# GPU) can be given in MEASURE_ARGS, and BUDGET_SCALE=<n> multiplies the budgets of steps 2-4 (a loaded
# CPU needs more time than the GPU these budgets are for).
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/.gpu-check"
OUT="${1:-$WORK/gpu_results.json}"
PARTS_DIR="$WORK/parts"
MEASURE_ARGS="${MEASURE_ARGS:-}"
SCALE="${BUDGET_SCALE:-1}"
mkdir -p "$PARTS_DIR"
rm -f "$PARTS_DIR"/*.json
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TALKER_OFFLINE=1
started=$(date +%s)
say() { echo "[run_all $(( $(date +%s) - started ))s] $*"; }

# -- 1. environment (budget 150 s: a CUDA torch and its libraries are ~3 GB) ------------------------
PY=python3
case " $MEASURE_ARGS " in *" --device cpu "*) NEED_CUDA=0 ;; *) NEED_CUDA=1 ;; esac
ready() { "$1" -c "import sys, torch, lightning, hydra, talker; sys.exit($NEED_CUDA and not torch.cuda.is_available())" 2>/dev/null; }
if ready "$PY"; then
    ENV_SOURCE="existing interpreter ($(command -v $PY))"
else
    timeout 150 bash -c '
        set -e
        python3 -m venv "$0/venv"
        if [ -d wheels ] && ls wheels/*.whl >/dev/null 2>&1; then
            "$0/venv/bin/pip" install --quiet --no-index --find-links wheels -c constraints.txt -e . pytest
        else
            "$0/venv/bin/pip" install --quiet -c constraints.txt -e . pytest
        fi' "$WORK"
    PY="$WORK/venv/bin/python"
    if [ -d wheels ] && ls wheels/*.whl >/dev/null 2>&1; then ENV_SOURCE="venv from wheels/ (no index)"; else ENV_SOURCE="venv from the package index"; fi
    if ! ready "$PY"; then
        say "environment: no usable Python with torch (CUDA) and talker after installing ($ENV_SOURCE)"
        printf '{"environment": {"source": "%s", "error": "install failed or no CUDA torch"}}\n' "$ENV_SOURCE" > "$OUT"
        exit 1
    fi
fi
say "environment: $ENV_SOURCE; $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"

# -- 2. requires_cuda tests (budget 60 s) -----------------------------------------------------------
# Only the files that hold the marker are collected: a test module of an optional extra that is not
# installed here (lpips, selenium, ...) must not stop the CUDA tests at collection.
cuda_tests=$(grep -rl --include='test_*.py' 'mark.requires_cuda' tests)
timeout $((60 * SCALE)) "$PY" -m pytest -m requires_cuda -q -p no:cacheprovider -rA $cuda_tests > "$WORK/tests.log" 2>&1
tests_rc=$?
summary=$(tail -n 1 "$WORK/tests.log" | tr -d '"=')
say "requires_cuda tests: exit $tests_rc: $summary"
"$PY" - "$WORK/tests.log" "$tests_rc" "$ENV_SOURCE" "$PARTS_DIR/tests.json" <<'EOF'
import json, re, sys
log, rc, source, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
text = open(log, errors="replace").read()
counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", text.splitlines()[-1] if text else "")}
# "PASSED tests/x.py::test_a", "SKIPPED [2] tests/x.py:105: reason"
found = re.findall(r"^(PASSED|FAILED|SKIPPED|ERROR)(?: \[\d+\])? (\S+)", text, re.M)
outcomes = {name.rstrip(":"): state for state, name in found}
json.dump({"exit_code": rc, "timed_out": rc == 124, "counts": counts, "outcomes": outcomes, "environment": source},
          open(out, "w"), indent=2)
EOF

# -- 3. measurements (budgets 110 + 80 + 40 s) ------------------------------------------------------
for part_budget in frames:110 train:80 profile:40; do
    part=${part_budget%%:*}; budget=${part_budget##*:}
    budget=$((budget * SCALE))
    timeout "$budget" "$PY" benchmarks/gpu/measure.py "$part" --out "$PARTS_DIR/$part.json" $MEASURE_ARGS \
        > "$WORK/$part.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && say "$part: done" || say "$part: failed (exit $rc$([ $rc -eq 124 ] && echo ', timed out after '"$budget"' s'); see $WORK/$part.log)"
done

# -- 4. one JSON, printed side by side (budget 20 s) ----------------------------------------------------------------
timeout $((20 * SCALE)) "$PY" benchmarks/gpu/measure.py combine --out "$OUT" "$PARTS_DIR"/*.json
say "results: $OUT"
