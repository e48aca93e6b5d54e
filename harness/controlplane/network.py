"""The node's network: a network namespace of its own, joined to this machine by one veth pair.

Everything a node changes in networking happens inside its namespace
(`jetstream-pin-N`): the CNI bridge and the pods' veths, kube-proxy's and the
CNI plugins' iptables rules, `ip_forward` and `bridge-nf-call-iptables`. So
deleting the namespace undoes all of it, two clusters (a test run and one kept
for development) never share a rule, and this machine's own firewall and
sysctls are never touched.

Addresses (N is the first free index, 0-199):
- the veth pair `jspinN` (this machine, 10.245.N.1: the API server and the image
  registry listen there, nowhere else) and `node` in the namespace (10.245.N.2,
  the kubelet's node IP; its default route points back to 10.245.N.1);
- pods: 10.244.N.0/24 on the namespace's bridge; Services: 10.96.N.0/24. This
  machine routes both to 10.245.N.2 and nothing else to the namespace.

Pods reach this machine's 10.245.N.1 (delivered locally) and nothing beyond
it: this machine does not forward packets (`ip_forward` stays as it is, off on
a fresh one), and no address is masqueraded onto its own interfaces.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PREFIX = "jetstream-pin-"
MAX_NETWORKS = 200
NODE_LINK = "node"
BRIDGE = "cni0"


class NetworkError(RuntimeError):
    pass


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class NodeNetwork:
    index: int

    @property
    def namespace(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def namespace_path(self) -> Path:
        return Path("/run/netns") / self.namespace

    @property
    def host_link(self) -> str:
        return f"jspin{self.index}"

    @property
    def host_address(self) -> str:
        return f"10.245.{self.index}.1"

    @property
    def node_address(self) -> str:
        return f"10.245.{self.index}.2"

    @property
    def pod_range(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def service_range(self) -> str:
        return f"10.96.{self.index}.0/24"

    def inside(self, *command: str) -> list[str]:
        """`command` run in the namespace (the mount namespace stays this machine's, so
        the kubelet's and containerd's mounts see each other)."""
        return ["nsenter", f"--net={self.namespace_path}", "--", *command]

    def exists(self) -> bool:
        return self.namespace_path.exists()

    # Creating and removing.
    @classmethod
    def create(cls) -> NodeNetwork:
        """The first free index: `ip netns add` fails when another cluster holds it."""
        for index in range(MAX_NETWORKS):
            network = cls(index)
            if network.exists() or _link_exists(network.host_link):
                continue
            if run("ip", "netns", "add", network.namespace, check=False).returncode != 0:
                continue
            try:
                network._connect()
            except BaseException:
                network.remove()
                raise
            return network
        raise NetworkError(f"no free node network: {MAX_NETWORKS} namespaces {PREFIX}N exist")

    def _connect(self) -> None:
        link, ns = self.host_link, self.namespace
        run("ip", "link", "add", link, "type", "veth", "peer", "name", NODE_LINK, "netns", ns)
        run("ip", "address", "add", f"{self.host_address}/24", "dev", link)
        run("ip", "link", "set", link, "up")
        for command in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "address", "add", f"{self.node_address}/24", "dev", NODE_LINK],
            ["ip", "link", "set", NODE_LINK, "up"],
            ["ip", "route", "add", "default", "via", self.host_address],
            # Pods' traffic is routed between the bridge and the veth, and bridged
            # traffic passes kube-proxy's rules (a pod calling a Service on its own node).
            ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
            ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
        ):
            run(*self.inside(*command))
        for destination in (self.pod_range, self.service_range):
            run("ip", "route", "add", destination, "via", self.node_address, "dev", link)

    def remove(self) -> None:
        """Delete the namespace (its interfaces, rules and routes go with it) and the veth."""
        if self.exists():
            run("ip", "netns", "delete", self.namespace, check=False)
        if _link_exists(self.host_link):
            run("ip", "link", "delete", self.host_link, check=False)


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()
