#!/usr/bin/env bash
# Installs everything casebench needs on a fresh Debian machine (run as root). Safe to run twice:
# each step checks what is already there. The only place anything gets installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

apt_pkgs=(espeak-ng ffmpeg sox chromium fonts-dejavu-core postgresql)  # PostgreSQL: the leaderboard's URL path is tested
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "install: creating $venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
# Re-install only when the dependency list changed (hash of pyproject.toml).
stamp="$venv/.casebench-deps"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install: python packages into $venv"
  "$venv/bin/pip" install -q -e ".[all,test]"
  echo "$want" > "$stamp"
fi

# Label Studio pins its own dependency versions, so it lives in its own venv.
ls_venv="$root/.venv-labelstudio"
ls_version=$(sed -n 's/^label_studio_server *= *"\(.*\)"/\1/p' pyproject.toml)
if [ -n "$ls_version" ] && [ "$(cat "$ls_venv/.casebench-ls" 2>/dev/null)" != "$ls_version" ]; then
  echo "install: label-studio $ls_version into $ls_venv"
  [ -x "$ls_venv/bin/python" ] || "$py" -m venv "$ls_venv"
  "$ls_venv/bin/pip" install -q --upgrade pip
  "$ls_venv/bin/pip" install -q "label-studio==$ls_version"
  echo "$ls_version" > "$ls_venv/.casebench-ls"
fi
# Byte-compile casebench as a wheel install does: an editable install leaves it to the first import, which never
# saves the result where PYTHONDONTWRITEBYTECODE is set, so every command would compile it again (~0.15 s).
"$venv/bin/python" -m compileall -q casebench > /dev/null
echo "install: ok"
