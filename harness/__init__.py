"""What the tests, the benchmarks and `scripts/cluster` share: real parts on loopback.

Not part of the shipped package (pyproject's package list holds only `webhook*`),
and it imports nothing from `tests`, so a benchmark or `scripts/cluster` runs
without the test suite:

- `controlplane/`: etcd, kube-apiserver, Argo's controller and a one-node
  cluster started as plain processes (`python -m harness.controlplane` is
  `scripts/cluster`);
- `standins/`: one HTTP stand-in per remote backend, `<backend>.py` holding
  `<Backend>StandIn`;
- `servers`, `clients`: the real webhook under gunicorn with TLS, and the
  clients that load it;
- `builders`: pods, reviews, images and commits as the webhook receives them;
- `dockerregistry`, `gitrepos`, `helm`: the real docker-registry, git and helm;
- `podstream`: pods created at a steady rate while a cluster is disturbed;
- `ports`: free loopback ports, found one way.
"""
