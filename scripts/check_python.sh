#!/usr/bin/env bash
# Fail with a clear message unless the given interpreter is Python 3.10 (Rasa 3.6).
set -u
py="${1:-python3.10}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: '$py' not found. Rasa 3.6 needs Python 3.10." >&2
  echo "       Install it (e.g. 'pyenv install 3.10') or run: make PYTHON=/path/to/python3.10 ..." >&2
  exit 1
fi
version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
if [ "$version" != "3.10" ]; then
  echo "error: '$py' is Python ${version:-unknown}; Rasa 3.6 needs Python 3.10." >&2
  echo "       Install it (e.g. 'pyenv install 3.10') or run: make PYTHON=/path/to/python3.10 ..." >&2
  exit 1
fi
