"""The Kubernetes API: Workflow labels and the overrides ConfigMap, Events, certificates.

`client` builds the API client and describes its failures; `overrides` is the
`OverrideSource` backed by the API; `events` records each pin on the pod's
Workflow; `certificates` keeps the serving Secret and the webhook's caBundle.
"""
