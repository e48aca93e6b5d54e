"""From a validated Config to running objects: sources, caches, resolver, admitter, dispatch.

The one place that knows which class implements which `type:` of source.
Everything it builds is checked here, at start, so a bad source fails the
start-up with a message instead of failing the first pod.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from webhook import metrics
from webhook.admission.admitter import Admitter, DecisionSideEffect
from webhook.admission.deadline import LookupPool
from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.config import (
    ArtifactRegistrySource,
    Config,
    ConfigError,
    ConfigRepoConfig,
    GcrSource,
    GithubSource,
    ImageConfig,
    OciSource,
    StaticEnrollmentSource,
    StaticSource,
)
from webhook.core.commands import ArgsRule
from webhook.core.datasets import ALLOW_LIST_KEY
from webhook.core.pods import PodLimits
from webhook.insight.admin import admin_blueprint
from webhook.insight.inventory import Inventory, take_inventory
from webhook.insight.recent import KEEP, RecentDecisions
from webhook.insight.status import StatusSource
from webhook.serving.app import admin_app
from webhook.serving.dispatch import Dispatch
from webhook.serving.server import RuntimeState, WebhookServer
from webhook.serving.tls import ReloadingContext
from webhook.sources import (
    ConfigHistory,
    EnrollmentClock,
    ExperimentLister,
    ImageHistory,
    OverrideLister,
    OverrideSource,
    SourceError,
)
from webhook.sources.artifactregistry import ArtifactRegistryImages
from webhook.sources.bigquery import BigQueryEnrollments
from webhook.sources.cached import (
    CachedConfigHistory,
    CachedEnrollments,
    CachedImageHistory,
    CachedOverrides,
    CachedWorkflows,
)
from webhook.sources.descriptions import Descriptions
from webhook.sources.dockerauth import AuthFileError, read_auth_file
from webhook.sources.endpoints import check_endpoint, registry_host
from webhook.sources.gcr import GcrImages
from webhook.sources.git import GitConfigHistory
from webhook.sources.github import GithubConfigHistory
from webhook.sources.instrumented import (
    InstrumentedConfigHistory,
    InstrumentedEnrollments,
    InstrumentedImages,
    observed,
)
from webhook.sources.nowait import NeverWaits
from webhook.sources.oci import OciImages
from webhook.sources.static import (
    StaticConfigHistory,
    StaticData,
    StaticDataError,
    StaticEnrollments,
    StaticImages,
    StaticOverrides,
)

WARMUP_GRACE_SECONDS = 10.0

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class SplitOverrides(NeverWaits):
    """Workflow labels from one source, slug entries from another."""

    def __init__(self, workflows: OverrideSource, slugs: OverrideSource) -> None:
        self.workflows = workflows
        self.slugs = slugs
        self.name = f"{workflows.name} + {slugs.name}"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return self.workflows.workflow_pin(namespace, workflow)

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        return self.slugs.slug_pin(slug, fresh_since)

    def pinned_slugs(self) -> Collection[str]:
        return self.slugs.pinned_slugs() if isinstance(self.slugs, OverrideLister) else ()


def _netloc(endpoint: str | None) -> list[str]:
    return [urlsplit(endpoint).netloc] if endpoint else []


class Background(Protocol):
    """A source with work of its own (a git mirror's fetches), started after the fork."""

    def start(self) -> None: ...


class Wiring:
    """Builds each part once; tests and the CLI take the parts they need."""

    def __init__(
        self,
        config: Config,
        draining: Callable[[], bool] = lambda: False,
        decisions_dir: Path | None = None,
        record_events: bool = True,
    ) -> None:
        self.config = config
        self.draining = draining
        self.decisions_dir = decisions_dir  # shared by the workers; None: this process only
        self.record_events = record_events  # False for `review`: a CLI run posts no Event
        self._started = time.monotonic()
        self.background: list[Background] = []

    @cached_property
    def static_data(self) -> StaticData:
        if self.config.static is None:
            raise ConfigError("static: no static data file is configured")
        try:
            return StaticData.load(self.config.static)
        except StaticDataError as err:
            raise ConfigError(str(err)) from None

    @cached_property
    def enrollment_source(self) -> EnrollmentClock:
        """The configured clock itself (one client, shared by the webhook and the report)."""
        source = self.config.enrollments
        if isinstance(source, StaticEnrollmentSource):
            return StaticEnrollments(self.static_data)
        check_endpoint(source.endpoint, "enrollments.endpoint")
        return BigQueryEnrollments(source)

    @cached_property
    def instrumented_enrollments(self) -> InstrumentedEnrollments:
        return InstrumentedEnrollments(self.enrollment_source)

    @cached_property
    def experiments(self) -> ExperimentLister:
        """Every enrolled experiment at once: what the report and the status page list.

        The static file also knows experiments not enrolled yet (PendingLister), which
        the instrumented wrapper would hide.
        """
        raw = self.enrollment_source
        return raw if isinstance(raw, StaticEnrollments) else self.instrumented_enrollments

    def image_history(self, image: ImageConfig) -> ImageHistory:
        source = image.history
        if isinstance(source, StaticSource):
            try:
                return StaticImages(self.static_data, image.repository)
            except StaticDataError as err:
                raise ConfigError(f"images: {err}") from None
        where = f"images[{image.repository}].history"
        if isinstance(source, ArtifactRegistrySource):
            check_endpoint(source.endpoint, f"{where}.endpoint")
            check_endpoint(source.docker_endpoint, f"{where}.dockerEndpoint")
            return ArtifactRegistryImages(source)
        host = registry_host(image.repository, f"images[{image.repository}].repository")
        check_endpoint(source.endpoint, f"{where}.endpoint")
        if isinstance(source, GcrSource):
            return GcrImages(image.repository, source)
        if isinstance(source, OciSource):
            for index, extra in enumerate(source.credential_hosts):
                check_endpoint(extra, f"{where}.credentialHosts[{index}]")
            if source.auth_file is not None:
                try:
                    read_auth_file(source.auth_file, [host, *_netloc(source.endpoint)])
                except AuthFileError as err:
                    raise ConfigError(f"{where}.{err}") from None
            return OciImages(image.repository, source)
        raise ConfigError(f"{where}.type: {source.type} is not available in this build")

    def config_history(self, repo: ConfigRepoConfig) -> ConfigHistory:
        source = repo.history
        if isinstance(source, StaticSource):
            try:
                return StaticConfigHistory(self.static_data, repo.name)
            except StaticDataError as err:
                raise ConfigError(f"configRepos: {err}") from None
        if isinstance(source, GithubSource):
            try:
                return GithubConfigHistory(
                    source.repo,
                    source.branch,
                    source.endpoint,
                    source.timeout_seconds,
                    token_file=source.token_file,
                    token_env=source.token_env,
                )
            except SourceError as err:
                raise ConfigError(f"configRepos: {err}") from None
        mirror = GitConfigHistory(
            source.url,
            source.branch,
            mirror_dir=source.mirror_dir,
            fetch_from=source.endpoint,
            fetch_interval=source.fetch_interval_seconds,
            fetch_timeout=source.fetch_timeout_seconds,
            timeout=source.timeout_seconds,
        )
        self.background.append(mirror)
        return mirror

    @cached_property
    def kube_api(self) -> ApiClient | None:
        if self.config.kubernetes is None:
            return None
        from webhook.kube.client import client_for  # the kubernetes client is slow to import

        return client_for(self.config.kubernetes)

    def overrides(self) -> OverrideSource | None:
        """Pins outside the pod; how they combine: docs/configuration.md.

        With a `kubernetes` section the API answers Workflow labels, and the
        overrides ConfigMap (when named) answers slug entries; the data file's
        `overrides:` map answers slug entries only when no ConfigMap is named.
        Both at once would be two places to look during an incident: refused.
        """
        kube = self.config.kubernetes
        static = StaticOverrides(self.static_data) if self.config.static is not None else None
        if kube is None or self.kube_api is None:
            return static
        from webhook.kube.overrides import KubeOverrides

        reader = KubeOverrides(
            self.kube_api,
            workflow_labels=kube.workflow_labels,
            config_map=kube.overrides_config_map,
            timeout=kube.timeout_seconds,
        )
        source = CachedOverrides(reader, kube.cache_seconds)
        if static is None or not self.static_data.overrides:
            return source
        if kube.overrides_config_map is not None:
            raise ConfigError(
                "kubernetes.overridesConfigMap: the static data file also has `overrides:`; "
                "keep slug pins in one place (move them into the ConfigMap)"
            )
        return SplitOverrides(source, static)

    def decision_side_effects(self) -> list[DecisionSideEffect]:
        kube = self.config.kubernetes
        if kube is None or not kube.events or not self.record_events or self.kube_api is None:
            return []
        from webhook.kube.events import EventRecorder

        return [EventRecorder(self.kube_api, max(kube.timeout_seconds, 5.0), kube.event_queue_size)]

    @cached_property
    def cached_images(self) -> list[CachedImageHistory]:
        return [
            CachedImageHistory(InstrumentedImages(self.image_history(i)), self.config.cache)
            for i in self.config.images
        ]

    @cached_property
    def cached_enrollments(self) -> CachedEnrollments:
        clock = self.instrumented_enrollments
        prefetch = self.config.cache.prefetch_enrollments and isinstance(
            self.enrollment_source, BigQueryEnrollments
        )
        policy = self.config.enrollments.dataset_policy()
        return CachedEnrollments(
            clock, self.config.cache, clock if prefetch else None, policy.allowed
        )

    @cached_property
    def resolver(self) -> Resolver:
        images = [
            ImageTarget(i.repository, i.breaking_tag, history)
            for i, history in zip(self.config.images, self.cached_images, strict=True)
        ]
        repos = [
            ConfigRepo(
                r.name,
                r.env,
                CachedConfigHistory(
                    InstrumentedConfigHistory(self.config_history(r)), self.config.cache
                ),
            )
            for r in self.config.config_repos
        ]
        return Resolver(
            images,
            self.cached_enrollments,
            repos,
            self.overrides(),
            datasets=self.config.enrollments.dataset_policy(),
            workflows=self.workflow_decisions,
            always_read_enrollment=bool(self.config.enrollment_args),
        )

    @cached_property
    def workflow_decisions(self) -> CachedWorkflows | None:
        """Each Workflow's decisions, on the Workflow itself (needs the Kubernetes API)."""
        kube = self.config.kubernetes
        if kube is None or not kube.workflow_decisions or self.kube_api is None:
            return None
        from webhook.kube.workflows import KubeWorkflows

        return CachedWorkflows(
            KubeWorkflows(self.kube_api, timeout=kube.timeout_seconds),
            kube.cache_seconds,
            self.config.cache.max_entries,
            linger=kube.decision_write_delay_seconds,
        )

    def start_background(self) -> None:
        """Keep image histories, the enrollment listing and git mirrors warm (after forking)."""
        self._started = time.monotonic()
        self.resolver  # noqa: B018 - builds the sources, which fills self.background
        for history in self.cached_images:
            history.start()
        self.cached_enrollments.start()
        for part in self.background:
            part.start()

    def readiness(self) -> tuple[bool, str]:
        """Ready once histories and the enrollment listing are warm, or after a grace period.

        A backend outage must not take the webhook out of its Service: then the
        failure policy (a 503 Argo retries, or `onError: allow`) decides, not a
        "failed calling webhook" from the API server. A configured dataset that
        BigQuery says does not exist is no outage but a configuration to fix:
        the replica stays unready until it is listed, so a rollout with a wrong
        dataset never replaces replicas that work.
        """
        if self.draining():
            return False, "draining: shutting down"
        missing = self.cached_enrollments.missing_datasets
        if missing:
            return False, (
                f"enrollments dataset not found ({'; '.join(missing)}): create it, or correct "
                f"{ALLOW_LIST_KEY} / enrollments.dataset"
            )
        cold = [h.name for h in self.cached_images if not h.history.warm]
        cold += self.cached_enrollments.cold_listings
        if not cold:
            return True, "ready"
        if time.monotonic() - self._started > WARMUP_GRACE_SECONDS:
            return True, f"ready; not warm yet: {', '.join(cold)}"
        return False, f"warming up: {', '.join(cold)}"

    @cached_property
    def admitter(self) -> Admitter:
        env_names = {r.name: r.env for r in self.config.config_repos}
        return Admitter(
            self.resolver,
            env_names,
            self.config.mode,
            self.config.on_error,
            self.decision_side_effects(),
            deadline_seconds=self.config.server.admission_deadline_seconds,
            lookups=LookupPool(max(32, 2 * self.config.server.threads)),
            limits=PodLimits(**dataclasses.asdict(self.config.pod_limits)),
            pinned_commands=self.config.pinned_commands,
            args_rules=self.args_rules,
        )

    @cached_property
    def args_rules(self) -> list[ArgsRule]:
        return [
            ArgsRule(
                frozenset(rule.commands),
                rule.enrolled_at_or_before,
                rule.add,
                frozenset(rule.unless_present),
            )
            for rule in self.config.enrollment_args
        ]

    @cached_property
    def descriptions(self) -> Descriptions | None:
        """Tables' descriptions for the report (BigQuery only; never on the admission path)."""
        source = self.enrollment_source
        if not isinstance(source, BigQueryEnrollments):
            return None
        name = f"{source.name} description"
        return Descriptions(lambda d, t: observed(name, lambda: source.table_description(d, t)))

    def inventory(self) -> Inventory:
        """Every experiment decided; slugs seen in recent admissions help name the tables
        (only help: with the decisions directory full or read-only, the report goes on
        without them, and the status page says why the decisions are missing)."""
        try:
            admitted = [d.slug for d in self.recent_decisions.recent(KEEP) if d.slug]
        except OSError:
            admitted = []
        return take_inventory(self.resolver, self.experiments, self.descriptions, admitted)

    @cached_property
    def recent_decisions(self) -> RecentDecisions:
        return RecentDecisions(self.decisions_dir)

    def status(self) -> StatusSource:
        config = self.config
        settings = {
            "mode": config.mode,
            "onError": config.on_error,
            "workers": f"{config.server.workers} worker processes",
        }
        return StatusSource(self.inventory, self.recent_decisions, settings)

    def history_ages(self) -> dict[str, float]:
        """Seconds since each repository's image history was listed (only warm ones)."""
        return {
            image.repository: cached.history.age
            for image, cached in zip(self.config.images, self.cached_images, strict=True)
            if cached.history.warm
        }

    def listing_ages(self) -> dict[str, float]:
        """Seconds since the enrolled experiments were listed (when they are, and warm)."""
        return self.cached_enrollments.listing_ages()

    def dispatch(self, tls: ReloadingContext | None = None) -> Dispatch:
        """What a worker serves: the dispatch table over the admitter and the admin pages.

        `tls`: the context the server serves with (its certificate's expiry is
        exported); by default one of its own on the configured files.
        """
        server = self.config.server
        served = tls or ReloadingContext(server.cert_file, server.key_file, reports=False)
        admin = admin_blueprint(self.status(), self.history_ages, served.expiry, self.listing_ages)
        return Dispatch(
            self.admitter,
            self.readiness,
            recorder=self.recent_decisions,
            admin=admin_app(admin),
            loop_review_max_bytes=server.loop_review_max_bytes,
        )


def serve(config: Config) -> None:
    """`jetstream-pin serve`: validate every source once, then gunicorn (webhook.serving.server)."""
    Wiring(config).admitter  # noqa: B018 - validate every source before forking workers
    state = RuntimeState.create()
    metrics.enable_multiprocess(state.metrics)
    WebhookServer(config, state, _worker_app).run()


def _worker_app(config: Config, state: RuntimeState, tls: ReloadingContext) -> Dispatch:
    """In each worker, after the fork: its own sources (background threads do not survive one)."""
    wiring = Wiring(config, draining=state.draining, decisions_dir=state.decisions)
    wiring.start_background()
    return wiring.dispatch(tls)
