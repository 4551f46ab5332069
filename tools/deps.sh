#!/bin/sh
# Installs what chatmon needs from Debian by package name, and builds the
# pinned static libwebsockets 4.1.6 (with libevent) from Debian's own source
# package, checksum-verified and patched (third_party/libwebsockets/README.md
# says why). Idempotent: when everything is in place it only checks and exits.
#
# usage: tools/deps.sh [OUTDIR [san]]     (default build/deps)
#
# With "san" the library is built into OUTDIR/lws-san with the same
# sanitizers as `make SAN=1` (ASan and UBSan), so that a memory error inside
# libwebsockets shows in the sanitizer test run too.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deps}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
lws_ver=4.1.6-3
tp=$top/third_party/libwebsockets
variant=${2:-}
case $variant in
"")	lib=lws; extra_cflags= ;;
san)	lib=lws-san
	extra_cflags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" ;;
*)	echo "deps: unknown variant $variant (want: san)" >&2; exit 2 ;;
esac

# Build, test and demo packages. Keep README.md's list in step.
# nginx-light and linux-perf (strace where perf cannot count) are for
# `make bench-relay` (tests/bench/relay.py), which also needs node and npm:
# Debian's nodejs and npm, unless a node and an npm are there already (a
# nodesource nodejs, which Debian's would fight with).
pkgs="build-essential pkg-config cmake dpkg-dev ca-certificates
libevent-dev libhiredis-dev libpcre2-dev libyaml-dev libjansson-dev
libssl-dev libcurl4-openssl-dev libcmocka-dev libutf8proc-dev opencc libsystemd-dev libsodium-dev
redis-server redis-sentinel python3 python3-websockets python3-pytest python3-pytest-xdist python3-redis python3-jwt python3-cryptography
python3-yaml python3-icu valgrind mandoc systemd time haproxy nginx-light linux-perf strace
chromium chromium-driver python3-selenium fonts-noto-cjk
clang libclang-rt-14-dev"

# Concurrent makes (a developer's and a test run's) must not build at once.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	missing="$missing nodejs npm"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing
	# the bench starts nginx with its own configuration: not Debian's on :80
	case " $missing " in *" nginx-light "*)
		as_root systemctl disable --now nginx >/dev/null 2>&1 || true ;;
	esac
fi

# The stamp names the source checksums, the patches and the flags: change
# any and the library is rebuilt.
stamp_want=$( (cat "$tp/SHA256SUMS" "$tp"/patches/*.patch; echo "$extra_cflags") |
	sha256sum | cut -d' ' -f1)
if [ -f "$out/$lib/.stamp" ] && [ "$(cat "$out/$lib/.stamp")" = "$stamp_want" ] &&
   [ -f "$out/$lib/lib/libwebsockets.a" ]; then
	exit 0
fi

echo "deps: building libwebsockets $lws_ver (static, libevent${variant:+, $variant}) into $out/$lib"

# apt-get source needs a deb-src entry; add Debian's own when there is none.
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deps: adding a deb-src entry for bookworm"
	as_root sh -c 'cat > /etc/apt/sources.list.d/chatmon-deb-src.sources' <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	as_root apt-get update -qq
fi

src=$out/src${variant:+-$variant}
rm -rf "$src" "$out/$lib"
mkdir -p "$src"
cd "$src"
if ! apt-get source --download-only -qq "libwebsockets=$lws_ver" >/dev/null 2>apt-source.err; then
	# a stale package list may not know the source yet
	as_root apt-get update -qq
	apt-get source --download-only -qq "libwebsockets=$lws_ver" >/dev/null 2>apt-source.err ||
		{ cat apt-source.err >&2; exit 1; }
fi
sha256sum --quiet -c "$tp/SHA256SUMS" || { echo "deps: checksum mismatch for libwebsockets $lws_ver" >&2; exit 1; }
dpkg-source --no-check -x "libwebsockets_$lws_ver.dsc" lws >/dev/null
for p in "$tp"/patches/*.patch; do
	patch -s -p1 -d lws < "$p"
done

mkdir lws/build
cd lws/build
CFLAGS="-Wno-error=deprecated-declarations -fno-strict-aliasing $extra_cflags" cmake .. \
	-DCMAKE_INSTALL_PREFIX="$out/$lib" -DCMAKE_INSTALL_LIBDIR=lib \
	-DLWS_WITH_LIBEVENT=ON -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON \
	-DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF \
	-DLWS_WITH_HTTP2=OFF -DLWS_WITH_EVLIB_PLUGINS=OFF -DLWS_WITH_SSL=ON \
	-DLWS_IPV6=ON -DLWS_UNIX_SOCK=ON -DCMAKE_BUILD_TYPE=Release >cmake.log 2>&1 ||
	{ tail -30 cmake.log >&2; exit 1; }
make -j"$(nproc)" >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
make install >install.log 2>&1 || { tail -30 install.log >&2; exit 1; }
echo "$stamp_want" > "$out/$lib/.stamp"
echo "deps: libwebsockets ready"
