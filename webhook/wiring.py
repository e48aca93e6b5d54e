"""From a validated Config to running objects: sources, resolver, admitter, app.

The one place that knows which class implements which `type:` of source.
Everything it builds is checked here, at start, so a bad source fails the
start-up with a message instead of failing the first pod.
"""

from __future__ import annotations

from functools import cached_property
from typing import Protocol

from flask import Flask

from webhook.admission import Admitter
from webhook.app import create_app
from webhook.config import (
    Config,
    ConfigError,
    ConfigRepoConfig,
    GithubSource,
    ImageConfig,
    StaticSource,
)
from webhook.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.sources import (
    ConfigHistory,
    EnrollmentClock,
    ImageHistory,
    OverrideSource,
    SourceError,
)
from webhook.sources.git import GitConfigHistory
from webhook.sources.github import GithubConfigHistory
from webhook.sources.static import (
    StaticConfigHistory,
    StaticData,
    StaticDataError,
    StaticEnrollments,
    StaticImages,
    StaticOverrides,
)


class Background(Protocol):
    """A source with work of its own (a git mirror's fetches), started after the fork."""

    def start(self) -> None: ...


class Wiring:
    """Builds each part once; tests and the CLI take the parts they need."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.background: list[Background] = []

    @cached_property
    def static_data(self) -> StaticData:
        if self.config.static is None:
            raise ConfigError("static: no static data file is configured")
        try:
            return StaticData.load(self.config.static)
        except StaticDataError as err:
            raise ConfigError(str(err)) from None

    def enrollments(self) -> EnrollmentClock:
        source = self.config.enrollments
        if isinstance(source, StaticSource):
            return StaticEnrollments(self.static_data)
        raise ConfigError(f"enrollments.type: {source.type} is not available in this build")

    def image_history(self, image: ImageConfig) -> ImageHistory:
        source = image.history
        if isinstance(source, StaticSource):
            try:
                return StaticImages(self.static_data, image.repository)
            except StaticDataError as err:
                raise ConfigError(f"images: {err}") from None
        raise ConfigError(f"images.history.type: {source.type} is not available in this build")

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

    def start_background(self) -> None:
        """Start the sources' background work; call it in each server worker, after the fork."""
        self.resolver  # noqa: B018 - builds the sources, which fills self.background
        for part in self.background:
            part.start()

    def overrides(self) -> OverrideSource | None:
        if self.config.static is not None:
            return StaticOverrides(self.static_data)
        return None

    @cached_property
    def resolver(self) -> Resolver:
        images = [
            ImageTarget(i.repository, i.breaking_tag, self.image_history(i))
            for i in self.config.images
        ]
        repos = [
            ConfigRepo(r.name, r.env, self.config_history(r)) for r in self.config.config_repos
        ]
        return Resolver(images, self.enrollments(), repos, self.overrides())

    @cached_property
    def admitter(self) -> Admitter:
        env_names = {r.name: r.env for r in self.config.config_repos}
        return Admitter(self.resolver, env_names, self.config.mode, self.config.on_error)

    def app(self) -> Flask:
        app = create_app(self.admitter, self.config.server.max_request_bytes)
        self.start_background()
        return app
