#!/usr/bin/env bash
# Starts a local Sockudo (a Pusher-compatible server) for pusher-client's
# integration tests, installing protobuf-compiler and sockudo first if missing.
#
# Idempotent: a Sockudo already serving the app on SOCKUDO_HOST:SOCKUDO_PORT is
# left alone (checked with GET /up/APP_ID). Needs curl. Settings (all optional):
#   SOCKUDO_HOST (127.0.0.1)  SOCKUDO_PORT (16001)
#   SOCKUDO_APP_ID (pusher-client-test)  SOCKUDO_KEY (pusher-client-key)
#   SOCKUDO_SECRET (pusher-client-secret)  SOCKUDO_LOG (/tmp/sockudo-$PORT.log)
# The tests read the same variables with the same defaults.
set -euo pipefail

SOCKUDO_VERSION=5.2.0
HOST=${SOCKUDO_HOST:-127.0.0.1}
PORT=${SOCKUDO_PORT:-16001}
APP_ID=${SOCKUDO_APP_ID:-pusher-client-test}
KEY=${SOCKUDO_KEY:-pusher-client-key}
SECRET=${SOCKUDO_SECRET:-pusher-client-secret}
LOG=${SOCKUDO_LOG:-/tmp/sockudo-$PORT.log}
RUN_DIR=${TMPDIR:-/tmp}/sockudo-run-$PORT

listening() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

# Healthy means: serves our app (`GET /up/APP_ID` answers 200). A Sockudo that is
# shutting down keeps listening for its grace period but answers 503.
healthy() {
  local code
  code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/up/$APP_ID" 2>/dev/null) || true
  [ "$code" = "200" ]
}

if ! command -v curl >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi

if healthy; then
  echo "sockudo.sh: sockudo already serves app $APP_ID on $HOST:$PORT"
  exit 0
fi
if listening; then
  echo "sockudo.sh: $HOST:$PORT is busy but does not serve app $APP_ID; waiting up to 30 s for it to go away"
  for _ in $(seq 1 60); do
    if healthy; then
      echo "sockudo.sh: sockudo serves app $APP_ID on $HOST:$PORT"
      exit 0
    fi
    listening || break
    sleep 0.5
  done
  if listening; then
    echo "sockudo.sh: $HOST:$PORT is taken by something else; set SOCKUDO_PORT to a free port" >&2
    exit 1
  fi
fi

export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v protoc >/dev/null 2>&1; then
  echo "sockudo.sh: installing protobuf-compiler"
  if command -v sudo >/dev/null 2>&1 && [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi

if ! command -v sockudo >/dev/null 2>&1 || ! sockudo --version 2>/dev/null | grep -q "$SOCKUDO_VERSION"; then
  echo "sockudo.sh: building sockudo $SOCKUDO_VERSION (takes about 15-20 minutes on 2 cores)"
  nice -n 19 cargo install sockudo --version "$SOCKUDO_VERSION" --locked
fi

# Run from an empty directory so no stray config/config.{toml,json} is picked up.
mkdir -p "$RUN_DIR"
cd "$RUN_DIR"
echo "sockudo.sh: starting sockudo on $HOST:$PORT (log: $LOG)"
env \
  HOST="$HOST" \
  PORT="$PORT" \
  DEBUG=false \
  ADAPTER_DRIVER=local \
  APP_MANAGER_DRIVER=memory \
  CACHE_DRIVER=memory \
  QUEUE_DRIVER=memory \
  RATE_LIMITER_ENABLED=false \
  METRICS_ENABLED=false \
  SOCKUDO_DEFAULT_APP_ID="$APP_ID" \
  SOCKUDO_DEFAULT_APP_KEY="$KEY" \
  SOCKUDO_DEFAULT_APP_SECRET="$SECRET" \
  SOCKUDO_DEFAULT_APP_ENABLED=true \
  SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true \
  SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION=true \
  SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=10000 \
  SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=10000000 \
  SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=100000 \
  SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=10000000 \
  SOCKUDO_DEFAULT_APP_MAX_CHANNEL_NAME_LENGTH=200 \
  SOCKUDO_DEFAULT_APP_MAX_EVENT_NAME_LENGTH=200 \
  SOCKUDO_DEFAULT_APP_MAX_EVENT_CHANNELS_AT_ONCE=100 \
  SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE=10 \
  SOCKUDO_DEFAULT_APP_MAX_EVENT_PAYLOAD_IN_KB=100 \
  SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL=1000 \
  nohup sockudo >"$LOG" 2>&1 </dev/null &
echo $! >"$RUN_DIR/sockudo.pid"

for _ in $(seq 1 120); do
  if healthy; then
    echo "sockudo.sh: sockudo answers on $HOST:$PORT (pid $(cat "$RUN_DIR/sockudo.pid"))"
    exit 0
  fi
  if ! kill -0 "$(cat "$RUN_DIR/sockudo.pid")" 2>/dev/null; then
    echo "sockudo.sh: sockudo exited during start-up; last log lines:" >&2
    tail -n 40 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "sockudo.sh: sockudo did not answer on $HOST:$PORT within 60 s; last log lines:" >&2
tail -n 40 "$LOG" >&2 || true
exit 1
