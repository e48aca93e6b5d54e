# Shared set-up for scripts/run-example and scripts/test: each brings the machine
# to what it needs (Debian packages, a virtualenv under .venv) and skips what is
# already there, so running them twice is cheap.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${JETSTREAM_PIN_VENV:-$ROOT/.venv}"
TOOLS="$ROOT/.tools"

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: install the Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
      || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "${missing[@]}" \
    || { as_root apt-get update -q && as_root apt-get install -y --no-install-recommends "${missing[@]}"; }
}

# What a one-node cluster (scripts/cluster up --node, the node tests) needs from Debian:
# the OCI runtime and CNI plugins containerd runs, the tools kube-proxy and the CNI
# plugins call, and what builds and serves the images without Docker.
NODE_PACKAGES="runc containernetworking-plugins iptables conntrack buildah debootstrap docker-registry util-linux iproute2"

python_311() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "jetstream-pin needs Python 3.11 or newer (apt-get install python3)" >&2
  return 1
}

# ensure_venv [EXTRA]: .venv with the package installed (EXTRA: "test" adds test tools).
ensure_venv() {
  local extra="${1:-}" python spec stamp wanted
  python="$(python_311)"
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    "$python" -m venv "$VENV"
  fi
  spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  stamp="$VENV/.jetstream-pin-$extra.stamp"
  wanted="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-64)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT/$spec"
    echo "$wanted" > "$stamp"
  fi
}
