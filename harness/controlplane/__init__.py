"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, Argo's controller.

The binaries are built from their Go modules by `scripts/get-kube`; this
package starts them as plain processes with their own state directory, hands
out admin and service-account kubeconfigs, and registers the webhook exactly
as the chart renders it. `scripts/cluster` and the pytest fixtures share it.
"""
