"""`jetstream-pin`: serve | certs | check | review | explain | report.

Operator errors (bad config, unreadable file, invalid slug) print one line
to stderr and exit 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webhook import certs, logs
from webhook.admission.resolver import LookupFailed
from webhook.config import Config, ConfigError, load_config
from webhook.core.commands import ArgsRule, args_effects
from webhook.core.datasets import Dataset
from webhook.core.decision import Decision
from webhook.core.pinning import Refusal, enrollments_table
from webhook.core.review import MalformedReview, parse_review
from webhook.core.times import format_rfc3339
from webhook.insight.inventory import InventoryFailed, UnknownImage, what_if_breaking
from webhook.insight.report import (
    build_report,
    render_report,
    render_what_if,
    report_json,
    what_if,
    what_if_json,
)
from webhook.insight.tracing import Trace, traced
from webhook.sources import SourceError
from webhook.wiring import Wiring


class UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except (
        UsageError,
        ConfigError,
        Refusal,
        LookupFailed,
        MalformedReview,
        InventoryFailed,
        UnknownImage,
        SourceError,
    ) as err:
        print(f"jetstream-pin {args.command}: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jetstream-pin",
        description="Pin Jetstream analyses to the tooling current at enrollment.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the webhook over HTTPS")
    _config_option(serve)
    serve.set_defaults(run=_serve)

    issue = commands.add_parser(
        "certs",
        help="write a CA and a serving certificate (files, or a Secret + caBundle)",
        description="Issue a CA and a serving certificate into --out DIR, and/or keep them in "
        "the kubernetes.io/tls Secret --secret NAMESPACE/NAME (reused while still valid) and "
        "publish the CA as the caBundle of the MutatingWebhookConfiguration --webhook NAME.",
    )
    issue.add_argument("--out", type=Path, help="directory for ca.crt, tls.crt, tls.key")
    issue.add_argument("--dns", action="append", default=[], help="DNS name (repeatable)")
    issue.add_argument("--ip", action="append", default=[], help="IP address (repeatable)")
    issue.add_argument("--days", type=int, default=365, help="validity of the serving cert")
    issue.add_argument("--secret", metavar="NAMESPACE/NAME", help="keep the pair in this Secret")
    issue.add_argument("--webhook", metavar="NAME", help="MutatingWebhookConfiguration to patch")
    issue.add_argument(
        "--renew-before-days",
        type=int,
        default=30,
        help="re-issue a stored pair that expires within this many days (default 30)",
    )
    issue.add_argument(
        "--allow-missing-webhook",
        action="store_true",
        help="a --webhook that does not exist yet is not an error (helm pre-install)",
    )
    issue.add_argument(
        "--keep-from-helm",
        action="store_true",
        help="mark a --webhook an earlier release rendered as a chart object "
        "helm.sh/resource-policy: keep (helm pre-upgrade), so the upgrade does not delete it",
    )
    issue.add_argument(
        "--register-from",
        metavar="NAMESPACE/CONFIGMAP",
        help="create or update --webhook from the configuration in this ConfigMap, caBundle set",
    )
    issue.add_argument(
        "--wait-for-deployment",
        metavar="NAMESPACE/NAME",
        help="with --register-from: first wait until this Deployment has a ready replica",
    )
    issue.add_argument("--wait-seconds", type=float, default=240.0, help="how long to wait")
    issue.add_argument(
        "--owner-clusterrole", metavar="NAME", help="with --register-from: the owner to set"
    )
    issue.add_argument("--kubeconfig", type=Path, help="default: the in-cluster service account")
    issue.add_argument("--timeout", type=float, default=10.0, help="per API call, in seconds")
    issue.set_defaults(run=_certs)

    check = commands.add_parser(
        "check",
        help="dry-run an Argo-shaped pod through the API server and judge the webhook's answer",
    )
    check.add_argument("--namespace", required=True, help="a namespace the webhook pins")
    check.add_argument("--image", required=True, help="one of the configured images, any tag")
    check.add_argument("--slug", default="jetstream-pin-check", help="the experiment slug")
    check.add_argument("--mode", choices=["enforce", "audit"], default="enforce")
    check.add_argument("--kubeconfig", type=Path, help="default: the in-cluster service account")
    check.add_argument("--timeout", type=float, default=30.0, help="for the API call, in seconds")
    check.set_defaults(run=_check)

    review = commands.add_parser("review", help="print the response /mutate would give")
    _config_option(review)
    review.add_argument("file", help="AdmissionReview JSON file, or - for stdin")
    review.set_defaults(run=_review)

    explain = commands.add_parser("explain", help="show the decision for one experiment")
    _config_option(explain)
    explain.add_argument("--slug", required=True)
    explain.add_argument(
        "--dataset",
        metavar="PROJECT.DATASET",
        help="the enrollments dataset the pod names (default: enrollments.project/dataset)",
    )
    explain.add_argument("--pin", help="decide as if the pod carried jetstream/pin=PIN")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(run=_explain)

    report = commands.add_parser("report", help="which experiments run which tooling version")
    _config_option(report)
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument(
        "--what-if-breaking",
        metavar="DIGEST",
        help="list the experiments a breaking tag on this image would move (digest or 12+ hex)",
    )
    report.set_defaults(run=_report)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $JETSTREAM_PIN_CONFIG)")


def _serve(args: argparse.Namespace) -> int:
    from webhook.wiring import serve

    logs.configure()
    serve(load_config(args.config))
    return 0


def _certs(args: argparse.Namespace) -> int:
    if args.days <= 0 or args.renew_before_days < 0 or args.timeout <= 0:
        raise UsageError("--days and --timeout must be positive, --renew-before-days not negative")
    if not args.dns and not args.ip:
        raise UsageError("give at least one --dns NAME or --ip ADDRESS")
    if args.out is None and args.secret is None:
        raise UsageError("give --out DIR, --secret NAMESPACE/NAME, or both")
    if args.renew_before_days >= args.days:
        raise UsageError("--renew-before-days must be shorter than --days")
    try:
        if args.secret is None and args.webhook is None:
            bundle = certs.issue(args.dns, args.ip, args.days)
        else:
            bundle = _certs_in_cluster(args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.out is not None:
        for path in certs.write(bundle, args.out):
            print(path)
    return 0


def _certs_in_cluster(args: argparse.Namespace) -> certs.Bundle:
    from webhook.kube.certificates import ensure_secret, patch_ca_bundle
    from webhook.kube.client import api_client

    api = api_client(args.kubeconfig)
    if args.secret is not None:
        if args.ip:
            raise UsageError("--ip is for --out only: a cluster reaches the webhook by DNS name")
        namespace, name = _namespaced(args.secret, "--secret")
        outcome = ensure_secret(
            api, namespace, name, args.dns, args.days,
            timedelta(days=args.renew_before_days), datetime.now(UTC), args.timeout,
        )  # fmt: skip
        action = f"issued ({outcome.why})" if outcome.issued else "reused (still valid)"
        fingerprint = certs.fingerprint(outcome.bundle.cert_pem)
        print(f"secret {args.secret}: {action}; certificate sha256 {fingerprint}")
        bundle, ca_bundle = outcome.bundle, outcome.ca_bundle
    else:
        bundle = certs.issue(args.dns, args.ip, args.days)
        ca_bundle = bundle.ca_pem
    if args.register_from is not None:
        _register(api, args, ca_bundle)
    elif args.webhook is not None:
        if args.keep_from_helm:
            from webhook.kube.registration import keep_from_helm

            if keep_from_helm(api, args.webhook, args.timeout):
                print(f"mutatingwebhookconfiguration {args.webhook}: kept through the upgrade "
                      "(helm.sh/resource-policy: keep) until it is registered again")  # fmt: skip
        patched = patch_ca_bundle(api, args.webhook, ca_bundle, args.timeout)
        if patched is None and not args.allow_missing_webhook:
            raise UsageError(f"mutatingwebhookconfiguration {args.webhook} does not exist")
        if patched is None:
            print(f"mutatingwebhookconfiguration {args.webhook}: not there yet, caBundle not set")
        else:
            count = ca_bundle.count(b"-----BEGIN CERTIFICATE-----")
            print(
                f"mutatingwebhookconfiguration {args.webhook}: caBundle ({count} CA) "
                f"set on {patched} webhook(s)"
            )
    return bundle


def _namespaced(value: str, flag: str) -> tuple[str, str]:
    namespace, slash, name = value.partition("/")
    if not slash or not namespace or not name:
        raise UsageError(f"{flag} must be NAMESPACE/NAME")
    return namespace, name


def _register(api: Any, args: argparse.Namespace, ca_bundle: bytes) -> None:
    """Register --webhook from its ConfigMap once a replica can answer it."""
    from webhook.kube import registration as reg

    if args.webhook is None:
        raise UsageError("--register-from needs --webhook NAME")
    if args.wait_for_deployment is not None:
        namespace, name = _namespaced(args.wait_for_deployment, "--wait-for-deployment")
        ready = reg.wait_until_serving(
            lambda: reg.deployment_readiness(api, namespace, name, args.timeout),
            args.wait_seconds,
        )
        print(f"deployment {namespace}/{name}: {ready.ready}/{ready.wanted} ready")
    namespace, name = _namespaced(args.register_from, "--register-from")
    configuration = reg.read_configuration(api, namespace, name, args.timeout)
    if configuration["metadata"]["name"] != args.webhook:
        raise UsageError(f"ConfigMap {args.register_from} holds another configuration")
    owner = None
    if args.owner_clusterrole is not None:
        owner = reg.cluster_role_owner(api, args.owner_clusterrole, args.timeout)
    body = reg.with_trust(configuration, ca_bundle, owner)
    done = reg.apply_configuration(api, body, args.timeout)
    count = ca_bundle.count(b"-----BEGIN CERTIFICATE-----")
    print(f"mutatingwebhookconfiguration {args.webhook}: {done} with caBundle ({count} CA)")


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when the webhook decided as its mode should, 1 when not, 2 when refused."""
    from webhook.kube import check
    from webhook.kube.client import api_client

    answer = check.dry_run(
        api_client(args.kubeconfig),
        args.namespace,
        check.sample_pod(args.image, args.slug),
        args.timeout,
    )
    good, said = check.verdict(args.mode, answer)
    print(f"jetstream-pin check {args.namespace}: {said}")
    return 0 if good else 1


def _review(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        document = json.loads(text)
    except OSError as err:
        raise UsageError(f"cannot read {args.file}: {err.strerror}") from None
    except ValueError as err:
        raise UsageError(f"{args.file} is not valid JSON: {err}") from None
    result = Wiring(config, record_events=False).admitter.admit(parse_review(document))
    print(json.dumps(result.response, indent=2))
    return 0


def _explain(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    dataset = None
    if args.dataset is not None:
        try:
            dataset = Dataset.parse(args.dataset)
        except ValueError as err:
            raise UsageError(f"--dataset: {err}") from None
    wiring = Wiring(config, record_events=False)
    resolver, trace = traced(wiring.resolver)
    try:
        decision = resolver.decide(resolver.facts_for_slug(args.slug, args.pin, dataset))
    except LookupFailed:
        print(render_answers(answers(trace)), file=sys.stderr)
        raise
    report = explanation(config, decision, wiring.args_rules)
    report["sources"] = answers(trace)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_explanation(report))
    return 0


def _report(args: argparse.Namespace) -> int:
    """Exit 1 when some allowed dataset could not be listed (the rest is still shown)."""
    wiring = Wiring(load_config(args.config))
    inventory = wiring.inventory()
    if args.what_if_breaking is not None:
        hypothesis = what_if_breaking(wiring.resolver, inventory, args.what_if_breaking)
        result = what_if(inventory, hypothesis)
        print(json.dumps(what_if_json(result), indent=2) if args.json else render_what_if(result))
        return 0
    report = build_report(inventory)
    print(json.dumps(report_json(report), indent=2) if args.json else render_report(report))
    return 1 if any(d.error for d in inventory.datasets) else 0


def answers(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"source": a.source, "question": a.question, "answer": a.answer, "ms": a.milliseconds}
        for a in trace.answers
    ]


def render_answers(rows: list[dict[str, Any]]) -> str:
    lines = ["sources"]
    for row in rows:
        lines.append(f"  {row['source']}: {row['question']}")
        lines.append(f"      -> {row['answer']} ({row['ms']} ms)")
    return "\n".join(lines)


def explanation(
    config: Config, decision: Decision, args_rules: Sequence[ArgsRule] = ()
) -> dict[str, Any]:
    enrolled: str | None = None
    if decision.enrollment_consulted:
        when = decision.enrolled_at
        enrolled = format_rfc3339(when) if when else "none (not enrolled: newest tooling)"
    images = []
    for repository, choice in decision.choices.items():
        images.append(
            {
                "repository": repository,
                "digest": choice.image.digest,
                "image": f"{repository}@{choice.image.digest}",
                "uploaded": format_rfc3339(choice.image.uploaded),
                "tags": sorted(choice.image.tags),
                "why": str(choice.rule.value),
            }
        )
    env = {r.name: r.env for r in config.config_repos}
    repos = [{"name": name, "env": env[name], "sha": sha} for name, sha in decision.shas.items()]
    effects = args_effects(args_rules, decision.enrolled_at)
    dataset = decision.dataset
    return {
        "slug": decision.slug,
        "dataset": str(dataset) if dataset else None,
        "table": enrollments_table(decision.slug),
        "reason": str(decision.reason),
        "enrolledAt": enrolled if decision.enrollment_consulted else "not consulted",
        "override": decision.pin.origin if decision.pin else None,
        "images": images,
        "configRepos": repos,
        "enrollmentArgs": [
            {
                "command": e.command,
                "adds": list(e.adds),
                "why": e.why,
                "unlessPresent": list(e.unless_present),
                "text": e.text(),
            }
            for e in effects
        ],
    }


def render_explanation(report: dict[str, Any]) -> str:
    lines = [
        f"experiment   {report['slug']}",
        f"dataset      {report['dataset']} (table {report['table']})",
        f"enrolled at  {report['enrolledAt']}",
        f"pin reason   {report['reason']}",
    ]
    if report["override"]:
        lines.append(f"override     {report['override']}")
    for image in report["images"]:
        tags = ", ".join(image["tags"]) or "no tags"
        lines.append(f"image        {image['image']}")
        lines.append(f"             uploaded {image['uploaded']} ({tags})")
        lines.append(f"             why: {image['why']}")
    for repo in report["configRepos"]:
        lines.append(f"{repo['name']:<12} {repo['sha']} (env {repo['env']})")
    for n, effect in enumerate(report["enrollmentArgs"]):
        lines.append(f"{'arguments' if n == 0 else '':<12} {effect['text']}")
    if report.get("sources"):
        lines.append(render_answers(report["sources"]))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
