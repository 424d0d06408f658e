"""The deployment files (deploy/) are valid and agree with the code, checked
without a Docker engine or a Kubernetes cluster (neither runs here):

  * the compose file parses and resolves with Debian's docker-compose (`config`
    needs no engine) and validates against the Compose Specification's schema;
  * every deployment gives each service its own broker user, and the broker
    users gcalctl makes (and docs/operations.md lists) are exactly
    lib/topology's grants;
  * the Kubernetes manifests validate against Kubernetes' OpenAPI schemas
    (deploy/check, npm's kubernetes-models) and follow the house rules: probes,
    limits, non-root, read-only root, every referenced key exists, two replicas
    and a disruption budget per service; the optional RabbitMQ cluster
    (deploy/kubernetes/rabbitmq) and compose's rabbitmq-cluster profile are
    three nodes that every service lists;
  * each service accepts the environment that compose and Kubernetes give it
    (its own configuration check passes and /healthz answers);
  * the systemd units pass `systemd-analyze verify` and `security`;
  * the image's runtime packages are exactly what the binaries link;
  * deploy/migrate.sh builds the schema on an empty database and is safe to rerun.
"""

import fcntl
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile

import psycopg2
import pytest
import requests
import yaml

import harness
from harness import free_port, wait_for

ROOT = harness.ROOT
DEPLOY = os.path.join(ROOT, "deploy")
CHECK = os.path.join(DEPLOY, "check")
SERVICES = ("oauth-gateway", "scheduler-worker", "mailer-worker")
BINARIES = SERVICES + ("gcalctl",)
# What each service cannot start without (docs/configuration.md).
REQUIRED = {
    "oauth-gateway": {"DATABASE_URL", "AMQP_URL", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_REDIRECT_URI",
                      "TOKEN_ENCRYPTION_KEY", "JWT_SECRET", "FRONTEND_URL"},
    "scheduler-worker": {"DATABASE_URL", "AMQP_URL", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET",
                         "TOKEN_ENCRYPTION_KEY"},
    "mailer-worker": {"DATABASE_URL", "AMQP_URL", "SMTP_URL", "MAIL_FROM"},
}
# Each service's METRICS_ADDR port: /healthz, /readyz, /metrics. The gateway's API (LISTEN_ADDR) is 8080, the one
# port for clients, and has no /metrics.
HEALTH_PORT = {"oauth-gateway": 9103, "scheduler-worker": 9101, "mailer-worker": 9102}
API_PORT = 8080
# Values for every secret and required setting, as an operator would fill them in.
FILLED = {
    "POSTGRES_PASSWORD": "pg-secret-123",
    "RABBITMQ_PASSWORD": "mq-secret-123",
    "GATEWAY_AMQP_PASSWORD": "mq-gateway-123",
    "SCHEDULER_AMQP_PASSWORD": "mq-scheduler-123",
    "MAILER_AMQP_PASSWORD": "mq-mailer-123",
    "WEBHOOK_AMQP_PASSWORD": "mq-webhook-123",
    "OPS_AMQP_PASSWORD": "mq-ops-123",
    "GOOGLE_CLIENT_ID": "123.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "client-secret-123",
    "GOOGLE_REDIRECT_URI": "https://gcal.example.com/api/integrations/google/callback",
    "TOKEN_ENCRYPTION_KEY": harness.TOKEN_KEY,
    "JWT_SECRET": "jwt-secret-0123456789abcdef0123456789",  # 32 bytes at least
    "FRONTEND_URL": "https://app.example.com/integrations",
    "SMTP_URL": "smtp://mail.example.com:587",
    "MAIL_FROM": "Calendar <calendar@example.com>",
}
# Kubernetes keeps the connection URLs in the Secret too, one broker user per service.
K8S_SECRETS = dict(FILLED, DATABASE_URL="postgresql://gcal:x@10.0.0.5:5432/gcal",
                   GATEWAY_AMQP_URL="amqp://gcal-gateway:x@10.0.0.6:5672/%2f",
                   SCHEDULER_AMQP_URL="amqp://gcal-scheduler:x@10.0.0.6:5672/%2f",
                   MAILER_AMQP_URL="amqp://gcal-mailer:x@10.0.0.6:5672/%2f")
# Each service's broker user (lib/topology.c, `gcalctl broker-users`).
BROKER_USER = {"oauth-gateway": "gcal-gateway", "scheduler-worker": "gcal-scheduler", "mailer-worker": "gcal-mailer"}


def run(cmd, cwd=ROOT, env=None, timeout=300):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def check_tools():
    """deploy/check's npm packages (the schemas), installed from the lockfile when missing or stale."""
    lock = os.path.join(CHECK, "package-lock.json")
    stamp = os.path.join(CHECK, "node_modules", ".package-lock.json")
    # pytest-xdist workers share the folder: one installs while the others wait.
    with open(os.path.join(tempfile.gettempdir(), "gcal-deploy-check.lock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
            p = run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CHECK)
            assert p.returncode == 0, p.stdout + p.stderr
    return CHECK


# Compose

def compose_config(env_file):
    """`docker-compose config`: parses, validates and interpolates the file; it needs no engine."""
    return run(["docker-compose", "-f", os.path.join(DEPLOY, "compose.yaml"), "--env-file", env_file, "config"])


# The rabbitmq-cluster profile as compose.env.example says to turn it on.
CLUSTER = {"COMPOSE_PROFILES": "rabbitmq-cluster", "RABBITMQ_NODE_2": "rabbitmq-b", "RABBITMQ_NODE_3": "rabbitmq-c",
           "RABBITMQ_ERLANG_COOKIE": "cookie-123"}


def compose_resolved(d, values):
    """compose.env.example filled in with values, and the compose file as docker-compose resolves it with that:
    (env file, resolved file, parsed)."""
    example = open(os.path.join(DEPLOY, "compose.env.example")).read()
    for key, value in values.items():
        example, n = re.subn(rf"^{key}=.*$", f"{key}={value}", example, flags=re.M)
        assert n == 1, f"compose.env.example has no {key}="
    env_file = d / "compose.env"
    env_file.write_text(example)
    p = compose_config(str(env_file))
    assert p.returncode == 0, p.stderr
    resolved = d / "resolved.yaml"
    resolved.write_text(p.stdout)
    return str(env_file), str(resolved), yaml.safe_load(p.stdout)


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """The compose file as docker-compose resolves it with a filled-in env file: (text, parsed)."""
    return compose_resolved(tmp_path_factory.mktemp("compose"), FILLED)


def amqp_list(user, password, hosts):
    """AMQP_URL as compose writes it: every broker node, in the same order for every service."""
    return ", ".join(f"amqp://{user}:{password}@{h}:5672/%2f" for h in hosts)


def test_compose_resolves_without_an_engine(compose):
    _, _, cfg = compose
    services = cfg["services"]
    assert set(services) == {"postgres", "rabbitmq", "rabbitmq-b", "rabbitmq-c", "migrate", "broker-users", "gcalctl",
                             *SERVICES}
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == [name]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert svc["depends_on"]["broker-users"]["condition"] == "service_completed_successfully"
        # Its own broker user, with its own password.
        role = BROKER_USER[name].removeprefix("gcal-")
        assert svc["environment"]["AMQP_URL"] == amqp_list(BROKER_USER[name], FILLED[role.upper() + "_AMQP_PASSWORD"],
                                                           ["rabbitmq"] * 3)
        assert svc["build"]["target"] == "runtime"
        # The health check probes the address the service listens on, with the tool the image has.
        port = HEALTH_PORT[name]
        assert svc["healthcheck"]["test"] == ["CMD", "gcalctl", "health", f"http://127.0.0.1:{port}/healthz"]
        assert svc["environment"]["METRICS_ADDR"] == f"0.0.0.0:{port}"
        missing = {v for v in REQUIRED[name] if not svc["environment"].get(v)}
        assert not missing, f"{name} lacks {missing}"
    # Workers scale: no fixed name and no host port; two replicas each.
    for name in ("scheduler-worker", "mailer-worker"):
        assert "container_name" not in services[name] and "ports" not in services[name]
        assert services[name]["deploy"]["replicas"] == 2
    # Only the gateway's API is published; its metrics port stays inside the network.
    assert services["oauth-gateway"]["environment"]["LISTEN_ADDR"] == f"0.0.0.0:{API_PORT}"
    assert [p["target"] for p in services["oauth-gateway"]["ports"]] == [API_PORT]
    # A worker is not handed secrets it does not read.
    assert "JWT_SECRET" not in services["scheduler-worker"]["environment"]
    assert not {"TOKEN_ENCRYPTION_KEY", "GOOGLE_CLIENT_SECRET", "JWT_SECRET"} & set(
        services["mailer-worker"]["environment"])
    assert services["scheduler-worker"]["environment"]["COMMAND_AMQP_USERS"] == "gcal-gateway"
    # The broker users are made before anything connects, through the management API, as the administrator.
    users = services["broker-users"]
    assert users["command"] == ["gcalctl", "broker-users", "--apply", "--vhost", "/"]
    assert users["restart"] == "no" and users["read_only"] is True and users["cap_drop"] == ["ALL"]
    assert users["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert users["environment"]["RABBITMQ_API_URL"] == f"http://gcal:{FILLED['RABBITMQ_PASSWORD']}@rabbitmq:15672/api"
    for role in ("GATEWAY", "SCHEDULER", "MAILER", "WEBHOOK", "OPS"):
        assert users["environment"][f"{role}_AMQP_PASSWORD"] == FILLED[f"{role}_AMQP_PASSWORD"]
    assert "gcal" not in {u.split(":")[1].lstrip("/") for u in
                          (services[n]["environment"]["AMQP_URL"] for n in SERVICES)}, "no service is the administrator"
    # gcalctl runs on demand, as the operator's broker user.
    ctl = services["gcalctl"]
    assert ctl["profiles"] == ["tools"] and ctl["entrypoint"] == ["gcalctl"]
    assert ctl["environment"]["AMQP_URL"] == amqp_list("gcal-ops", FILLED["OPS_AMQP_PASSWORD"], ["rabbitmq"] * 3)
    assert services["migrate"]["build"]["target"] == "migrate"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert_hardened_settings(services["oauth-gateway"]["environment"], services["mailer-worker"]["environment"])


def assert_hardened_settings(gateway, mailer):
    """What a deployment ships: iss and aud checked, mail only over TLS (docs/configuration.md)."""
    assert gateway.get("JWT_ISSUER") and gateway.get("JWT_AUDIENCE"), "JWT_ISSUER and JWT_AUDIENCE are set"
    assert str(mailer.get("SMTP_REQUIRE_TLS") or "on").lower() in ("on", "1", "true", "yes")


def test_compose_cluster_profile(tmp_path):
    """The rabbitmq-cluster profile: three nodes of one image, sharing a cookie, the second and third joining the
    first by the node names in deploy/rabbitmq/cluster.conf; every service lists the three nodes."""
    _, _, cfg = compose_resolved(tmp_path, dict(FILLED, **CLUSTER))
    services = cfg["services"]
    nodes = {name: services[name] for name in ("rabbitmq", "rabbitmq-b", "rabbitmq-c")}
    assert services["rabbitmq"].get("profiles") is None, "one broker without the profile"
    conf = open(os.path.join(DEPLOY, "rabbitmq", "cluster.conf")).read()
    listed = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M)
    assert listed == list(nodes)
    for name, node in nodes.items():
        assert node["hostname"] == name
        assert node["environment"]["RABBITMQ_ERLANG_COOKIE"] == CLUSTER["RABBITMQ_ERLANG_COOKIE"]
        # 3.12.5 fixed publishing to a quorum queue during a leader election (docs/operations.md).
        version = tuple(int(x) for x in re.match(r"rabbitmq:(\d+)\.(\d+)", node["image"]).groups())
        assert version >= (3, 13) and node["image"] == services["rabbitmq"]["image"]
        # docker-compose 1.29 prints the short form, source:target:mode.
        mounts = {v.split(":")[1]: v.split(":")[0] for v in node["volumes"] if v.startswith("/")}
        assert mounts["/etc/rabbitmq/conf.d/20-gcal.conf"].endswith("deploy/rabbitmq/rabbitmq.conf")
        if name != "rabbitmq":
            assert node["profiles"] == ["rabbitmq-cluster"]
            assert mounts["/etc/rabbitmq/conf.d/30-cluster.conf"].endswith("deploy/rabbitmq/cluster.conf")
            assert not node.get("ports"), "only the first node's management UI is published"
    for name in SERVICES:
        role = BROKER_USER[name].removeprefix("gcal-")
        assert services[name]["environment"]["AMQP_URL"] == amqp_list(
            BROKER_USER[name], FILLED[role.upper() + "_AMQP_PASSWORD"], list(nodes))


def test_compose_refuses_a_missing_secret(compose, tmp_path):
    env_file, _, _ = compose
    text = open(env_file).read().replace(f"JWT_SECRET={FILLED['JWT_SECRET']}", "JWT_SECRET=")
    broken = tmp_path / "broken.env"
    broken.write_text(text)
    p = compose_config(str(broken))
    assert p.returncode != 0 and "set JWT_SECRET" in p.stderr
    for name in ("JWT_ISSUER", "JWT_AUDIENCE"):
        text, n = re.subn(rf"^{name}=.*$", f"{name}=", open(env_file).read(), flags=re.M)
        assert n == 1
        broken.write_text(text)
        p = compose_config(str(broken))
        assert p.returncode != 0 and f"set {name}" in p.stderr, p.stderr


def test_compose_matches_the_compose_specification(compose, check_tools):
    _, resolved, _ = compose
    p = run(["node", "validate.mjs", "compose", os.path.join(DEPLOY, "compose.yaml"), resolved], cwd=check_tools)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("ok ") == 2


def test_compose_environment_is_accepted_by_every_service(compose, tmp_path):
    _, _, cfg = compose
    for name in SERVICES:
        env = {k: str(v) for k, v in cfg["services"][name]["environment"].items() if v not in (None, "")}
        start_with(name, env, tmp_path)


# Kubernetes

def k8s_documents():
    kdir = os.path.join(DEPLOY, "kubernetes")
    kust = yaml.safe_load(open(os.path.join(kdir, "kustomization.yaml")))
    docs = []
    for res in kust["resources"]:
        docs += [d for d in yaml.safe_load_all(open(os.path.join(kdir, res))) if d]
    return kust, docs


def test_kubernetes_manifests_match_the_kubernetes_schemas(check_tools):
    p = run(["node", "validate.mjs", "kubernetes", os.path.join(DEPLOY, "kubernetes")], cwd=check_tools)
    assert p.returncode == 0, p.stdout + p.stderr
    kinds = sorted(line.split()[2].split("/")[0] for line in p.stdout.splitlines() if line.startswith("ok "))
    assert kinds == sorted(["Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service",
                            "PodDisruptionBudget", "Deployment", "PodDisruptionBudget", "Deployment",
                            "PodDisruptionBudget"])


def pod_env(container, configmap, secret):
    """The environment a container gets: (name -> value, names that come from the Secret)."""
    env, secret_keys = {}, set()
    for src in container.get("envFrom", []):
        assert src["configMapRef"]["name"] == configmap["metadata"]["name"]
        env.update(configmap["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"], f"{container['name']}: no key {ref['key']} in the Secret"
        env[e["name"]] = K8S_SECRETS.get(ref["key"], secret["stringData"][ref["key"]])
        secret_keys.add(e["name"])
    return env, secret_keys


def test_kubernetes_manifests_follow_the_rules():
    kust, docs = k8s_documents()
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    configmap = by_kind["ConfigMap"]["gcal-config"]
    secret = by_kind["Secret"]["gcal-secrets"]
    assert all(v == "" for v in secret["stringData"].values()), "no real secret is committed"
    assert "AMQP_URL" not in secret["stringData"], "no broker URL shared by every service"
    assert configmap["data"]["COMMAND_AMQP_USERS"] == "gcal-gateway"
    assert {i["name"] for i in kust["images"]} == {"gcal-booking", "gcal-booking-migrate"}

    pods = {name: d["spec"]["template"] for name, d in by_kind["Deployment"].items()}
    pods["gcal-migrate"] = by_kind["Job"]["gcal-migrate"]["spec"]["template"]
    assert set(pods) == set(SERVICES) | {"gcal-migrate"}
    for name, pod in pods.items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        [c] = spec["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name} lacks {kind}"
        if name == "gcal-migrate":
            assert c["image"] == "gcal-booking-migrate" and spec["restartPolicy"] == "OnFailure"
            assert [e["name"] for e in c["env"]] == ["DATABASE_URL"]
            continue
        assert c["image"] == "gcal-booking" and c["args"] == [name]
        env, from_secret = pod_env(c, configmap, secret)
        missing = {v for v in REQUIRED[name] if not env.get(v)}
        assert not missing, f"{name} lacks {missing}"
        assert {"DATABASE_URL", "AMQP_URL"} <= from_secret
        [amqp] = [e for e in c["env"] if e["name"] == "AMQP_URL"]
        key = BROKER_USER[name].removeprefix("gcal-").upper() + "_AMQP_URL"
        assert amqp["valueFrom"]["secretKeyRef"]["key"] == key, f"{name} connects as its own broker user"
        port = HEALTH_PORT[name]
        assert env["METRICS_ADDR"] == f"0.0.0.0:{port}"
        ports = {q["name"]: q["containerPort"] for q in c["ports"]}
        if name == "oauth-gateway":
            assert env["LISTEN_ADDR"] == f"0.0.0.0:{API_PORT}"
            assert ports == {"http": API_PORT, "metrics": port}
        [p] = [q for q in c["ports"] if q["containerPort"] == port]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": p["name"]}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": p["name"]}
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"
        assert pod["metadata"]["labels"] == by_kind["Deployment"][name]["spec"]["selector"]["matchLabels"]

    gateway_env, _ = pod_env(pods["oauth-gateway"]["spec"]["containers"][0], configmap, secret)
    mailer_env, _ = pod_env(pods["mailer-worker"]["spec"]["containers"][0], configmap, secret)
    assert_hardened_settings(gateway_env, mailer_env)

    svc = by_kind["Service"]["oauth-gateway"]
    assert svc["spec"]["selector"] == pods["oauth-gateway"]["metadata"]["labels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    # Every service runs two replicas at least, and a disruption budget keeps one of each.
    for name in SERVICES:
        assert by_kind["Deployment"][name]["spec"]["replicas"] >= 2, name
        pdb = by_kind["PodDisruptionBudget"][name]["spec"]
        assert pdb["selector"]["matchLabels"] == pods[name]["metadata"]["labels"] and pdb["minAvailable"] == 1
    for name in ("scheduler-worker", "mailer-worker"):
        [spread] = pods[name]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["labelSelector"]["matchLabels"] == pods[name]["metadata"]["labels"]


def test_kubernetes_rabbitmq_cluster():
    """deploy/kubernetes/rabbitmq: a RabbitmqCluster (the RabbitMQ Cluster Operator's resource, whose schema
    is not in kubernetes-models) of three nodes on three machines, a release with the quorum queue fixes the
    cluster suite needs, leaders spread, in a namespace of its own that the services' Secret points at."""
    kdir = os.path.join(DEPLOY, "kubernetes", "rabbitmq")
    kust = yaml.safe_load(open(os.path.join(kdir, "kustomization.yaml")))
    docs = [d for res in kust["resources"] for d in yaml.safe_load_all(open(os.path.join(kdir, res))) if d]
    [ns] = [d for d in docs if d["kind"] == "Namespace"]
    [rc] = [d for d in docs if d["kind"] == "RabbitmqCluster"]
    assert kust["namespace"] == ns["metadata"]["name"] != "gcal-booking"
    assert rc["apiVersion"] == "rabbitmq.com/v1beta1"
    spec = rc["spec"]
    assert spec["replicas"] == 3
    assert tuple(int(x) for x in re.match(r"rabbitmq:(\d+)\.(\d+)", spec["image"]).groups()) >= (3, 13)
    [anti] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": rc["metadata"]["name"]}
    conf = spec["rabbitmq"]["additionalConfig"]
    assert "queue_leader_locator = balanced" in conf
    assert "quorum_queue.continuous_membership_reconciliation.target_group_size = 3" in conf
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(spec["resources"][key])
    # The services' Secret shows the three nodes' names as the operator makes them.
    secret = open(os.path.join(DEPLOY, "kubernetes", "secret.yaml")).read()
    for i in range(3):
        host = f"{rc['metadata']['name']}-server-{i}.{rc['metadata']['name']}-nodes.{ns['metadata']['name']}.svc"
        assert host in secret


def test_kubernetes_environment_is_accepted_by_every_service(tmp_path):
    _, docs = k8s_documents()
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    secret = next(d for d in docs if d["kind"] == "Secret")
    for d in docs:
        if d["kind"] == "Deployment":
            [c] = d["spec"]["template"]["spec"]["containers"]
            env, _ = pod_env(c, configmap, secret)
            start_with(d["metadata"]["name"], {k: v for k, v in env.items() if v != ""}, tmp_path)


def start_with(name, env, tmp_path):
    """Start a service with a deployment's environment: its configuration check must pass and /healthz
    answer. Addresses are moved to loopback: nothing here may listen beyond it or reach a real host."""
    env = dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin"),
               DATABASE_URL="postgresql://gcal:x@127.0.0.1:1/gcal", AMQP_URL="amqp://gcal:x@127.0.0.1:1/%2f")
    key = "METRICS_ADDR"
    env[key] = f"127.0.0.1:{free_port()}"
    if name == "oauth-gateway":
        env["LISTEN_ADDR"] = f"127.0.0.1:{free_port()}"
    log = tmp_path / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([os.path.join(harness.BUILD, "services", name, name)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def healthy():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode}:\n{log.read_text()}")
            try:
                return requests.get(f"http://{env[key]}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(healthy, 20, what=f"{name} /healthz")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# Broker users

GCALCTL = os.path.join(harness.BUILD, "services", "gcalctl", "gcalctl")


def test_the_runbooks_rabbitmqctl_commands_are_what_gcalctl_prints():
    """docs/operations.md lists the commands that make the broker users; they are lib/topology's, to the letter."""
    doc = open(os.path.join(ROOT, "docs", "operations.md")).read()
    section = doc.split("### Broker users", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    printed = run([GCALCTL, "broker-users", "--rabbitmqctl"]).stdout
    assert printed and printed in blocks, "docs/operations.md: rerun `gcalctl broker-users --rabbitmqctl`"
    assert printed.count("rabbitmqctl set_permissions -p '/' ") == 5


def test_broker_users_apply_sets_exactly_the_grants(tmp_path):
    """`gcalctl broker-users --apply` (compose's broker-users job) sets each user's permissions on a vhost to
    exactly its grant, whatever they were, and running it again changes nothing."""
    api = harness.require("TEST_RABBITMQ_API")
    vhost = "deploy_broker_users"

    def rabbit(method, path, **kw):
        return requests.request(method, api + path, timeout=20, **kw)
    rabbit("DELETE", f"/vhosts/{vhost}")
    assert rabbit("PUT", f"/vhosts/{vhost}", json={}).status_code in (201, 204)
    try:
        # A user with too much already: apply takes it back to its grant.
        assert rabbit("PUT", f"/permissions/{vhost}/gcal-mailer",
                      json={"configure": ".*", "write": ".*", "read": ".*"}).status_code in (201, 204)
        # The users exist (tests/harness/stack.py made them): without passwords they keep theirs.
        env = {k: v for k, v in os.environ.items() if not k.endswith("_AMQP_PASSWORD")}
        env["RABBITMQ_API_URL"] = api
        for attempt in (1, 2):
            p = run([GCALCTL, "broker-users", "--apply", "--vhost", vhost], env=env)
            assert p.returncode == 0, p.stdout + p.stderr
            assert p.stdout.count(": kept, permissions set") == 5, p.stdout
            got = {x["user"]: {k: x[k] for k in ("configure", "write", "read")}
                   for x in rabbit("GET", f"/vhosts/{vhost}/permissions").json() if x["user"] != "guest"}
            want = {g["user"]: {k: g[k] for k in ("configure", "write", "read")} for g in harness.broker_grants()}
            assert got == want, attempt
            assert "guest:guest" not in p.stdout + p.stderr
        p = run([GCALCTL, "broker-users", "--apply"], env={"PATH": os.environ["PATH"]})
        assert p.returncode == 78 and "RABBITMQ_API_URL" in p.stderr
    finally:
        rabbit("DELETE", f"/vhosts/{vhost}")


# systemd

def test_systemd_units_verify_and_are_hardened(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package)")
    units = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DEPLOY, "systemd", "gcal-*")))
    assert units == ["gcal-booking.env.example", "gcal-booking.target", "gcal-mailer-worker@.service",
                     "gcal-migrate.service", "gcal-oauth-gateway.service", "gcal-scheduler-worker@.service"]
    # verify insists that ExecStart exists: point it at this build's binaries and script.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for b in SERVICES:
        os.symlink(os.path.join(harness.BUILD, "services", b, b), bindir / b)
    for u in units:
        text = open(os.path.join(DEPLOY, "systemd", u)).read()
        if u.endswith(".service"):
            if u != "gcal-migrate.service":
                own = u.removeprefix("gcal-").split("@")[0].removesuffix(".service")
                assert f"EnvironmentFile=-/etc/gcal-booking/{own}.env" in text, f"{u}: no file for its own AMQP_URL"
            for must in ("EnvironmentFile=/etc/gcal-booking/gcal-booking.env", "DynamicUser=yes",
                         "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes",
                         "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
                assert must in text, f"{u} lacks {must.strip()}"
        if u.endswith(".service") and u != "gcal-migrate.service":
            assert "Restart=on-failure" in text and "RestartPreventExitStatus=78" in text
        text = text.replace("/usr/local/bin/", f"{bindir}/").replace(
            "/usr/local/libexec/gcal-booking/migrate.sh", os.path.join(DEPLOY, "migrate.sh"))
        (tmp_path / u).write_text(text)
    names = ["gcal-booking.target", "gcal-migrate.service", "gcal-oauth-gateway.service",
             "gcal-scheduler-worker@9101.service", "gcal-mailer-worker@9102.service"]
    p = run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path)
    # verify exits 0 on unknown keys and bad values too; it only says so.
    assert p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "", p.stdout + p.stderr
    for unit in names[1:]:
        file = unit.replace("@9101", "@").replace("@9102", "@")
        p = run(["systemd-analyze", "security", "--offline=true", "--threshold=20", file], cwd=tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout).group(1))
        assert level <= 2.0, f"{unit}: exposure {level}\n{p.stdout}"


# The image

def dockerfile_stages():
    text = open(os.path.join(DEPLOY, "Dockerfile")).read().replace("\\\n", " ")
    stages, current = {}, None
    for line in text.splitlines():
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line.strip(), re.I)
        if m:
            current = m.group(2)
            stages[current] = {"from": m.group(1), "lines": []}
        elif current and line.strip() and not line.lstrip().startswith("#"):
            stages[current]["lines"].append(line.strip())
    return text, stages


def apt_packages(lines):
    out = set()
    for line in lines:
        for m in re.finditer(r"apt-get install (.*?)(?:&&|$)", line):
            out |= {w for w in m.group(1).split() if not w.startswith("-")}
    return out


def package_of(path):
    """The Debian package that ships a library; dpkg knows it under /lib or /usr/lib (merged /usr)."""
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1)):
        p = run(["dpkg", "-S", candidate])
        if p.returncode == 0:
            return p.stdout.split(":")[0]
    raise AssertionError(f"no package ships {path}")


def test_image_has_exactly_the_runtime_libraries_the_binaries_link():
    text, stages = dockerfile_stages()
    assert list(stages) == ["build", "migrate", "runtime"], "the services' stage is the default (last) one"
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:bookworm-slim$", text, re.M)
    needed = set()
    for b in BINARIES:
        out = run(["readelf", "-d", os.path.join(harness.BUILD, "services", b, b)]).stdout
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out):
            path = run(["/sbin/ldconfig", "-p"]).stdout
            m = re.search(rf"^\s+{re.escape(lib)} \(libc6,x86-64\) => (\S+)$", path, re.M)
            assert m, f"{lib} is not in the linker cache"
            needed.add(package_of(m.group(1)))
    needed.discard("libc6")  # in every Debian image
    # A sanitizer build (tests/run's asan suite) links its runtimes; the image's release build does not.
    needed -= {p for p in needed if re.match(r"lib(asan|ubsan|lsan|tsan)\d", p)}
    runtime = apt_packages(stages["runtime"]["lines"])
    assert runtime == needed | {"tzdata", "ca-certificates"}
    build = apt_packages(stages["build"]["lines"])
    install_deps = open(os.path.join(DEPLOY, "install-deps.sh")).read()
    devs = set(re.findall(r"\b(lib[\w.+-]+-dev)\b", install_deps.split("# the real servers")[0]))
    assert devs and devs <= build, f"build stage lacks {devs - build}"
    assert {"meson", "ninja-build", "pkg-config", "gcc"} <= build
    for stage in ("runtime", "migrate"):
        users = [line for line in stages[stage]["lines"] if line.startswith("USER ")]
        assert users == ["USER 10001:10001"], f"{stage} runs as {users}"
    copies = " ".join(line for line in stages["runtime"]["lines"] if line.startswith("COPY"))
    assert copies == "COPY --from=build /out/usr/local/bin/ /usr/local/bin/"
    build_lines = " ".join(stages["build"]["lines"])
    for b in BINARIES:
        assert f"build/services/{b}/{b}" in build_lines and f" {b}" in build_lines.split("meson compile")[1]
    # Everything a COPY takes from the context gets past the .dockerignore.
    ignore = open(os.path.join(DEPLOY, "Dockerfile.dockerignore")).read().split()
    for stage in stages.values():
        for line in stage["lines"]:
            if line.startswith("COPY ") and "--from" not in line:
                for src in line.split()[1:-1]:
                    assert "!" + src in ignore or "!" + src + "/" in ignore, f"{src} is excluded from the context"


def test_image_build_stage_builds_from_its_context(tmp_path):
    """The build stage's commands, run on a copy of exactly what its COPY lines take (no engine here)."""
    _, stages = dockerfile_stages()
    src, out = tmp_path / "src", tmp_path / "out"
    runs = []
    for line in stages["build"]["lines"]:
        if line.startswith("COPY "):
            *paths, dest = line.split()[1:]
            target = src if dest in ("./", ".") else src / dest
            for p in paths:
                if os.path.isdir(os.path.join(ROOT, p)):
                    shutil.copytree(os.path.join(ROOT, p), target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "node_modules", "output"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(os.path.join(ROOT, p), target)
        elif line.startswith("RUN ") and "meson setup" in line:
            runs.append(line[4:].replace("/out/", f"{out}/"))
    assert len(runs) == 1
    p = run(["bash", "-ec", runs[0]], cwd=src, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for b in BINARIES:
        assert os.access(out / "usr/local/bin" / b, os.X_OK), b
    assert run([str(out / "usr/local/bin/gcalctl"), "--help"]).returncode == 0


# Migrations

def test_migrate_script_builds_the_schema_and_reruns_safely(tmp_path):
    port = harness.require("TEST_PG_PORT")
    admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS deploy_migrate WITH (FORCE)")
        cur.execute("CREATE DATABASE deploy_migrate")
    url = f"postgresql://postgres@127.0.0.1:{port}/deploy_migrate"
    env = dict(os.environ, DATABASE_URL=url)
    env.pop("MIGRATIONS_DIR", None)
    try:
        p = run([os.path.join(DEPLOY, "migrate.sh")], env=env)
        files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(ROOT, "migrations", "*.sql")))
        assert p.returncode == 0, p.stderr
        assert [line.split()[-1] for line in p.stderr.splitlines() if "applying" in line] == files
        assert f"({len(files)} applied)" in p.stderr
        p = run([os.path.join(DEPLOY, "migrate.sh")], env=env)
        assert p.returncode == 0 and "up to date (0 applied)" in p.stderr, p.stderr

        columns = ("SELECT table_name, column_name, data_type FROM information_schema.columns"
                   " WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 2")
        with psycopg2.connect(url) as c, c.cursor() as cur:
            cur.execute("SELECT filename FROM schema_migrations ORDER BY filename")
            assert [r[0] for r in cur.fetchall()] == files
            cur.execute(columns)
            ours = cur.fetchall()
        with psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="gcal_template") as c, \
                c.cursor() as cur:
            cur.execute(columns)
            assert ours == cur.fetchall(), "migrate.sh builds the schema the tests run on"

        p = run([os.path.join(DEPLOY, "migrate.sh"), str(tmp_path)], env=env)
        assert p.returncode == 66 and "no .sql files" in p.stderr
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS deploy_migrate WITH (FORCE)")
        admin.close()


def test_shell_scripts_pass_shellcheck():
    p = run(["shellcheck", os.path.join(DEPLOY, "migrate.sh")])
    assert p.returncode == 0, p.stdout


def test_local_up_shows_build_progress_and_the_build_errors(tmp_path):
    """deploy/local/up says what it is doing while it builds, and when the build fails it shows the
    compiler's errors and stops before starting anything. A stand-in meson plays the build."""
    tree = tmp_path / "repo"
    (tree / "deploy" / "local").mkdir(parents=True)
    shutil.copy(os.path.join(DEPLOY, "local", "up"), tree / "deploy" / "local" / "up")
    (tree / "deploy" / "install-deps.sh").write_text("#!/bin/sh\nexit 0\n")
    (tree / "deploy" / "install-deps.sh").chmod(0o755)
    (tree / "build").mkdir()
    (tree / "build" / "build.ninja").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "meson").write_text(
        "#!/bin/sh\n"
        "i=1; while [ $i -le 60 ]; do echo \"[$i/80] Compiling C object lib/m$i.o\"; i=$((i+1)); done\n"
        "echo 'FAILED: lib/broken.c.o'\n"
        "echo \"../lib/broken.c:3:9: error: 'nope' undeclared (first use in this function)\"\n"
        "exit 1\n")
    (bin_dir / "meson").chmod(0o755)
    state = tmp_path / "state"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", GCAL_LOCAL_DIR=str(state))
    p = subprocess.run([str(tree / "deploy" / "local" / "up")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1, p.stderr
    assert "up: building (meson compile -C build)" in p.stderr
    assert "up: built 25 of 80\n" in p.stderr and "up: built 50 of 80\n" in p.stderr
    assert "up: meson compile -C build failed" in p.stderr
    assert "'nope' undeclared" in p.stderr and "FAILED: lib/broken.c.o" in p.stderr
    assert not state.exists(), "nothing is started after a failed build"
