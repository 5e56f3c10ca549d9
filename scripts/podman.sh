#!/usr/bin/env bash
# Podman for the tests, as root and without systemd, with the demo package's image built here: no
# registry is reachable, so the image is a Debian rootfs made by debootstrap with the package and its
# wheels installed, imported under the name the package's DockerRequirement gives.
#
#   setup   install podman, runc and debootstrap if missing; write containers.conf and storage.conf in
#           $PODMAN_STATE; build the image unless the one stored was built from the same package source
#   env     print the exports that make podman (and cwltool, and Toil's jobs) use that configuration
#   remove  delete the image store and the configuration
#
# Why runc and explicit ulimits: crun fails as root without CAP_SYS_RESOURCE, and runc fails with
# podman's default ulimits (../shared/notes/toil-slurm-kubernetes.md, "Podman").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${PODMAN_STATE:-/var/tmp/ogc-upscaler-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGE=$ROOT/app_packages/ndvi
LABEL=org.ogc-upscaler.source

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "podman.sh: must run as root (it installs packages and builds a root filesystem)" >&2
        exit 1
    fi
}

install_packages() {
    if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    local packages=(podman runc debootstrap)
    apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null
    }
}

print_env() {
    echo "export CONTAINERS_CONF=$STATE/containers.conf"
    echo "export CONTAINERS_STORAGE_CONF=$STATE/storage.conf"
}

write_conf() {
    mkdir -p "$STATE/storage" "$STATE/run"
    cat > "$STATE/containers.conf" <<EOF
# written by ogc-upscaler's scripts/podman.sh: root without systemd, runc, explicit ulimits
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    cat > "$STATE/storage.conf" <<EOF
# written by ogc-upscaler's scripts/podman.sh: images and containers kept in $STATE
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
}

source_hash() {  # what the image is built from: the package's source files and this script
    (cd "$PACKAGE" && find . -path ./build -prune -o -type f \( -name '*.py' -o -name pyproject.toml \) -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum "$ROOT/scripts/podman.sh") | sha256sum | cut -c1-16
}

build_image() {
    local image hash stored rootfs wheels host_python image_python
    image=$(sed -n 's/^ *dockerPull: *//p' "$PACKAGE/ndvi.cwl" | head -1)
    hash=$(source_hash)
    stored=$(podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
    if [ "$stored" = "$hash" ]; then
        return
    fi
    rootfs=$STATE/rootfs
    rm -rf "$rootfs"
    echo "podman.sh: building $image with debootstrap (about 1.5 minutes)" >&2
    debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates bookworm "$rootfs" "$MIRROR" \
        > "$STATE/debootstrap.log" 2>&1 || {
        echo "podman.sh: debootstrap failed; its log: $STATE/debootstrap.log" >&2
        exit 1
    }
    # the package and its dependencies as wheels built here, installed in the image without an index:
    # compiled wheels (numpy, rasterio) fit only the Python version they were built for
    host_python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    image_python=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$host_python" != "$image_python" ]; then
        echo "podman.sh: python3 here is $host_python, the image's is $image_python: run setup with a" \
            "Python $image_python first on PATH (its wheels go into the image)" >&2
        exit 1
    fi
    wheels=$rootfs/tmp/wheels
    python3 -m pip wheel --quiet --wheel-dir "$wheels" "$PACKAGE" > "$STATE/pip.log" 2>&1 \
        && chroot "$rootfs" python3 -m pip install --quiet --no-index --find-links /tmp/wheels \
            --break-system-packages --root-user-action=ignore ndvi-tile >> "$STATE/pip.log" 2>&1 || {
        echo "podman.sh: installing the package in the image failed; the log: $STATE/pip.log" >&2
        exit 1
    }
    chroot "$rootfs" ndvi-tile --help >/dev/null
    rm -rf "$wheels" "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    podman rmi --force "$image" >/dev/null 2>&1 || true
    tar -C "$rootfs" -c . | podman import --quiet \
        --change "LABEL $LABEL=$hash" --change 'CMD ["ndvi-tile", "--help"]' - "$image" >/dev/null
    rm -rf "$rootfs"
    podman run --rm "$image" ndvi-tile --help >/dev/null
}

case "${1:-}" in
    setup)
        need_root
        mkdir -p "$STATE"
        exec 9> "$STATE/setup.lock"
        flock 9  # two test sessions at once build the image once
        install_packages
        write_conf
        eval "$(print_env)"
        build_image
        ;;
    env) print_env ;;
    remove)
        need_root
        if [ -f "$STATE/storage.conf" ] && command -v podman >/dev/null; then
            eval "$(print_env)"
            podman system reset --force >/dev/null 2>&1 || true  # unmounts the overlay layers first
        fi
        rm -rf "$STATE"
        ;;
    *)
        echo "usage: $0 setup|env|remove" >&2
        exit 2
        ;;
esac
