"""Stand-ins of the remote backends: real HTTP servers on loopback, one per backend.

One module per backend, one class each, one naming pattern: `bigquery.BigQueryStandIn`,
`registry.RegistryStandIn` (Registry v2), `artifactregistry.ArtifactRegistryStandIn`,
`github.GithubStandIn`, `google.GoogleStandIn` (the OAuth token endpoint) and
`apiserver.ApiServerStandIn`. A stand-in class holds what the backend serves and
answers requests as the backend does; `base.serving` runs it on a free port and
records what it was asked (`base.StandInServer`), and can be told to fail.
The real clients (google-cloud-bigquery, requests, kubernetes) talk to them.
"""
