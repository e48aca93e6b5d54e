"""etcd and kube-apiserver on 127.0.0.1, with RBAC, service-account tokens and an audit log.

`ControlPlane.start(state_dir)` brings both up and returns once the API server's
/readyz answers 200; `ControlPlane.load(state_dir)` finds a running one again
(what `scripts/cluster status|down` do). Everything lives in `state_dir`:
certificates, etcd's data, logs, the audit log and the admin kubeconfig.

No kubelet, scheduler or controller-manager runs here: pods stay Pending,
which is all admission needs. Without the controller-manager nobody creates a
namespace's `default` ServiceAccount, so `namespace()` creates it. A `Node`
(`harness.controlplane.node`) adds them: the API server then listens on the
node network's host address instead of loopback (`address`), where pods reach
it, and serves the Service range that network routes to the node.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from harness.controlplane import pki, tools
from harness.controlplane.processes import Running, start, wait_until
from harness.ports import free_ports

ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_RANGE = "10.0.0.0/24"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}
STATE_FILE = "state.json"
# What others keep in the state file beside the plane's own keys: a node's and a node
# cluster's records (harness.controlplane.node, .nodecluster).
RECORDS = ("node", "cluster")


@dataclass
class ControlPlane:
    state_dir: Path
    version: str
    api_port: int
    etcd_port: int
    processes: list[Running] = field(default_factory=list)
    address: str = "127.0.0.1"
    service_range: str = SERVICE_RANGE
    # Set only while `start` runs in this process (a node issues its identities from it):
    # the CA key is never written, so nothing on disk can mint new identities.
    authority: pki.Authority | None = field(default=None, compare=False, repr=False)

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    # Files every user of the control plane reads.
    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    @property
    def on_loopback(self) -> bool:
        return self.address == "127.0.0.1"

    @property
    def service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the Service range."""
        return str(ipaddress.ip_network(self.service_range)[1])

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.log"

    # Starting, finding and stopping.
    @classmethod
    def start(
        cls,
        state_dir: Path,
        version: str | None = None,
        extra_flags: Sequence[str] = (),
        address: str = "127.0.0.1",
        service_range: str = SERVICE_RANGE,
    ) -> ControlPlane:
        """etcd and the API server; with `address` (a node network's host address) the API
        server listens there instead, advertised to pods as the `kubernetes` Service."""
        version = version or tools.default_version()
        apiserver = tools.kube_binary("kube-apiserver", version)
        etcd = tools.binary("etcd")
        state_dir.mkdir(parents=True, exist_ok=True)
        api_port, etcd_port, peer_port = free_ports(3)
        plane = cls(
            state_dir.resolve(), version, api_port, etcd_port,
            address=address, service_range=service_range,
        )  # fmt: skip
        try:
            plane._write_pki()
            plane._start_etcd(etcd, peer_port)
            plane._start_apiserver(apiserver, extra_flags)
        except BaseException:
            plane.stop(remove=False)
            raise
        plane.save()
        return plane

    @classmethod
    def load(cls, state_dir: Path) -> ControlPlane:
        state = json.loads((state_dir / STATE_FILE).read_text())
        for key in RECORDS:
            state.pop(key, None)
        state["processes"] = [
            Running(**{**entry, "log": Path(entry["log"])}) for entry in state["processes"]
        ]
        return cls(**{**state, "state_dir": Path(state["state_dir"])})

    def save(self, **extra: Any) -> None:
        """The state file `load` reads; `extra` keys (a node's record) are kept across saves."""
        path = self.state_dir / STATE_FILE
        kept = {}
        if path.exists():
            kept = {k: v for k, v in json.loads(path.read_text()).items() if k in RECORDS}
        state = {
            "state_dir": str(self.state_dir),
            "version": self.version,
            "api_port": self.api_port,
            "etcd_port": self.etcd_port,
            "address": self.address,
            "service_range": self.service_range,
            "processes": [running.record() for running in self.processes],
            **kept,
            **extra,
        }
        path.write_text(json.dumps(state, indent=2))

    def adopt(self, running: Running) -> None:
        """Stop `running` with the control plane (the webhook, Argo's controller)."""
        self.processes.append(running)
        self.save()

    def stop(self, remove: bool = True) -> None:
        for running in reversed(self.processes):
            running.stop()
        self.processes.clear()
        if remove:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        else:
            self.save()

    def healthy(self) -> bool:
        return all(running.alive() for running in self.processes) and self._ready()

    # The programs.
    def _write_pki(self) -> None:
        folder = self.state_dir / "pki"
        folder.mkdir(exist_ok=True)
        authority = pki.Authority()
        self.authority = authority
        self.ca_file.write_bytes(authority.cert_pem)
        serving = authority.server(
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            sorted({"127.0.0.1", self.address, self.service_ip}),
        )
        write_pair(folder / "apiserver", serving)
        write_pair(folder / "admin", authority.client("admin", ("system:masters",)))
        # How the API server authenticates to kubelets (logs, exec) when a node runs.
        write_pair(
            folder / "kubelet-client",
            authority.client("kube-apiserver-kubelet-client", ("system:masters",)),
        )
        write_pair(folder / "service-accounts", pki.signing_key())
        (folder / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        self.write_kubeconfig(
            self.kubeconfig,
            "admin",
            {
                "client-certificate": str(folder / "admin.crt"),
                "client-key": str(folder / "admin.key"),
            },
        )

    def _start_etcd(self, etcd: Path, peer_port: int) -> None:
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        running = start(
            "etcd",
            [
                etcd, "--name=control-plane", f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=control-plane={peer_url}",
                "--unsafe-no-fsync",  # test data: durability costs seconds per test run
                "--log-level=warn",
            ],
            self.state_dir / "etcd.log",
        )  # fmt: skip
        self.processes.append(running)

        def healthy() -> bool:
            answer = requests.get(f"{client_url}/health", timeout=1)
            return answer.ok and answer.json().get("health") == "true"

        wait_until(running, healthy, 60, "healthy")

    def _start_apiserver(self, apiserver: Path, extra_flags: Sequence[str]) -> None:
        folder = self.state_dir / "pki"
        where = [f"--bind-address={self.address}", f"--advertise-address={self.address}"]
        if self.on_loopback:
            where += ["--endpoint-reconciler-type=none", "--authorization-mode=RBAC"]
        else:  # a node runs: kubelets are called on their InternalIP, their certificate checked
            where += [
                "--authorization-mode=Node,RBAC",
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-certificate-authority={self.ca_file}",
                f"--kubelet-client-certificate={folder / 'kubelet-client.crt'}",
                f"--kubelet-client-key={folder / 'kubelet-client.key'}",
            ]
        running = start(
            "kube-apiserver",
            [
                apiserver,
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                *where,
                f"--secure-port={self.api_port}", f"--cert-dir={folder}",
                f"--tls-cert-file={folder / 'apiserver.crt'}",
                f"--tls-private-key-file={folder / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={folder / 'service-accounts.crt'}",
                f"--service-account-signing-key-file={folder / 'service-accounts.key'}",
                f"--service-cluster-ip-range={self.service_range}",
                f"--audit-policy-file={folder / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}", "--audit-log-mode=blocking",
                "--profiling=false", "--v=1",
                *extra_flags,
            ],
            self.state_dir / "kube-apiserver.log",
        )  # fmt: skip
        self.processes.append(running)
        wait_until(running, self._ready, 120, "ready (/readyz)")

    def _ready(self) -> bool:
        folder = self.state_dir / "pki"
        answer = requests.get(
            f"{self.url}/readyz",
            cert=(str(folder / "admin.crt"), str(folder / "admin.key")),
            verify=str(self.ca_file),
            timeout=2,
        )
        return answer.status_code == 200

    # Clients.
    def write_kubeconfig(self, path: Path, user: str, credentials: dict[str, str]) -> None:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)

    def api(self, kubeconfig: Path | None = None) -> k8s.ApiClient:
        """The official Python client, as admin unless another kubeconfig is given."""
        api: k8s.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig), persist_config=False
        )
        return api

    def kubectl(
        self,
        *arguments: str,
        kubeconfig: Path | None = None,
        input_text: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with this API server; `check`: fail with its stderr."""
        result = subprocess.run(
            [str(tools.kube_binary("kubectl", self.version)),
             f"--kubeconfig={kubeconfig or self.kubeconfig}", *arguments],
            input=input_text, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(arguments)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def apply(self, documents: Sequence[dict[str, Any]], *flags: str) -> str:
        """Server-side apply; returns what kubectl printed (warnings go to stderr)."""
        result = self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", *flags,
            input_text=yaml.safe_dump_all(documents),
        )  # fmt: skip
        return result.stdout + result.stderr

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create `name` (once) with its `default` ServiceAccount, as a controller-manager would."""
        self.apply(
            [
                {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": name, "labels": labels or {}}},
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "default", "namespace": name}},
            ]
        )  # fmt: skip
        return name

    def token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A bound token for the ServiceAccount, from the TokenRequest API (what a pod gets)."""
        with self.api() as api:
            request = k8s.AuthenticationV1TokenRequest(
                spec=k8s.V1TokenRequestSpec(audiences=[ISSUER], expiration_seconds=seconds)
            )
            answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(
                service_account, namespace, request
            )
        if answer.status is None or not answer.status.token:
            raise RuntimeError(f"TokenRequest for {namespace}/{service_account} gave no token")
        return str(answer.status.token)

    def kubeconfig_for(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount with a fresh token."""
        path = self.state_dir / f"kubeconfig-{namespace}-{service_account}"
        self.write_kubeconfig(
            path,
            f"system:serviceaccount:{namespace}:{service_account}",
            {"token": self.token(namespace, service_account)},
        )
        return path

    def wait_for(
        self, check: Any, timeout: float = 30, what: str = "condition", seen: Any = None
    ) -> Any:
        """Poll `check()` until it returns something truthy (objects appear asynchronously);
        on timeout the error shows what `seen()` (if given) returns then."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                saw = f"; saw: {seen()}" if seen is not None else ""
                raise AssertionError(f"timed out after {timeout} s waiting for {what}{saw}")
            time.sleep(0.1)

    def audit_events(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """The audit log's events, from byte offset `start` on."""
        with self.audit_log.open() as log:
            log.seek(start)
            for line in log:
                if line.strip():
                    yield json.loads(line)


def write_pair(stem: Path, pair: pki.KeyPair) -> None:
    stem.with_suffix(".crt").write_bytes(pair.cert_pem)
    key = stem.with_suffix(".key")
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)


@contextmanager
def running_control_plane(
    state_dir: Path, version: str | None = None, extra_flags: Sequence[str] = ()
) -> Iterator[ControlPlane]:
    """For fixtures: every process stopped and the state removed, even when a test fails."""
    plane = ControlPlane.start(state_dir, version, extra_flags)
    try:
        yield plane
    finally:
        plane.stop()
