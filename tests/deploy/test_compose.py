"""The container files, checked without a Docker engine.

docker-compose.yml is validated against the compose-spec JSON schema that check-jsonschema
ships (vendor.compose-spec), then for what a schema cannot know: the services nginx balances
over exist and share the Redis store, files it mounts exist. The nginx template, rendered as
the nginx image's envsubst would with the compose environment, passes ``nginx -t``. The
Dockerfile is checked for the properties the deployment relies on.
"""

from __future__ import annotations

import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.topology import MAIN_CONF, nginx_binary, nginx_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec_schema() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_nginx_balances_over_every_replica_and_they_share_redis(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    replicas = sorted(n for n in services if n.startswith("server-"))
    assert len(replicas) >= 2
    upstreams = re.findall(r"server ([\w-]+):(\d+)", services["nginx"]["environment"]
                           ["S5RF_UPSTREAMS"])
    assert sorted(host for host, _ in upstreams) == replicas
    for name in replicas:
        server = services[name]
        assert server["environment"]["S5RF_SESSION_STORE"].startswith("redis://redis:")
        assert {port for _, port in upstreams} == set(server["expose"])
        assert server["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    for name in replicas:  # a first start compiles for minutes: not unhealthy meanwhile,
        server = services[name]  # and what it compiled is kept for the next container
        assert seconds(server["healthcheck"]["start_period"]) >= 600, name
        assert "xla-cache:/home/s5rf/.cache/xla" in server["volumes"], name
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
    for volume in services["nginx"]["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).is_file(), source


@pytest.mark.skipif(nginx_binary() is None,
                    reason="nginx is not installed (apt-get install nginx; .ci/run does)")
def test_nginx_template_rendered_for_compose_passes_nginx_t(compose: dict[str, Any],
                                                            tmp_path: Path) -> None:
    env = compose["services"]["nginx"]["environment"]
    only = re.compile(env["NGINX_ENVSUBST_FILTER"])
    values = {k: v for k, v in env.items() if only.search(k)}
    # The compose network's DNS names do not resolve here: point them at loopback.
    values["S5RF_UPSTREAMS"] = re.sub(r"server-\d+:", "127.0.0.1:", values["S5RF_UPSTREAMS"])
    template = (ROOT / "deploy" / "nginx" / "s5rf.conf.template").read_text()
    site = string.Template(template).safe_substitute(values)
    assert "${" not in site
    (tmp_path / "tmp").mkdir()
    (tmp_path / "s5rf.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(MAIN_CONF.format(prefix=tmp_path))
    binary = nginx_binary()
    assert binary is not None
    checked = nginx_check(binary, tmp_path, conf)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_dockerfile_runs_s5rf_serve_as_non_root_with_a_readiness_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final = text.split("\nFROM ")[-1]  # the runtime stage
    assert final.startswith("python:") and "-slim" in final.splitlines()[0]
    assert re.search(r"^USER s5rf$", final, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", final, re.M)
    start_period = re.search(r"--start-period=(\d+)s", final)
    assert start_period and int(start_period[1]) >= 600
    assert "install -d -o s5rf -g s5rf /home/s5rf/.cache/xla" in final
    assert "S5RF_COMPILATION_CACHE=/home/s5rf/.cache/xla" in final
    assert 'ENTRYPOINT ["s5rf", "serve"]' in final
    assert "S5RF_HOST=0.0.0.0" in final
    assert "COPY --chown=root:root checkpoints " in final and "S5RF_CHECKPOINTS=" in final
    assert "COPY --chown=root:root samples " in final and "S5RF_SAMPLES=" in final
    assert re.search(r"^ARG JAX_VARIANT=cpu$", text, re.M) and '"jax[${JAX_VARIANT}]"' in text
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, re.M):
        assert list(ROOT.glob(source)), f"COPY {source}: nothing in the build context"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "tests"} <= set(ignored)


def seconds(duration: str) -> int:
    """A compose duration of whole seconds or minutes ("900s", "15m")."""
    value, unit = re.fullmatch(r"(\d+)([sm])", duration).groups()  # type: ignore[union-attr]
    return int(value) * (60 if unit == "m" else 1)
