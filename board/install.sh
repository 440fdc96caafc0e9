#!/bin/sh
# Installs an unpacked sammix package on the board (run as root from the
# package folder): /opt/sammix, the sammix user, the udev rules and the
# systemd unit. Idempotent; run it again to upgrade.
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

# An unprivileged system user in the video and gpio groups.
getent group gpio >/dev/null || groupadd --system gpio
getent passwd sammix >/dev/null ||
    useradd --system --home-dir /opt/sammix --no-create-home --shell /usr/sbin/nologin \
        --user-group sammix
usermod -a -G video,gpio sammix

# The binary and the bundle, read-only for sammix.
systemctl stop sammix.service 2>/dev/null || true
mkdir -p /opt/sammix/bin /opt/sammix/models
install -m 0755 bin/sammix /opt/sammix/bin/sammix
rm -rf /opt/sammix/models/sammix-us-tiny
cp -r models/sammix-us-tiny /opt/sammix/models/
install -m 0644 board.toml README.md /opt/sammix/
chown -R root:root /opt/sammix

install -m 0644 udev/99-sammix-capture.rules udev/99-sammix-gpio.rules /etc/udev/rules.d/
udevadm control --reload-rules
udevadm trigger

install -m 0644 systemd/sammix.service /etc/systemd/system/sammix.service
systemctl daemon-reload
systemctl enable --now sammix.service
echo "sammix installed; board profile:"
/opt/sammix/bin/sammix info --board
