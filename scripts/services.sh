#!/usr/bin/env bash
# Start the local services the tests use when they are down and we are allowed to (root).
# PostgreSQL on 127.0.0.1:5432 (trust auth), NATS JetStream on 127.0.0.1:4222.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
[ "$(id -u)" = 0 ] || exit 0

if ! up 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | head -1)
  [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! up 4222 && [ -x /usr/sbin/nats-server ]; then
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
for _ in $(seq 1 30); do
  { up 5432 || ! command -v pg_ctlcluster >/dev/null 2>&1; } && \
  { up 4222 || [ ! -x /usr/sbin/nats-server ]; } && break
  sleep 0.5
done
exit 0
