#!/bin/sh
# Builds $DIST/fwd_VERSION_ARCH.deb with dpkg-deb alone: make install into a
# staging tree (PREFIX=/usr, the unit in /usr/lib/systemd/system), then the
# control files from packaging/debian. Run by make deb.
set -eu
GO=${GO:-go}
DIST=${DIST:-dist}
VERSION=${VERSION:-devel}
# Who the package says maintains it; set DEB_MAINTAINER for your own builds.
DEB_MAINTAINER=${DEB_MAINTAINER:-fwd maintainers <fwd@users.noreply.github.com>}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
arch=$(dpkg --print-architecture)

# A Debian version from git describe: v1.2.3 -> 1.2.3, v1.2.3-4-gabc ->
# 1.2.3+4.gabc; with no tag, 0.0~gitN.HASH (N commits); -dirty -> +dirty.
if [ -z "${DEB_VERSION:-}" ]; then
	case $VERSION in
	v[0-9]*) DEB_VERSION=$(echo "${VERSION#v}" | sed -e 's/-\([0-9]*\)-g/+\1.g/' -e 's/-dirty$/+dirty/') ;;
	*) DEB_VERSION="0.0~git$(git rev-list --count HEAD 2>/dev/null || echo 0).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	   case $VERSION in *-dirty) DEB_VERSION="$DEB_VERSION+dirty" ;; esac ;;
	esac
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/fwd
# Static, stripped binaries (the build's VCS stamp stays: fwd --version).
CGO_ENABLED=0 make --no-print-directory install DESTDIR="$stage" PREFIX=/usr \
	UNITDIR=/usr/lib/systemd/system BIN="$work/bin" GO="$GO" VERSION="$VERSION" \
	GOLDFLAGS="-s -w -X github.com/fwd-project/fwd/internal/buildinfo.version=$VERSION" >/dev/null

doc=$stage/usr/share/doc/fwd
gzip -9n "$stage"/usr/share/man/man8/*.8
install -m 0644 packaging/debian/copyright "$doc/copyright"
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
cat > "$work/changelog" <<CHANGELOG
fwd ($DEB_VERSION) unstable; urgency=medium

  * Built from the fwd source tree ($VERSION) by make deb.

 -- $DEB_MAINTAINER  $when
CHANGELOG
gzip -9nc "$work/changelog" > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
if [ -s packaging/debian/lintian-overrides ]; then
	install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/fwd"
fi

install -d -m 0755 "$stage/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"
done
printf '%s\n' /etc/fwd/rules.yaml /etc/fail2ban/action.d/fwd.conf /etc/fail2ban/action.d/fwd-multiport.conf > "$stage/DEBIAN/conffiles"
chmod 0644 "$stage/DEBIAN/conffiles"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: fwd
Version: $DEB_VERSION
Architecture: $arch
Maintainer: $DEB_MAINTAINER
Installed-Size: $size
Depends: iptables
Section: net
Priority: optional
Description: host firewall daemon with AWS security-group semantics
 fwd gives one Linux host the semantics of an EC2 security group:
 allow-only rules in groups, stateful, the union of every rule decides.
 New connections reach the daemon through NFQUEUE and are answered from
 a compiled table; fwctl validates, checks and edits the rules with
 ufw's grammar.
 .
 Installing the package neither enables nor starts the service.
CONTROL
chmod 0644 "$stage/DEBIAN/control"
mkdir -p "$DIST"
out="$DIST/fwd_${DEB_VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
