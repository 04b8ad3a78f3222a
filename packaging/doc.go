// Package packaging holds no Go code: it is fwd's systemd unit
// (fwd.service), the Debian package's maintainer scripts and metadata
// (debian/) and the script make deb runs (deb.sh). Its tests build the
// package, install it into a scratch root with dpkg, run lintian on it and
// systemd-analyze verify on the unit, and stage make install and
// uninstall.
package packaging
