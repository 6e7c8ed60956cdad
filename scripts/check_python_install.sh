#!/usr/bin/env bash
# scripts/check_python_install.sh — the Python package as a newcomer gets it: a clean copy of
# the tracked (and new, unignored) files, `pip install .` into a new virtual environment, then
# the README's Python example run from outside the tree. CUDA is left out of this build to
# keep the check short (MAMBAC_PIP_CUDA=AUTO builds it where nvcc is).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/copy"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null |
        tar -xf - -C "$work/copy"
else # a tree without git: everything but build outputs
    tar --exclude='./build*' --exclude='./.dev*' --exclude='./.peers' -cf - . | tar -xf - -C "$work/copy"
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q -C cmake.define.MAMBAC_CUDA="${MAMBAC_PIP_CUDA:-OFF}" "$work/copy"
# the README's first ```python block after its "## Python" heading
awk '/^## Python/{p=1} p&&/^```python/{c=1;next} c&&/^```/{exit} c' README.md > "$work/example.py"
[ -s "$work/example.py" ] || { echo "check_python_install: no Python example in README.md" >&2; exit 1; }
(cd "$work" && "$work/venv/bin/python" example.py)
(cd "$work" && "$work/venv/bin/python" -m mambac --version >/dev/null)
echo "python package: installed from a clean copy; the README example ran"
