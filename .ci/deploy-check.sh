#!/usr/bin/env bash
# Checks the deployment artifacts (deploy/) and the operator documentation (docs/) against
# the code, without a container engine or a running systemd. Exits non-zero on any failure.
#
#   .ci/deploy-check.sh            # builds target/debug/passerelle if needed (cargo, --locked)
#   PASSERELLE_BIN=path/to/passerelle .ci/deploy-check.sh
#
# Installs what it needs from Debian when missing (systemd, nginx, prometheus for promtool,
# openssl, python3-yaml); when they are present it runs in a few seconds. What each step
# verifies is printed, and listed in docs/operations/verification.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

step() { printf '\n== deploy-check: %s ==\n' "$*"; }
fail() { echo "deploy-check: FAILED: $*" >&2; exit 1; }

step "prerequisites"
APT_UPDATED=0
need() { # need COMMAND DEBIAN_PACKAGE
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "$1 is missing; install the Debian package $2"
  fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  echo "installing $2 (for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  command -v "$1" >/dev/null 2>&1 || fail "$2 installed but $1 is still missing"
}
need systemd-analyze systemd
need nginx nginx
need promtool prometheus
need openssl openssl
need sqlite3 sqlite3
need pg_dump postgresql-client
need psql postgresql-client
PY=python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  PY=/usr/bin/python3
  if ! "$PY" -c 'import yaml' 2>/dev/null; then
    need /usr/bin/python3 python3
    if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
    "$PY" -c 'import yaml' || fail "python3-yaml could not be installed"
  fi
fi

if [ -z "${PASSERELLE_BIN:-}" ]; then
  cargo build --locked -q -p passerelle-node --bin passerelle
  PASSERELLE_BIN="$ROOT/target/debug/passerelle"
fi
[ -x "$PASSERELLE_BIN" ] || fail "PASSERELLE_BIN=$PASSERELLE_BIN is not an executable"
export PASSERELLE_BIN
echo "binary: $PASSERELLE_BIN ($("$PASSERELLE_BIN" --version))"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export WORK

step "systemd unit: systemd-analyze verify and security"
# The unit names /usr/local/bin/passerelle, which verify requires to exist: check a copy
# that points at the binary under test. Verify exits 0 even on unknown keys, so any
# output is a failure.
sed "s#/usr/local/bin/passerelle#$PASSERELLE_BIN#g" deploy/passerelle.service > "$WORK/passerelle.service"
verify_out="$(cd "$WORK" && systemd-analyze verify "$WORK/passerelle.service" 2>&1)" || fail "systemd-analyze verify: $verify_out"
[ -z "$verify_out" ] || fail "systemd-analyze verify reported problems:
$verify_out"
echo "systemd-analyze verify: no warning"
exposure="$(systemd-analyze security --offline=yes "$WORK/passerelle.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
[ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
echo "systemd-analyze security exposure: $exposure (must be <= 2.0)"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "unit exposure $exposure is above 2.0"

step "nginx sample: nginx -t with a throwaway certificate"
mkdir -p "$WORK/nginx/cache" "$WORK/nginx/logs"
openssl req -x509 -newkey ed25519 -nodes -days 1 -subj "/CN=rh.ville-exemple.fr" \
  -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" 2>/dev/null
sed -e "s#/etc/letsencrypt/live/rh.ville-exemple.fr/fullchain.pem#$WORK/nginx/cert.pem#" \
    -e "s#/etc/letsencrypt/live/rh.ville-exemple.fr/privkey.pem#$WORK/nginx/key.pem#" \
    -e "s#/var/cache/nginx/passerelle#$WORK/nginx/cache#" \
    deploy/nginx/passerelle.conf > "$WORK/nginx/passerelle.conf"
grep -q "$WORK/nginx/cert.pem" "$WORK/nginx/passerelle.conf" || fail "nginx sample: certificate path not found"
cat > "$WORK/nginx/nginx.conf" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/cache/body;
    proxy_temp_path $WORK/nginx/cache/proxy;
    fastcgi_temp_path $WORK/nginx/cache/fastcgi;
    uwsgi_temp_path $WORK/nginx/cache/uwsgi;
    scgi_temp_path $WORK/nginx/cache/scgi;
    include $WORK/nginx/passerelle.conf;
}
EOF
nginx -t -q -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" \
  || fail "nginx -t refused deploy/nginx/passerelle.conf"
echo "nginx -t: configuration accepted"

step "Prometheus rules: promtool check rules"
promtool check rules deploy/prometheus/alerts.yml >/dev/null || fail "promtool check rules deploy/prometheus/alerts.yml"
echo "promtool: rules valid"
(cd deploy/prometheus && promtool test rules alerts.test.yml >/dev/null) || fail "promtool test rules deploy/prometheus/alerts.test.yml"
echo "promtool: alert unit tests pass (deploy/prometheus/alerts.test.yml)"

step "image, compose files, configuration keys, metrics, docs (against the binary)"
"$PY" - <<'PYEOF'
import json, os, re, shlex, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import yaml

ROOT = Path.cwd()
BIN = os.environ["PASSERELLE_BIN"]
WORK = Path(os.environ["WORK"])
failures = []


def fail(msg):
    failures.append(msg)
    print(f"  FAIL {msg}")


def ok(msg):
    print(f"  ok   {msg}")


def run(args, env=None, stdin=None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("PASSERELLE_")}
    base.update(env or {})
    return subprocess.run([BIN, *args], env=base, capture_output=True, text=True,
                          input=stdin, timeout=60, cwd=WORK)


def has_flag(flag, text):
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def help_text(path):
    r = run([*path, "--help"])
    return r.returncode, r.stdout + r.stderr


# ---------- configuration keys from the code ----------
example = run(["check-config", "--example"])
if example.returncode != 0:
    sys.exit(f"passerelle check-config --example failed: {example.stderr}")
EXAMPLE = example.stdout
KEYS = []  # (section, key, env var)
section = None
pending_env = None
for line in EXAMPLE.splitlines():
    m = re.match(r"^\[(\w+)\]$", line)
    if m:
        section = m.group(1)
        continue
    m = re.match(r"^# Environment: (PASSERELLE_\w+)$", line)
    if m and section:
        pending_env = m.group(1)
        continue
    m = re.match(r"^(?:# )?(\w+) =", line)
    if m and section and pending_env:
        KEYS.append((section, m.group(1), pending_env))
        pending_env = None
ENV_VARS = {e for _, _, e in KEYS}
if len(KEYS) < 10:
    fail(f"only {len(KEYS)} keys parsed from check-config --example; the parser is out of date")
else:
    ok(f"{len(KEYS)} configuration keys read from `passerelle check-config --example`")
example_file = ROOT / "deploy/passerelle.example.toml"
if example_file.exists():
    if example_file.read_text() == EXAMPLE:
        ok("deploy/passerelle.example.toml equals `passerelle check-config --example`")
    else:
        fail("deploy/passerelle.example.toml differs from `passerelle check-config --example`")
defaults = run(["check-config"]).stdout
m = re.search(r"^body_limit_bytes = (\d+)", defaults, re.M)
BODY_LIMIT = int(m.group(1)) if m else None


def check_env(where, env, files=None):
    """Runs `passerelle check-config` with env; every PASSERELLE_* key must be accepted."""
    env = dict(env)
    unknown = [k for k in env if k.startswith("PASSERELLE_") and k not in ENV_VARS and k != "PASSERELLE_CONFIG"]
    if unknown:
        fail(f"{where}: unknown configuration variables {unknown}")
        return
    r = run(["check-config"], env=env)
    if r.returncode != 0:
        fail(f"{where}: `passerelle check-config` refused the environment: {r.stderr.strip()}")
    else:
        ok(f"{where}: {len(env)} PASSERELLE_* variables accepted by `passerelle check-config`")
    return r.stdout


# ---------- Containerfile ----------
def instructions(path):
    text = path.read_text()
    lines, cur = [], ""
    for raw in text.splitlines():
        if not cur and (raw.strip().startswith("#") or not raw.strip()):
            continue
        if raw.strip().startswith("#"):
            continue
        if raw.endswith("\\"):
            cur += raw[:-1] + " "
            continue
        cur += raw
        word, _, rest = cur.strip().partition(" ")
        lines.append((word.upper(), rest.strip()))
        cur = ""
    return lines


cf = ROOT / "deploy/Containerfile"
ins = instructions(cf)
channel = re.search(r'channel\s*=\s*"([^"]+)"', (ROOT / "rust-toolchain.toml").read_text()).group(1)
froms = [rest for w, rest in ins if w == "FROM"]
rust_from = [f for f in froms if "/rust:" in f or f.startswith("rust:")]
if len(froms) < 2:
    fail("Containerfile: not multi-stage")
if not rust_from or not re.search(rf"rust:{re.escape(channel)}(-|\s|$)", rust_from[0]):
    fail(f"Containerfile: build stage {rust_from} does not use the Rust {channel} image of rust-toolchain.toml")
else:
    ok(f"Containerfile: build stage on rust:{channel} (rust-toolchain.toml), {len(froms)} stages")
for w, rest in ins:
    if w == "COPY" and "--from=" not in rest:
        parts = [p for p in rest.split() if not p.startswith("--")]
        for src in parts[:-1]:
            if not (ROOT / src).exists():
                fail(f"Containerfile: COPY source {src} does not exist")
        ok(f"Containerfile: COPY {' '.join(parts[:-1])} exist")
# Files the build reads at compile time must be inside what the build stage copies.
copied = set()
for w, rest in ins:
    if w == "COPY" and "--from=" not in rest:
        copied.update((ROOT / p).resolve() for p in [x for x in rest.split() if not x.startswith("--")][:-1])
n_inc = 0
for crate in ["protocol", "node"]:
    for src in (ROOT / crate / "src").rglob("*.rs"):
        for inc in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', src.read_text()):
            target = (src.parent / inc).resolve()
            n_inc += 1
            if not any(target == c or c in target.parents for c in copied):
                fail(f"Containerfile: {src.relative_to(ROOT)} includes {inc}, which the build stage does not copy")
ok(f"Containerfile: the {n_inc} files included at compile time by protocol/ and node/ are copied into the build stage")
if not any(w == "COPY" and "--from=" in rest and rest.split()[-1] == "/usr/local/bin/passerelle" for w, rest in ins):
    fail("Containerfile: the runtime stage does not install /usr/local/bin/passerelle")
entry = [json.loads(rest) for w, rest in ins if w == "ENTRYPOINT"]
cmd = [json.loads(rest) for w, rest in ins if w == "CMD"]
user = [rest for w, rest in ins if w == "USER"]
volume = [rest for w, rest in ins if w == "VOLUME"]
health = [rest for w, rest in ins if w == "HEALTHCHECK"]
envs = {}
for w, rest in ins:
    if w == "ENV":
        k, _, v = rest.partition("=")
        envs[k] = v
if entry != [["passerelle"]]:
    fail(f"Containerfile: ENTRYPOINT is {entry}, expected [\"passerelle\"]")
if not user or user[-1].split(":")[0] in ("root", "0"):
    fail("Containerfile: the runtime user is root")
if not volume or "/var/lib/passerelle" not in volume[0]:
    fail("Containerfile: no data volume /var/lib/passerelle")
if not cmd or cmd[-1][0] != "serve":
    fail(f"Containerfile: CMD is {cmd}, expected serve …")
CMD = cmd[-1]
code, serve_help = help_text(["serve"])
for flag in [a for a in CMD if a.startswith("--")]:
    if not has_flag(flag, serve_help):
        fail(f"Containerfile: CMD flag {flag} is not accepted by `passerelle serve --help`")
# The flags the tests give to `passerelle serve` (test files that spawn `serve`).
test_flags = set()
for tf in list((ROOT / "node/tests").rglob("*.rs")) + list((ROOT / "tests").rglob("*.rs")):
    t = tf.read_text()
    if '"serve"' in t:
        test_flags.update(re.findall(r'"(--[a-z][a-z0-9-]*)"', t))
for flag in [a for a in CMD if a.startswith("--")]:
    if flag not in test_flags:
        fail(f"Containerfile: CMD flag {flag} is not one the tests give to `passerelle serve` ({sorted(test_flags)})")
ok(f"Containerfile: ENTRYPOINT passerelle, CMD {' '.join(CMD)} (flags accepted by `passerelle serve --help` and used by the tests), USER {user[-1]}, VOLUME {volume[0]}")
m = re.search(r"CMD (\[.*\])", health[0]) if health else None
if not m or "/healthz" not in health[0]:
    fail("Containerfile: no HEALTHCHECK on /healthz")
HEALTH = json.loads(m.group(1)) if m else []
check_env("Containerfile ENV", envs)

# ---------- compose files ----------
SECRETS_README = (ROOT / "deploy/secrets/README.md").read_text()
COMPOSE_ENV = {}
for name in ["compose.yaml", "compose.sqlite.yaml"]:
    path = ROOT / "deploy" / name
    doc = yaml.safe_load(path.read_text())
    base = path.parent
    services = doc.get("services") or {}
    if "passerelle" not in services:
        fail(f"{name}: no passerelle service")
        continue
    top_volumes = set((doc.get("volumes") or {}).keys())
    top_secrets = doc.get("secrets") or {}
    for sname, secret in top_secrets.items():
        f = (base / secret.get("file", "")).resolve()
        if f.parent != (ROOT / "deploy/secrets").resolve():
            fail(f"{name}: secret {sname} file {secret.get('file')} is not under deploy/secrets/")
        if f"`{f.name}`" not in SECRETS_README:
            fail(f"{name}: secret file {f.name} is not described in deploy/secrets/README.md")
    for svc_name, svc in services.items():
        b = svc.get("build")
        if b:
            ctx = (base / b.get("context", ".")).resolve()
            if not ctx.is_dir():
                fail(f"{name}: {svc_name}: build context {ctx} does not exist")
            df = ctx / b.get("dockerfile", "Dockerfile")
            if not df.is_file():
                fail(f"{name}: {svc_name}: {df} does not exist")
            elif df.resolve() != cf.resolve():
                fail(f"{name}: {svc_name}: builds {df}, not deploy/Containerfile")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith((".", "/")):
                if not (base / src).exists():
                    fail(f"{name}: {svc_name}: bind mount source {src} does not exist")
            elif src not in top_volumes:
                fail(f"{name}: {svc_name}: volume {src} is not declared")
        for s in svc.get("secrets") or []:
            s = s if isinstance(s, str) else s.get("source")
            if s not in top_secrets:
                fail(f"{name}: {svc_name}: secret {s} is not declared")
        for dep in svc.get("depends_on") or []:
            if dep not in services:
                fail(f"{name}: {svc_name}: depends on unknown service {dep}")
    svc = services["passerelle"]
    env = {}
    for k, v in (svc.get("environment") or {}).items():
        v = str(v)
        if re.fullmatch(r"\$\{PASSERELLE_BASE_URL:\?[^}]*\}", v):
            v = "https://rh.ville-exemple.fr"
        elif "${" in v:
            fail(f"{name}: unexpected interpolation in {k}={v}")
        m = re.fullmatch(r"/run/secrets/(\w+)", v)
        if m:
            if m.group(1) not in (svc.get("secrets") or []):
                fail(f"{name}: {k} reads secret {m.group(1)}, which the service does not mount")
            secret_file = WORK / f"secret-{m.group(1)}"
            secret_file.write_text("postgres://passerelle:pw@postgres:5432/passerelle\n")
            v = str(secret_file)
        env[k] = v
    if any("/run/secrets" in str(x) for x in (svc.get("environment") or {}).values()) and not any(k.endswith("_FILE") for k in env):
        fail(f"{name}: secrets must be passed through *_FILE keys")
    out = check_env(f"{name} passerelle service", {**envs, **env})
    COMPOSE_ENV[name] = env
    ok(f"{name}: parses; build context, Containerfile, volumes, secrets and dependencies resolve")

# ---------- systemd unit: environment and credentials ----------
unit = (ROOT / "deploy/passerelle.service").read_text()
cred_dir = WORK / "credentials"
cred_dir.mkdir()
unit_env = {}
for line in unit.splitlines():
    m = re.match(r"^Environment=(\w+)=(.*)$", line)
    if m:
        unit_env[m.group(1)] = m.group(2).replace("%S", str(WORK / "state")).replace("%d", str(cred_dir))
sets = dict(re.findall(r"^SetCredential=(\w+):(.*)$", unit, re.M))
loads = dict(re.findall(r"^LoadCredential=(\w+):(.*)$", unit, re.M))
for cid in loads:
    if f"%d/{cid}" not in unit:
        fail(f"passerelle.service: credential {cid} is loaded but no *_FILE key reads %d/{cid}")
for k, v in unit_env.items():
    if k.endswith("_FILE"):
        cid = Path(v).name
        if cid not in loads:
            fail(f"passerelle.service: {k} reads credential {cid}, which is not loaded")
        (cred_dir / cid).write_text(sets.get(cid, "postgres://x@127.0.0.1/x").replace("%S", str(WORK / "state")) + "\n")
out = check_env("passerelle.service Environment= (with the SetCredential= default)", unit_env)
if out is not None and "sqlite://" not in out:
    fail("passerelle.service: the default credential does not select SQLite")
# The install procedure starts from the generated example file: it must work with the unit.
example_path = WORK / "passerelle.toml"
example_path.write_text(EXAMPLE)
r = run(["--config", str(example_path), "check-config"], env=unit_env)
if r.returncode != 0:
    fail(f"passerelle.service with the example configuration file: {r.stderr.strip()}")
else:
    ok("passerelle.service environment + `passerelle check-config --example` file: valid together")
exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
_, global_help = help_text([])
for a in exec_start[1:]:
    if a.startswith("--") and not has_flag(a, global_help) and not has_flag(a, serve_help):
        fail(f"passerelle.service: ExecStart flag {a} is unknown to the CLI")
if exec_start[-1] != "serve":
    fail("passerelle.service: ExecStart does not run `serve`")
ok("passerelle.service: ExecStart flags, credentials and *_FILE keys agree")

# ---------- run the image's command on this machine ----------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


port = free_port()
data = WORK / "container-data"
data.mkdir(mode=0o700)
args = [a.replace("/var/lib/passerelle", str(data)).replace("0.0.0.0:8080", f"127.0.0.1:{port}") for a in CMD]
env = {k: v.replace("/var/lib/passerelle", str(data)) for k, v in {**envs, **COMPOSE_ENV.get("compose.sqlite.yaml", {})}.items()}
env["PASSERELLE_SERVER_BASE_URL"] = f"http://127.0.0.1:{port}"
base_env = {k: v for k, v in os.environ.items() if not k.startswith("PASSERELLE_")}
log = open(WORK / "node.log", "w")
node = subprocess.Popen([BIN, *args], env={**base_env, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=WORK)
METRIC_NAMES = set()
try:
    deadline = time.time() + 30
    status = None
    while time.time() < deadline and node.poll() is None:
        status, _ = http_get(port, "/healthz")
        if status == 200:
            break
        time.sleep(0.2)
    if status != 200:
        fail(f"the image command `passerelle {' '.join(args)}` did not answer /healthz: {(WORK / 'node.log').read_text()[-2000:]}")
    else:
        if not (data / "node-key.secret").exists():
            fail("the image command did not use the data directory of the image (PASSERELLE_DATA_DIR)")
        ok(f"image command `passerelle {' '.join(CMD)}` (paths remapped) serves /healthz, data in PASSERELLE_DATA_DIR")
        hc = [a.replace("8080", str(port)) for a in HEALTH]
        r = subprocess.run(hc, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            fail(f"HEALTHCHECK command fails against a healthy node: {r.stderr}")
        closed = [a.replace("8080", str(free_port())) for a in HEALTH]
        r2 = subprocess.run(closed, capture_output=True, text=True, timeout=10)
        if r2.returncode == 0:
            fail("HEALTHCHECK command succeeds against a closed port")
        if r.returncode == 0 and r2.returncode != 0:
            ok("HEALTHCHECK command: succeeds on the node, fails on a closed port")
        st, _ = http_get(port, "/readyz")
        if st != 200:
            fail(f"/readyz answered {st}")
        http_get(port, "/actor")
        st, metrics = http_get(port, "/metrics")
        if st != 200:
            fail(f"/metrics answered {st}")
        for line in metrics.splitlines():
            m = re.match(r"^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
            if m:
                METRIC_NAMES.add(m.group(1))
        ok(f"/readyz 200; /metrics exposes {len([n for n in METRIC_NAMES if n.startswith('passerelle_')])} passerelle_* names")
finally:
    node.send_signal(signal.SIGTERM)
    try:
        rc = node.wait(timeout=40)
        if rc != 0:
            fail(f"the node exited with {rc} on SIGTERM")
    except subprocess.TimeoutExpired:
        node.kill()
        fail("the node did not stop within 40 s of SIGTERM")

# ---------- the documented backup / restore procedures ----------
# docs/operations/backup-restore.md: SQLite `.backup` or pg_dump while the node runs, plus
# the key file; wipe; restore; the node finds its identity, keys, tokens, agents and
# postings, and signs new postings with the restored key.
import urllib.parse


def start_node(data, port, extra=()):
    logf = open(WORK / f"node-{port}.log", "w")
    proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), *extra],
                            env=base_env, stdout=logf, stderr=subprocess.STDOUT, cwd=WORK)
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        if http_get(port, "/healthz")[0] == 200:
            return proc
        time.sleep(0.2)
    return proc


def stop_node(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None


def api(port, token, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def posting_content(base):
    doc = json.loads((ROOT / "spec/examples/posting-vacancy.json").read_text())
    u = urllib.parse.urlsplit(doc["attributedTo"])
    doc = json.loads(json.dumps(doc).replace(f"{u.scheme}://{u.netloc}", base))
    for k in ["@context", "id", "type", "attributedTo", "version", "published", "updated", "status", "proof"]:
        doc.pop(k, None)
    return doc


def publish_posting(port, token, base, label):
    st, created = api(port, token, "POST", "/api/v1/postings", posting_content(base))
    if st != 201:
        fail(f"{label}: creating a posting answered {st}: {str(created)[:300]}")
        return None
    st, published = api(port, token, "POST", f"/api/v1/postings/{created['id']}/publish")
    if st != 200:
        fail(f"{label}: publishing a posting answered {st}: {str(published)[:300]}")
        return None
    return published


def backup_roundtrip(label, db_args, backup, wipe_db, restore_db):
    before = len(failures)
    bk = WORK / label.replace(" ", "-")
    data = bk / "data"
    bk.mkdir()
    r = run(["--data-dir", str(data), *db_args, "init", "--name", f"Ville de Sauvegarde {label}", "--siren", "213801855"])
    tokens = re.findall(r"^\s*(psl_\S+)\s*$", r.stdout, re.M)
    if r.returncode != 0 or not tokens:
        fail(f"{label}: passerelle init failed or printed no admin token: {r.stderr}")
        return
    token = tokens[0]
    keys_before = run(["--data-dir", str(data), *db_args, "keys", "show"]).stdout
    current = [l.split("\t") for l in keys_before.splitlines() if l.endswith("\tcurrent")]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve_args = [*db_args, "--base-url", base, "--allow-http-loopback-peers"]
    node = start_node(data, port, serve_args)
    try:
        st, agent = api(port, token, "POST", "/api/v1/agents", {"display_name": "Agent Sauvegardé", "email": "agent@ville.example"})
        if st != 201:
            fail(f"{label}: creating an agent answered {st}: {agent}")
        posting = publish_posting(port, token, base, label)
        backup(data, bk)
        subprocess.run(["cp", "-p", str(data / "node-key.secret"), str(bk / "node-key.secret")], check=True)
    finally:
        stop_node(node)
    subprocess.run(["rm", "-rf", str(data)], check=True)
    wipe_db()
    data.mkdir(mode=0o700)
    restore_db(data, bk)
    if label.startswith("SQLite (sqlite3"):
        # Restoring the database without the key file must be refused (the doc says so).
        r = run(["--data-dir", str(data), *db_args, "keys", "show"])
        if r.returncode == 0 or "current key" not in r.stderr:
            fail(f"{label}: a restore without the key file was not refused: {r.stdout} {r.stderr}")
        (data / "node-key.secret").unlink(missing_ok=True)
    subprocess.run(["install", "-m", "0600", str(bk / "node-key.secret"), str(data / "node-key.secret")], check=True)
    node = start_node(data, port, serve_args)
    try:
        st, actor = http_get(port, "/actor")
        if st != 200 or not current or current[0][1] not in actor or f"Ville de Sauvegarde {label}" not in actor:
            fail(f"{label}: restored node's /actor ({st}) lacks the identity or the key {current}")
        if isinstance(agent, dict):
            st, got = api(port, token, "GET", f"/api/v1/agents/{agent['id']}")
            if st != 200 or got != agent:
                fail(f"{label}: agent after restore: {st} {got} != {agent}")
        if posting:
            st, got = api(port, token, "GET", f"/api/v1/postings/{posting['id']}")
            if st != 200 or got.get("document") != posting["document"] or got.get("status") != "published":
                fail(f"{label}: posting after restore differs: {st} {str(got)[:300]}")
        # The restored node signs new postings with the restored key.
        again = publish_posting(port, token, base, label)
        if again and current and not again["document"].get("proof", {}).get("verificationMethod", "").endswith("#" + current[0][0]):
            fail(f"{label}: a posting published after restore is not signed with {current[0][0]}: {again['document'].get('proof')}")
    finally:
        rc = stop_node(node)
    keys_after = run(["--data-dir", str(data), *db_args, "keys", "show"]).stdout
    if keys_after != keys_before:
        fail(f"{label}: keys differ after restore:\n{keys_before}\n{keys_after}")
    if len(failures) == before:
        ok(f"{label} backup procedure (docs/operations/backup-restore.md): backup while serving + key file, wipe, restore: "
           "same identity, keys, admin token, agent and signed posting; new postings signed with the restored key"
           + ("; restoring without the key file is refused" if label.startswith("SQLite (sqlite3") else ""))


def sqlite_backup(data, bk):
    r = subprocess.run(["sqlite3", str(data / "passerelle.db"), f".backup '{bk / 'passerelle.db'}'"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"SQLite: sqlite3 .backup failed: {r.stderr}")


def sqlite_restore(data, bk):
    subprocess.run(["install", "-m", "0600", str(bk / "passerelle.db"), str(data / "passerelle.db")], check=True)


def cli_backup(db_args):
    def backup(data, bk):
        r = run(["--data-dir", str(data), *db_args, "backup", "--out", str(bk / "node.tar")])
        if r.returncode != 0 or "backup written to" not in r.stdout:
            fail(f"passerelle backup failed ({r.returncode}): {r.stderr.strip()}")
        elif oct((bk / "node.tar").stat().st_mode & 0o777) != "0o600":
            fail("passerelle backup: the archive is not mode 0600")
    return backup


def cli_restore(db_args):
    def restore(data, bk):
        # Over a non-empty data directory, restore refuses without --force.
        (data / "stray").write_text("x")
        r = run(["--data-dir", str(data), *db_args, "restore", str(bk / "node.tar")])
        if r.returncode != 1 or "--force" not in r.stderr or len(r.stderr.strip().splitlines()) != 1:
            fail(f"passerelle restore over a non-empty data directory: {r.returncode} {r.stderr}")
        (data / "stray").unlink()
        r = run(["--data-dir", str(data), *db_args, "restore", str(bk / "node.tar")])
        if r.returncode != 0 or "checksums and row counts verified" not in r.stdout:
            fail(f"passerelle restore failed ({r.returncode}): {r.stdout} {r.stderr.strip()}")
    return restore


backup_roundtrip("SQLite (sqlite3 .backup)", [], sqlite_backup, lambda: None, sqlite_restore)
backup_roundtrip("SQLite (passerelle backup)", [], cli_backup([]), lambda: None, cli_restore([]))

admin = os.environ.get("PASSERELLE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
u = urllib.parse.urlsplit(admin)
reachable = subprocess.run(["pg_isready", "-q", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432)]).returncode == 0
if not reachable:
    if os.environ.get("CI"):
        fail(f"PostgreSQL backup test: no PostgreSQL at {u.hostname}:{u.port} (set PASSERELLE_TEST_POSTGRES_URL)")
    else:
        print(f"  SKIPPED PostgreSQL backup test: no PostgreSQL at {u.hostname}:{u.port or 5432}")
else:
    dbname = f"passerelle_deploy_check_{os.getpid()}"
    url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, "", ""))
    admin_base = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, "", ""))

    def psql(sql):
        r = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", admin_base, "-c", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail(f"PostgreSQL: {sql}: {r.stderr.strip()}")
        return r.returncode == 0

    def pg_backup(data, bk):
        r = subprocess.run(["pg_dump", "--format=custom", f"--file={bk / 'passerelle.dump'}", url], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fail(f"PostgreSQL: pg_dump failed: {r.stderr}")

    def pg_wipe():
        psql(f'DROP DATABASE "{dbname}"')
        psql(f'CREATE DATABASE "{dbname}"')

    def pg_restore(data, bk):
        r = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={url}", str(bk / "passerelle.dump")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fail(f"PostgreSQL: pg_restore failed: {r.stderr}")

    if psql(f'CREATE DATABASE "{dbname}"'):
        try:
            backup_roundtrip("PostgreSQL (pg_dump)", ["--database-url", url], pg_backup, pg_wipe, pg_restore)
            pg_wipe()
            backup_roundtrip("PostgreSQL (passerelle backup)", ["--database-url", url], cli_backup(["--database-url", url]), pg_wipe, cli_restore(["--database-url", url]))
        finally:
            psql(f'DROP DATABASE IF EXISTS "{dbname}"')

# ---------- alert rules use real metrics ----------
source_names = set()
for p in (ROOT / "node/src").rglob("*.rs"):
    source_names.update(re.findall(r"\b(passerelle_[a-z0-9_]+)\b", p.read_text()))
rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
PROMETHEUS_BUILTIN = {"up"}
FUNCS = {"sum", "rate", "by", "count", "resets", "histogram_quantile", "le", "instance", "route",
         "version", "job", "status", "changes", "increase", "max", "min", "avg", "without", "on",
         "and", "or", "unless", "bool", "irate", "delta", "time", "absent", "ignoring", "offset"}
used = set()
for group in rules["groups"]:
    for rule in group["rules"]:
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])
        expr = re.sub(r"\[[^\]]*\]", "", expr)
        expr = re.sub(r"\{[^}]*\}", "", expr)
        expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
        for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
            if name not in FUNCS:
                used.add(name)
for name in sorted(used):
    if name in PROMETHEUS_BUILTIN:
        continue
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if name not in METRIC_NAMES and base not in METRIC_NAMES and name not in source_names:
        fail(f"alerts.yml uses {name}, which the node neither exposes on /metrics nor names in node/src")
ok(f"alerts.yml: {len(used)} metric names, all exposed by the node's /metrics or named in node/src (or Prometheus' own `up`)")

# ---------- nginx body limit ----------
nginx = (ROOT / "deploy/nginx/passerelle.conf").read_text()
m = re.search(r"^\s*client_max_body_size\s+(\d+)([kKmMgG]?);", nginx, re.M)
mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
if not m:
    fail("nginx: no client_max_body_size")
elif BODY_LIMIT is None:
    fail("cannot read server.body_limit_bytes from `passerelle check-config`")
elif int(m.group(1)) * mult[m.group(2).lower()] != BODY_LIMIT:
    fail(f"nginx: client_max_body_size {m.group(1)}{m.group(2)} != node body_limit_bytes {BODY_LIMIT}")
else:
    ok(f"nginx: client_max_body_size {m.group(1)}{m.group(2)} = server.body_limit_bytes {BODY_LIMIT}")
for loc in ["/inbox", "/actor", "/api/", "/outbox"]:
    block = re.search(rf"location {re.escape(loc)} \{{(.*?)\}}", nginx, re.S)
    if not block or "proxy_cache " in block.group(1).replace("proxy_cache off", ""):
        fail(f"nginx: location {loc} missing or cached")
cached = re.findall(r"location (\S+) \{[^}]*proxy_cache passerelle_static", nginx, re.S)
if cached != ["/static/"]:
    fail(f"nginx: cached locations are {cached}, expected only /static/")
ok("nginx: /inbox, /actor, /outbox, /api/ uncached; only /static/ cached, signed requests bypass it")

# ---------- docs ----------
docs = sorted((ROOT / "docs").rglob("*.md"))
ref = (ROOT / "docs/configuration.md").read_text() if (ROOT / "docs/configuration.md").exists() else ""
if not ref:
    fail("docs/configuration.md is missing")
before = len(failures)
for section, key, env_var in KEYS:
    if f"`{section}.{key}`" not in ref or f"`{env_var}`" not in ref:
        fail(f"docs/configuration.md does not document `{section}.{key}` with `{env_var}`")
if len(failures) == before:
  ok(f"docs/configuration.md documents all {len(KEYS)} keys and their environment variables")

before = len(failures)
for p in docs + [ROOT / "README.md"]:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", p.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if not (p.parent / target).exists():
            fail(f"{p.relative_to(ROOT)}: link to {target} does not resolve")
if len(failures) == before:
    ok("links between docs/ files, README.md and deploy/ resolve")

PLANNED = re.compile(r"planned, not yet available", re.I)
GLOBAL_WITH_VALUE = {"--config", "--data-dir", "--database-url", "--log-format"}
checked = set()
for p in docs:
    text = p.read_text()
    # Code spans and code blocks only: that is where commands are written.
    chunks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for chunk in chunks:
        for line in chunk.splitlines():
            for m in re.finditer(r"(?:^|(?<=[\s/|(]))passerelle(?=\s)", line):
                before = line[: m.start()].split()
                if before and before[-1] in ("-u", "-g", "--user", "--group", "logs", "exec"):
                    continue
                rest = re.split(r"\s(?:\||;|&&|>|<|2>)", line[m.end():])[0].split()
                flags, i = [], 0
                while i < len(rest):
                    t = rest[i]
                    if t.split("=")[0] in GLOBAL_WITH_VALUE:
                        flags.append(t.split("=")[0])
                        i += 1 if "=" in t else 2
                        continue
                    if t.startswith("--"):
                        flags.append(t.split("=")[0])
                    i += 1
                # Command words are the leading lowercase words (after global options).
                cmd_path, i = [], 0
                while i < len(rest):
                    t = rest[i]
                    if t.split("=")[0] in GLOBAL_WITH_VALUE:
                        i += 1 if "=" in t else 2
                        continue
                    if not cmd_path and t.startswith("--"):
                        i += 1
                        continue
                    if not re.fullmatch(r"[a-z][a-z0-9-]*", t):
                        break
                    cmd_path.append(t)
                    i += 1
                if not cmd_path or cmd_path[0] == "passerelle":
                    continue
                # The deepest prefix of the words that is a command.
                path = []
                for w in cmd_path:
                    rc, out = help_text(path + [w])
                    if rc != 0:
                        break
                    path.append(w)
                    if "Commands:" not in out:
                        break
                idx = text.find(line.strip())
                para = text[text.rfind("\n\n", 0, idx) + 1: text.find("\n\n", idx)] if idx >= 0 else line
                label = f"{p.relative_to(ROOT)}: `passerelle {' '.join(cmd_path)}`"
                if not path or (len(path) < len(cmd_path) and "Commands:" in help_text(path)[1]):
                    if not PLANNED.search(para):
                        fail(f"{label} is not a command of the binary; mark it \"planned, not yet available\" or fix it")
                    continue
                if PLANNED.search(para) and path[0] in ("backup", "restore", "migrate-store", "partners", "keys"):
                    fail(f"{label} exists now; update the doc that calls it planned")
                _, out = help_text(path)
                for f in flags:
                    if not has_flag(f, out) and not has_flag(f, global_help):
                        fail(f"{label}: option {f} is not accepted")
                checked.add(" ".join(path))
ok(f"docs: every `passerelle …` command checked against --help ({len(checked)} distinct: {', '.join(sorted(checked))})")

if failures:
    print(f"\n{len(failures)} failure(s)")
    sys.exit(1)
PYEOF

echo
echo "deploy-check: all checks passed"
