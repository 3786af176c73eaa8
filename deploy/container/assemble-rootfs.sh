#!/bin/sh
# Build stage only: copy into $1 the files `voice-agent serve` needs at run time and nothing else (no shell,
# no package manager, no coreutils): Python 3.11 and its standard library, the virtual environment with
# the models, the shared libraries those need (ldd closure), CA certificates, time zones, and a passwd
# naming the unprivileged user.
set -eu
root=$1
uid=$2
mkdir -p "$root"

copy() {  # copy paths as they are (symlinks kept), under the same names (relative to /: cp --parents
    for path in "$@"; do (cd / && cp -a --parents "${path#/}" "$root/"); done  # loses modes otherwise)
}

copy /usr/bin/python3.11 /usr/bin/python3 /usr/lib/python3.11 /opt/voice-agent \
    /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo /usr/lib/os-release
ln -s ../usr/lib/os-release "$root/etc/os-release"
# Code and models are public and nobody's to change (the models directory is made 0700 by the agent's
# umask): readable by all, writable by root alone, who never runs in the image.
chmod -R a+rX,go-w "$root/opt/voice-agent"

# Every shared library any ELF file in there links, resolved to its real file but kept under its soname
# in its canonical (usr-merged) directory; /lib and /lib64 become the usual usr-merge symlinks.
find /usr/bin/python3.11 /usr/lib/python3.11 /opt/voice-agent -type f \( -name '*.so*' -o -perm -u+x \) \
    -exec ldd {} + 2>/dev/null |
    sed -n -e 's/.*=> \(\/[^ ]*\) (0x.*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p' |
    sort -u |
    while read -r lib; do
        dir=$(readlink -f "$(dirname "$lib")")
        case "$dir" in /opt/voice-agent/*) continue ;; esac  # the wheels' own bundled libraries
        mkdir -p "$root$dir"
        cp -L "$lib" "$root$dir/$(basename "$lib")"
    done
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

# The unprivileged user (no login shell: there is none), and a /tmp for the run-time tmpfs to cover.
mkdir -p "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nvoice-agent:x:%s:%s:voice agent:/nonexistent:/usr/sbin/nologin\n' \
    "$uid" "$uid" >"$root/etc/passwd"
printf 'root:x:0:\nvoice-agent:x:%s:\n' "$uid" >"$root/etc/group"

# Nothing to run commands with at run time.
for shell in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash; do
    if [ -e "$root/$shell" ]; then echo "assemble-rootfs: $shell must not be in the image" >&2; exit 1; fi
done
