"""One node that really runs pods: containerd, a kubelet, kube-proxy, and the controllers.

`Node.start(plane, network)` joins a `ControlPlane` (started on the network's host
address) with everything pods need to run on this machine:
- kube-controller-manager and kube-scheduler (this machine's network; they only
  talk to the API server);
- containerd 2 with Debian's runc and CNI plugins, a kubelet (cgroupfs driver,
  `failCgroupV1: false` for this cgroup-v1 machine) and kube-proxy (iptables),
  all three inside the node's network namespace (`NodeNetwork`), sharing this
  machine's mounts so the kubelet's volumes reach containerd's containers;
- containerd pulls `gcr.io`, `quay.io` and `registry.k8s.io` images from the
  local registry (`mirrors`), so pod specs keep their real image names.

Each component has its own identity (client certificates from the control
plane's CA; the kubelet as `system:node:<name>`, checked by the Node
authorizer), and the API server verifies the kubelet's serving certificate.
No cluster DNS runs: pods find Services by the `*_SERVICE_HOST` variables or
their ClusterIP, and their resolv.conf names no server.

Whatever the node leaves on this machine has a name or a place of its own:
the cgroup `jetstream-pin-N` in every hierarchy, `/run/jetstream-pin-N`
(sockets and runtime state, short paths for the 108-byte socket limit), its
mounts (the kubelet's root dir, container root filesystems, volumes, network
namespaces) under the state directory, CNI result files named after its
network, and `/var/log/containers` links into its pod logs. `stop` kills the
containers and their shims, unmounts, removes all of those and the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.controlplane import tools
from harness.controlplane.network import NodeNetwork
from harness.controlplane.plane import ControlPlane, write_pair
from harness.controlplane.processes import Running, start, wait_until

NAME = "jetstream-pin-node"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_LOGS = Path("/var/log/containers")  # the kubelet's links; not configurable
CNI_CACHE = Path("/var/lib/cni/results")  # libcni's result cache; not configurable
CNI_PLUGINS = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"  # Debian's runc
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2"
MIRRORED = ("gcr.io", "quay.io", "registry.k8s.io")
NOT_READY_TIMEOUT = 120


def _hierarchies() -> list[Path]:
    """The cgroup v1 hierarchies this machine mounts (not the empty cgroup2 one)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, where, kind, *_ = line.split()
        if kind == "cgroup" and where.startswith(str(CGROUP_ROOT)):
            found.append(Path(where))
    return found


@dataclass
class Node:
    plane: ControlPlane
    network: NodeNetwork

    # Where things are.
    @property
    def folder(self) -> Path:
        return self.plane.state_dir / "node"

    @property
    def runtime_dir(self) -> Path:
        return Path("/run") / self.network.namespace

    @property
    def containerd_socket(self) -> Path:
        return self.runtime_dir / "containerd.sock"

    @property
    def cgroup(self) -> str:
        return self.network.namespace

    @property
    def cni_network(self) -> str:
        return self.network.namespace

    @property
    def pod_logs(self) -> Path:
        return self.folder / "pods"

    def record(self) -> dict[str, Any]:
        return {"index": self.network.index}

    @classmethod
    def load(cls, plane: ControlPlane, record: Mapping[str, Any]) -> Node:
        return cls(plane, NodeNetwork(int(record["index"])))

    # Starting.
    @classmethod
    def start(cls, plane: ControlPlane, network: NodeNetwork, mirror: str, ca_file: Path) -> Node:
        """Start the node's programs against `plane`; `mirror` (host:port, TLS signed by
        `ca_file`) serves the mirrored registries. Returns once the node is Ready."""
        node = cls(plane, network)
        plane.save(node=node.record())
        node.folder.mkdir(parents=True, exist_ok=True)
        node.runtime_dir.mkdir(parents=True, exist_ok=True)
        node._issue_identities()
        node._make_cgroup()
        node._start_controllers()
        node._start_containerd(mirror, ca_file)
        node._start_kubelet()
        node._start_kube_proxy()
        plane.wait_for(node.ready, NOT_READY_TIMEOUT, what=f"node {NAME} Ready")
        return node

    def _issue_identities(self) -> None:
        authority = self.plane.authority
        if authority is None:
            raise RuntimeError("a node joins a control plane started in this process")
        pki = self.folder / "pki"
        pki.mkdir(exist_ok=True)
        users = {
            "kubelet": (f"system:node:{NAME}", ("system:nodes",)),
            "kube-controller-manager": ("system:kube-controller-manager", ()),
            "kube-scheduler": ("system:kube-scheduler", ()),
            "kube-proxy": ("system:kube-proxy", ()),
        }
        for component, (user, groups) in users.items():
            write_pair(pki / component, authority.client(user, groups))
            self.plane.write_kubeconfig(
                self.folder / f"{component}.kubeconfig",
                user,
                {
                    "client-certificate": str(pki / f"{component}.crt"),
                    "client-key": str(pki / f"{component}.key"),
                },
            )
        write_pair(pki / "kubelet-serving", authority.server([NAME], [self.network.node_address]))

    def _make_cgroup(self) -> None:
        """The kubelet's cgroupRoot must exist; cpuset needs its parent's CPUs and memory."""
        for hierarchy in _hierarchies():
            folder = hierarchy / self.cgroup
            folder.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).exists():
                    (folder / name).write_text((hierarchy / name).read_text())

    def _start(self, name: str, command: list[str], inside: bool) -> Running:
        wrapper = self.network.inside() if inside else []
        env = dict(os.environ, PATH=f"{tools.TOOLS / 'bin'}:{os.environ.get('PATH', '')}")
        running = start(name, command, self.folder / f"{name}.log", env=env, wrapper=wrapper)
        self.plane.adopt(running)
        return running

    def _start_controllers(self) -> None:
        pki = self.plane.state_dir / "pki"
        self._start(
            "kube-controller-manager",
            [
                str(tools.binary("kube-controller-manager")),
                f"--kubeconfig={self.folder / 'kube-controller-manager.kubeconfig'}",
                "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'service-accounts.key'}",
                f"--root-ca-file={self.plane.ca_file}", "--secure-port=0",
                "--cluster-name=jetstream-pin", "--v=1",
            ],
            inside=False,
        )  # fmt: skip
        self._start(
            "kube-scheduler",
            [
                str(tools.binary("kube-scheduler")),
                f"--kubeconfig={self.folder / 'kube-scheduler.kubeconfig'}",
                "--leader-elect=false", "--secure-port=0", "--v=1",
            ],
            inside=False,
        )  # fmt: skip

    def _start_containerd(self, mirror: str, ca_file: Path) -> None:
        certs = self.folder / "certs.d"
        for host in (*MIRRORED, mirror):
            folder = certs / host  # containerd's spelling: host or host:port
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts.toml").write_text(
                f'server = "https://{mirror}"\n\n'
                f'[host."https://{mirror}"]\n'
                '  capabilities = ["pull", "resolve"]\n'
                f'  ca = "{ca_file}"\n'
            )
        cni = self.folder / "cni"
        cni.mkdir(exist_ok=True)
        (cni / "10-bridge.conflist").write_text(json.dumps(self._cni_config(), indent=2))
        config = self.folder / "containerd.toml"
        config.write_text(self._containerd_config(certs, cni))
        running = self._start(
            "containerd",
            [str(tools.binary("containerd")), f"--config={config}", "--log-level=warn"],
            inside=True,
        )
        wait_until(running, self.containerd_socket.exists, 60, "serving its socket")

    def _cni_config(self) -> dict[str, Any]:
        """A bridge with the pods' gateway and host-local addresses; no masquerading."""
        return {
            "cniVersion": "1.0.0",
            "name": self.cni_network,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.network.pod_range}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.folder / "ipam"),
                    },
                }
            ],
        }

    def _containerd_config(self, certs: Path, cni: Path) -> str:
        """Version 3; every path is the node's own (nothing under /var/lib or /opt)."""
        state = self.runtime_dir / "containerd"
        cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
        return f"""version = 3
root = "{self.folder / "containerd"}"
state = "{state}"
imports = []
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{SANDBOX_IMAGE}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{certs}"

[{cri_runtime}]
  # Nobody may lower oom_score_adj on this machine (no CAP_SYS_RESOURCE for root): without
  # this every sandbox fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  enable_cdi = false
  netns_mounts_under_state_dir = true
  [{cri_runtime}.containerd]
    default_runtime_name = "runc"
    [{cri_runtime}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri_runtime}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{RUNC}"
        Root = "{self.runtime_dir / "runc"}"
  [{cri_runtime}.cni]
    bin_dirs = ["{CNI_PLUGINS}"]
    conf_dir = "{cni}"
    # containerd sets up each sandbox's lo itself: the loopback plugin would leave a
    # result file per sandbox in /var/lib/cni, named after nothing of this node.
    use_internal_loopback = true

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "{self.runtime_dir / "s"}"
"""

    def _start_kubelet(self) -> None:
        pki = self.folder / "pki"
        resolv = self.folder / "resolv.conf"
        resolv.write_text("# no cluster DNS on this node; pods use Service addresses\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}",
            "failCgroupV1": False,  # this machine has cgroup v1 only
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": self.network.node_address,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.plane.ca_file)},
            },
            "authorization": {"mode": "Webhook"},
            "resolvConf": str(resolv),
            "podLogsDir": str(self.pod_logs),
            "volumePluginDir": str(self.folder / "volume-plugins"),
            "failSwapOn": False,
            "serializeImagePulls": False,
            # A shared development machine: never evict the tests' pods or their images.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "clusterDomain": "cluster.local",
        }
        path = self.folder / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        self._start(
            "kubelet",
            [
                str(tools.binary("kubelet")), f"--config={path}",
                f"--kubeconfig={self.folder / 'kubelet.kubeconfig'}",
                f"--root-dir={self.folder / 'kubelet'}", f"--hostname-override={NAME}",
                f"--node-ip={self.network.node_address}", "--v=1",
            ],
            inside=True,
        )  # fmt: skip

    def _start_kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.folder / "kube-proxy.kubeconfig")},
            "hostnameOverride": NAME,
            "mode": "iptables",
            "clusterCIDR": self.network.pod_range,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # Leave the (machine-wide) conntrack sysctls alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"localhostNodePorts": False},
        }
        path = self.folder / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        self._start(
            "kube-proxy",
            [str(tools.binary("kube-proxy")), f"--config={path}", "--v=1"],
            inside=True,
        )

    # Reading.
    def ready(self) -> bool:
        result = self.plane.kubectl("get", "node", NAME, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # Stopping.
    def stop(self) -> None:
        """Stop every program, kill what the kubelet left running, and remove every trace
        (the state directory last, once nothing is mounted in it)."""
        self.plane.stop(remove=False)
        self._kill_containers()
        self._kill_shims()
        self._unmount()
        self._remove_cgroup()
        self._remove_traces()
        self.network.remove()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.plane.state_dir, ignore_errors=True)

    def _kill_containers(self, timeout: float = 30) -> None:
        """SIGKILL every process in the node's cgroup until none is left."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self._cgroup_pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes left in cgroup {self.cgroup}: {sorted(pids)}")
            time.sleep(0.1)

    def _cgroup_pids(self) -> set[int]:
        """Every process in the node's cgroup, in any hierarchy."""
        pids: set[int] = set()
        for hierarchy in _hierarchies():
            for procs in (hierarchy / self.cgroup).rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(line) for line in procs.read_text().split())
        return pids

    def _kill_shims(self) -> None:
        """containerd's runc shims outlive it by design: those serving this node's socket."""
        marker = str(self.containerd_socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def _unmount(self) -> None:
        """Everything mounted under the node's folders, deepest first (the kubelet leaves its
        root dir bind-mounted on itself, containerd its root filesystems and netns files)."""
        roots = (str(self.plane.state_dir), str(self.runtime_dir))
        for _ in range(5):
            points = [
                line.split()[4]
                for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split()[4].startswith(roots)
            ]
            if not points:
                return
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def _remove_cgroup(self) -> None:
        for hierarchy in _hierarchies():
            top = hierarchy / self.cgroup
            if not top.is_dir():
                continue
            for folder in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()

    def _remove_traces(self) -> None:
        """The two things the kubelet and libcni write to fixed places."""
        if CONTAINER_LOGS.is_dir():
            for link in CONTAINER_LOGS.iterdir():
                with contextlib.suppress(OSError):
                    if link.is_symlink() and str(os.readlink(link)).startswith(str(self.pod_logs)):
                        link.unlink()
        if CNI_CACHE.is_dir():
            for result in CNI_CACHE.glob(f"{self.cni_network}-*"):
                result.unlink(missing_ok=True)
