# shellcheck shell=bash
# The `simpler` backend env (SimplerEnv on SAPIEN 2.2.2). Sourced by scripts/setup, which
# provides REPO, PY, VLAEVAL_HOME, VERBOSE, CURRENT_STEP and the helpers say/step/since.
#
# What it builds:
#   * apt: a CPU Vulkan driver new enough for SAPIEN 2.2.2. Debian 12's lavapipe (Mesa 22)
#     lacks descriptorBindingPartiallyBound; Mesa >= 25 from bookworm-backports has it. The
#     backports entry reuses the mirror of the machine's own Debian sources.
#   * $VLAEVAL_HOME/vk_layer/: our Vulkan layer (vlaeval/suites/simpler/vk_layer), which drops
#     the CUDA-interop device extension SAPIEN's wheel asks for and lavapipe lacks. Rebuilt
#     only when its sources change (sha256 in .source-sha256).
#   * the venv: pyproject's `simpler` extra + the worker's protocol client, video writer and
#     ruckig (the controllers' trajectory planner); post-check renders one frame on CPU.
#
# Entry points used by scripts/setup:
#   simpler_reqs                 requirement lines (hashed into the venv stamp)
#   simpler_prepare              apt packages + Vulkan layer (before the venv is built/reused)
#   simpler_install <venv>       pip install of simpler_reqs
#   simpler_post_check <venv>    import check + one rendered frame

SIMPLER_WORKER_REQS=(msgpack "websockets>=12,<14" imageio imageio-ffmpeg ruckig)
SIMPLER_APT=(mesa-vulkan-drivers libvulkan1 libvulkan-dev)
SIMPLER_MESA_MIN=25
SIMPLER_LAYER_SRC="vlaeval/suites/simpler/vk_layer"
SIMPLER_APT_ETC="${SIMPLER_APT_ETC:-/etc/apt}"  # overridable for tests of the source parsing

simpler_reqs() {  # pyproject's simpler extra, then the worker's packages
  "$PY" -c '
import sys, tomllib
reqs = tomllib.load(open(sys.argv[1], "rb"))["project"].get("optional-dependencies", {}).get("simpler")
if not reqs:
    sys.exit("pyproject.toml has no [project.optional-dependencies] simpler")
print("\n".join(reqs))' "$REPO/pyproject.toml"
  printf '%s\n' "${SIMPLER_WORKER_REQS[@]}"
}

simpler_install() {  # <venv>
  local pip=("$1/bin/python" -m pip install --progress-bar off) reqs
  [[ $VERBOSE == 1 ]] || pip+=(-q)
  mapfile -t reqs < <(simpler_reqs)
  "${pip[@]}" "${reqs[@]}"
}

# --- apt ----------------------------------------------------------------------------------

_simpler_sudo() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

_simpler_codename() { (. /etc/os-release && echo "${VERSION_CODENAME:-}"); }

# The mirror URI (and keyring) of the first enabled Debian source that serves <codename>.
# Prints "URI KEYRING" (KEYRING may be empty). deb822 files first, then one-line sources.
_simpler_debian_mirror() {
  local codename="$1" f
  for f in "$SIMPLER_APT_ETC"/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v want="$codename" '
      function flush() {
        if (uris != "" && types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(suites, s, " ")
          for (i = 1; i <= n; i++) if (s[i] == want) { split(uris, u, " "); print u[1], key; found = 1; exit }
        }
        uris = ""; suites = ""; types = ""; key = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"     { $1 = ""; types = $0 }
      tolower($1) == "uris:"      { $1 = ""; sub(/^ +/, ""); uris = $0 }
      tolower($1) == "suites:"    { $1 = ""; suites = $0 }
      tolower($1) == "signed-by:" { key = $2 }
      tolower($1) == "enabled:"   { enabled = tolower($2) }
      END { if (!found) flush() }' "$f" | head -n 1 | grep . && return 0
  done
  for f in "$SIMPLER_APT_ETC"/sources.list "$SIMPLER_APT_ETC"/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v want="$codename" '
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == want) { print $i; exit }
      }' "$f" | head -n 1 | grep . && return 0
  done
  return 1
}

_simpler_has_backports_source() {  # <suite>
  grep -Eqs "^[^#]*[[:space:]]$1([[:space:]]|$)" "$SIMPLER_APT_ETC"/sources.list \
    "$SIMPLER_APT_ETC"/sources.list.d/*.list "$SIMPLER_APT_ETC"/sources.list.d/*.sources
}

_simpler_add_backports() {  # <codename>
  local codename="$1" suite="$1-backports" mirror uri key
  local file="$SIMPLER_APT_ETC/sources.list.d/vlaeval-backports.sources"
  if _simpler_has_backports_source "$suite"; then say "  apt: $suite already configured"; return; fi
  mirror="$(_simpler_debian_mirror "$codename")" || {
    echo "[setup] FAILED: no Debian source for '$codename' found in $SIMPLER_APT_ETC to derive $suite from" >&2
    return 1; }
  read -r uri key <<<"$mirror"
  key="${key:-/usr/share/keyrings/debian-archive-keyring.gpg}"
  say "  apt: adding $suite from $uri ($file)"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$uri" "$suite" "$key" \
    | _simpler_sudo tee "$file" >/dev/null
}

_simpler_mesa_ok() {
  local v
  v="$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null)" || return 1
  [[ -n "$v" ]] && dpkg --compare-versions "$v" ge "$SIMPLER_MESA_MIN"
}

simpler_apt() {
  local missing=() p codename target=()
  for p in "${SIMPLER_APT[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  if [[ ${#missing[@]} -eq 0 ]] && _simpler_mesa_ok; then
    say "  apt: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), libvulkan, cc present"
    return
  fi
  codename="$(_simpler_codename)"
  if [[ "$codename" == bookworm ]]; then
    _simpler_add_backports "$codename"
    target=(-t "$codename-backports")
  fi
  step "simpler: apt-get update" _simpler_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  step "simpler: apt-get install ${target[*]} ${SIMPLER_APT[*]}" _simpler_sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${target[@]}" "${SIMPLER_APT[@]}"
  if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
    step "simpler: apt-get install gcc" _simpler_sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends gcc libc6-dev
  fi
  _simpler_mesa_ok || {
    echo "[setup] FAILED: mesa-vulkan-drivers >= $SIMPLER_MESA_MIN is needed for SAPIEN on CPU; got" \
      "'$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null)'" >&2; return 1; }
  say "  apt: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
}

# --- Vulkan layer ---------------------------------------------------------------------------

simpler_layer_hash() {
  (cd "$REPO/$SIMPLER_LAYER_SRC" && sha256sum ./*.c manifest.json.in) | sha256sum | cut -d' ' -f1
}

_simpler_build_layer() {  # <src dir> <out dir>
  local src="$1" out="$2" cc=cc
  command -v cc >/dev/null 2>&1 || cc=gcc
  "$cc" -O2 -Wall -shared -fPIC -fvisibility=hidden -o "$out/libVkLayer_vlaeval_ext_filter.so" "$src"/*.c -lpthread
  sed 's|@LIBRARY_PATH@|./libVkLayer_vlaeval_ext_filter.so|' "$src/manifest.json.in" \
    >"$out/VkLayer_vlaeval_ext_filter.json"
}

simpler_layer() {
  local dest="$VLAEVAL_HOME/vk_layer" want tmp
  want="$(simpler_layer_hash)"
  if [[ -f "$dest/libVkLayer_vlaeval_ext_filter.so" && -f "$dest/VkLayer_vlaeval_ext_filter.json" \
        && "$(cat "$dest/.source-sha256" 2>/dev/null)" == "$want" ]]; then
    say "  vulkan layer up to date ($dest)"
    return
  fi
  tmp="$(mktemp -d "$VLAEVAL_HOME/.vk_layer.XXXXXX")"
  step "simpler: build vulkan layer" _simpler_build_layer "$REPO/$SIMPLER_LAYER_SRC" "$tmp"
  echo "$want" >"$tmp/.source-sha256"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  chmod 755 "$dest"
}

simpler_prepare() {
  CURRENT_STEP="simpler: apt"
  simpler_apt
  CURRENT_STEP="simpler: vulkan layer"
  simpler_layer
}

# --- post-check -----------------------------------------------------------------------------

simpler_post_check() {  # <venv>
  step "simpler: import + render check" env VLAEVAL_HOME="$VLAEVAL_HOME" \
    "$1/bin/python" -m vlaeval.suites.simpler.env_setup --check
  [[ $VERBOSE == 1 ]] || say "  $(grep -a '^render check:' "$CURRENT_LOG" | tail -n 1)"
}
