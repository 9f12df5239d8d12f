#!/usr/bin/env bash
# Installs claude-manager as a systemd service. Idempotent: run it again to upgrade.
#
#   sudo deploy/install.sh [--binary PATH]        install or upgrade
#   sudo deploy/install.sh --uninstall            remove the service, keep the data
#   sudo deploy/install.sh --uninstall --purge    remove the service and the data
#
# Creates the user `claude-manager`, /etc/claude-manager/config.toml (kept if present; its
# data_dir is where the service and every `claude-manager` command find the database), the
# data dir /var/lib/claude-manager, installs the binary and the unit, and starts the service.
# An upgrade stops the old server first, then migrates the database with the new binary.
set -euo pipefail

SERVICE=claude-manager
USER_NAME=claude-manager
PREFIX=/usr/local
CONF_DIR=/etc/claude-manager
DATA_DIR=/var/lib/claude-manager
UNIT=/etc/systemd/system/${SERVICE}.service
here=$(cd "$(dirname "$0")" && pwd)
binary="$here/../target/release/claude-manager"
uninstall=0
purge=0

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo)" >&2
    exit 2
fi

if [ "$uninstall" -eq 1 ]; then
    systemctl disable --now "$SERVICE" 2>/dev/null || true
    rm -f "$UNIT" "$PREFIX/bin/claude-manager"
    systemctl daemon-reload
    if [ "$purge" -eq 1 ]; then
        rm -rf "$DATA_DIR" "$CONF_DIR"
        userdel "$USER_NAME" 2>/dev/null || true
        echo "claude-manager removed, data and config deleted"
    else
        echo "claude-manager removed; data kept in $DATA_DIR, config in $CONF_DIR (--purge deletes them)"
    fi
    exit 0
fi

if [ ! -x "$binary" ]; then
    echo "install.sh: no binary at $binary; build it with 'cargo build --release' or pass --binary PATH" >&2
    exit 2
fi

if ! id "$USER_NAME" >/dev/null 2>&1; then
    # A real home and shell: terminal sessions run as this user.
    useradd --system --create-home --home-dir "/home/$USER_NAME" --shell /bin/bash "$USER_NAME"
fi

install -d -m 0755 "$CONF_DIR"
if [ ! -f "$CONF_DIR/config.toml" ]; then
    install -m 0640 -g "$USER_NAME" "$here/config.example.toml" "$CONF_DIR/config.toml"
fi
# The config file is the one place that names the data dir, for the service and for commands
# run by hand alike; a config from an older install may lack the key.
if ! grep -Eq '^[[:space:]]*data_dir[[:space:]]*=' "$CONF_DIR/config.toml"; then
    printf '\n# Added by install.sh: where the database and logs live.\ndata_dir = "%s"\n' \
        "$DATA_DIR" >>"$CONF_DIR/config.toml"
fi
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0700 "$DATA_DIR"

# The binary (a new file: `install` replaces, so a running image is never written over), the
# guides and the unit.
install_files() {
    install -m 0755 "$binary" "$PREFIX/bin/claude-manager"
    install -d -m 0755 "$PREFIX/share/doc/claude-manager"
    for doc in linux-cloud.md systemd.md; do
        if [ -f "$here/../docs/deployment/$doc" ]; then
            install -m 0644 "$here/../docs/deployment/$doc" "$PREFIX/share/doc/claude-manager/"
        fi
    done
    install -m 0644 "$here/claude-manager.service" "$UNIT"
}

# An upgrade of a server that reloads in place (it writes server-status.json): install the new
# binary over the old one and reload; the new binary migrates the database when it starts, and
# every session goes on (docs/operations.md). If the reload fails, the old version serves on.
if systemctl is-active --quiet "$SERVICE" && [ -f "$DATA_DIR/server-status.json" ]; then
    install_files
    systemctl daemon-reload
    if systemctl reload "$SERVICE"; then
        echo "upgraded $SERVICE in place (same PID, sessions kept)"
        systemctl --no-pager --lines=0 status "$SERVICE" || true
        exit 0
    fi
    echo "install.sh: the reload failed (journalctl -u $SERVICE); the old version serves on." >&2
    exit 1
fi

# An upgrade of an older server (no reload): stop it before its database is migrated, so that
# only the new binary ever migrates it and no two versions run on it at once. Sessions are
# recorded as interrupted.
if systemctl is-active --quiet "$SERVICE"; then
    echo "stopping the running $SERVICE"
    systemctl stop "$SERVICE"
fi

install_files

# The new binary, as the service user, with the service's config: the right data dir.
cm() { runuser -u "$USER_NAME" -- "$PREFIX/bin/claude-manager" "$@" --config "$CONF_DIR/config.toml"; }
if ! cm migrate --create; then
    echo "install.sh: the new binary could not migrate the database (above); $SERVICE is stopped." >&2
    echo "Fix the cause (often a setting in $CONF_DIR/config.toml), then run install.sh again." >&2
    exit 1
fi

# Create the first admin token here, so the server never has to print one into the journal.
token=""
if ! cm token list | awk '$2 == "admin" && $3 == "active"' | grep -q .; then
    token=$(cm token create --scope admin --name install 2>/dev/null)
fi

systemctl daemon-reload
systemctl enable "$SERVICE" >/dev/null
systemctl start "$SERVICE"
systemctl --no-pager --lines=0 status "$SERVICE" || true
echo
echo "claude-manager is running on 127.0.0.1:8000 (settings: $CONF_DIR/config.toml)."
if [ -n "$token" ]; then
    echo "Admin token (shown only now; 'claude-manager token reset-admin' makes a new one):"
    echo "  $token"
    echo "Log in at your public_url (or http://127.0.0.1:8000/ through an SSH tunnel) with it."
else
    echo "An admin token already exists; 'sudo -u $USER_NAME claude-manager token reset-admin' replaces it."
fi
