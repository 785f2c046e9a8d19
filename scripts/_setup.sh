# Shared by scripts/start and scripts/test: install missing Debian packages, then the Python environment.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "Installing '$*' needs root; run as root or install sudo." >&2; exit 1
  fi
}

install_debian_packages() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_python_env() {  # $1: pip extras, e.g. "[test]"
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then install_debian_packages python3-venv; fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=".venv/.installed$1" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".$1"
    echo "$want" > "$stamp"
  fi
}

AGENT_CLI_PACKAGES=(@anthropic-ai/claude-code@2.1.331 @openai/codex@0.169.0 @google/gemini-cli@0.61.0 opencode-ai@1.18.33)

install_agent_clis() {  # the four agent CLIs, pinned, once into one npm prefix outside the repo (see docs/agent-runtimes.md)
  local dir="${AGOR_AGENT_CLI_DIR:-$HOME/.cache/agor/agent-clis}" missing=() pkg
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || install_debian_packages nodejs npm
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] ||
    echo "Warning: node $(node -v) is older than 20, which the Gemini CLI needs (Debian 12 ships 18)." >&2
  mkdir -p "$dir"
  for pkg in "${AGENT_CLI_PACKAGES[@]}"; do [ -e "$dir/.installed-${pkg//\//+}" ] || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing agent CLIs into $dir: ${missing[*]}"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${missing[@]}"
    for pkg in "${missing[@]}"; do touch "$dir/.installed-${pkg//\//+}"; done
  fi
  export AGOR_AGENT_CLI_DIR="$dir"
}
