"""The status page as one self-contained HTML document: no script, no external asset.

Every piece of listed or admitted text (slugs, tags, pod names, messages) is
untrusted and goes through `escape`; the page also ships a Content-Security
-Policy (see `webhook.insight.admin`) that forbids scripts altogether.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from webhook.core.pinning import Image
from webhook.core.slugs import SlugSource
from webhook.insight.inventory import Placement
from webhook.insight.recent import RecentDecision
from webhook.insight.report import (
    MATCHED_MARK,
    MATCHED_NOTE,
    TABLE_ONLY_NOTE,
    Report,
    RepositoryReport,
    ShaRange,
    Version,
    enrolled_text,
    short_digest,
    short_time,
    slug_notes,
)
from webhook.insight.status import Status
from webhook.insight.timeline import UNRESOLVED_COLOUR, colours, release_name, render_timeline

SHORT_SHA = 10

STYLE = """
:root{--ink:#1d2430;--muted:#5d6776;--line:#e3e7ee;--bg:#f4f6f9;--card:#fff;--accent:#3056d3;
--ok:#1f7a44;--bad:#b42318;--warn:#a15c07}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{background:#18202c;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.2px}
header h1 span{color:#9db4ff;font-weight:500}
.meta{margin:6px 0 0;display:flex;flex-wrap:wrap;gap:6px 18px;color:#c8d0dc;font-size:13.5px}
.meta b{color:#fff;font-weight:600}
main{max-width:1240px;margin:0 auto;padding:18px 20px 28px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:16px 20px;margin:0 0 16px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
h2{font-size:17px;margin:0 0 10px;font-weight:650}
h2 small{color:var(--muted);font-weight:400;font-size:13.5px;margin-left:6px;
overflow-wrap:anywhere}
.hint{color:var(--muted);font-size:13px;margin:8px 0 0}
.error{border-color:#f3c1bc;background:#fff6f5;color:var(--bad)}
code,.mono{font-family:"DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace;font-size:13px;
white-space:nowrap}
.nowrap{white-space:nowrap}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:12px;text-transform:uppercase;letter-spacing:.4px;
color:var(--muted);font-weight:600;padding:6px 10px;border-bottom:1px solid var(--line)}
td{padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
td.num{font-variant-numeric:tabular-nums}
.empty td{color:var(--muted)}
.tag{display:inline-block;padding:0 7px;margin:1px 3px 1px 0;border-radius:9px;
background:#edf1f7;font-size:12.5px;white-space:nowrap}
.tag.breaking{background:#fde7e5;color:var(--bad);font-weight:600}
.tag.latest{background:#e6efff;color:var(--accent)}
.swatch{vertical-align:-1px;margin-right:6px}
.slugs{list-style:none;margin:0;padding:0}
.slugs li{overflow-wrap:anywhere}
.reason{color:var(--muted);font-size:12.5px;margin-left:6px}
.count{font-weight:650;margin-right:4px}
.outcome{display:inline-block;padding:0 8px;border-radius:9px;font-size:12.5px;
background:#edf1f7;white-space:nowrap}
.outcome.patched{background:#e3f4ea;color:var(--ok)}
.outcome.refused,.outcome.lookup-failed-denied{background:#fde7e5;color:var(--bad)}
.outcome.lookup-failed-allowed,.outcome.audited{background:#fff1db;color:var(--warn)}
.detail{color:var(--muted);font-size:12.5px;overflow-wrap:anywhere}
.chart{margin:4px 0 0}
svg.timeline{display:block;overflow:visible;font-size:11px}
svg.timeline text{fill:var(--muted)}
svg.timeline .release-label{font-weight:600;font-size:11.5px}
svg.timeline .pending-label{font-style:italic}
svg.timeline .point-label{fill:var(--ink);font-size:11px}
svg.timeline .point-label.narrow{display:none}
.axis{stroke:#8a94a3;stroke-width:1}
.tick{stroke:#8a94a3}
.release-line{stroke-width:1.5;stroke-opacity:.45}
.breaking .release-line{stroke-dasharray:5 4;stroke-opacity:.9;stroke-width:2}
.release-mark{stroke-width:5;stroke-linecap:round}
.connector{stroke-width:1.5;stroke-opacity:.55}
.legend{list-style:none;padding:0;margin:10px 0 0;display:flex;flex-wrap:wrap;gap:4px 18px;
font-size:13px}
.legend small{color:var(--muted)}
footer{color:var(--muted);font-size:12.5px;text-align:center;padding:0 20px 24px}
@media (max-width:720px){
header{padding:14px 16px}
main{padding:12px 10px 20px}
.card{padding:12px 14px}
svg.timeline .release-label,svg.timeline .point-label.wide{display:none}
svg.timeline .point-label.narrow{display:inline}
thead{display:none}
table,tbody,tr,td{display:block;width:100%}
tr{border-bottom:1px solid var(--line);padding:8px 0}
tr:last-child{border-bottom:0}
td{border:0;padding:2px 0;display:flex;gap:10px}
td::before{content:attr(data-label);flex:0 0 92px;color:var(--muted);font-size:12px;
text-transform:uppercase;letter-spacing:.3px;padding-top:2px}
td>*{min-width:0}
.slugs .reason{display:block;margin:0 0 2px}
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _swatch(colour: str) -> str:
    return (
        '<svg class="swatch" width="12" height="12" aria-hidden="true">'
        f'<rect width="12" height="12" rx="3" fill="{_e(colour)}"/></svg>'
    )


def _tags(image: Image, breaking_tag: str | None) -> str:
    if not image.tags:
        return '<span class="detail">none</span>'
    out = []
    for tag in sorted(image.tags):
        kind = " breaking" if tag == breaking_tag else " latest" if tag == "latest" else ""
        out.append(f'<span class="tag{kind}">{_e(tag)}</span>')
    return "".join(out)


def _sha_range(sha_range: ShaRange | None) -> str:
    if sha_range is None:
        return '<span class="detail">-</span>'
    first = f'<code title="{_e(sha_range.first)}">{_e(sha_range.first[:SHORT_SHA])}</code>'
    if sha_range.count == 1:
        return first
    last = f'<code title="{_e(sha_range.last)}">{_e(sha_range.last[:SHORT_SHA])}</code>'
    return f'{first} … {last} <span class="detail">({sha_range.count} commits)</span>'


def _slug(placement: Placement) -> str:
    """The slug; `~` when matched by a known slug; the table, in brackets, when only it is known."""
    if placement.slug is None:
        return (
            f'<span class="slug table" title="{_e(TABLE_ONLY_NOTE)}">[{_e(placement.table)}]</span>'
        )
    if placement.slug_source == SlugSource.KNOWN_SLUG:
        return (
            f'<span class="slug" title="{_e(MATCHED_NOTE)}">{_e(placement.slug)} '
            f"{MATCHED_MARK}</span>"
        )
    return f'<span class="slug">{_e(placement.slug)}</span>'


def _slug_item(placement: Placement, several_datasets: bool) -> str:
    meta = [str(placement.decision.reason)] if placement.decision else []
    if placement.enrolled_at is not None:
        meta.append(f"enrolled {short_time(placement.enrolled_at)}")
    if several_datasets:
        meta.append(str(placement.dataset))
    return f'<li>{_slug(placement)}<span class="reason">{_e(" · ".join(meta))}</span></li>'


def _notes(placements: Sequence[Placement]) -> str:
    return "".join(f'<p class="hint">{_e(note)}</p>' for note in slug_notes(placements))


def _version_row(
    version: Version, repo: RepositoryReport, palette: Mapping[str, str], report: Report
) -> str:
    config_repos = report.config_repos
    image = version.image
    count = len(version.experiments)
    slugs = "".join(_slug_item(p, report.several_datasets) for p in version.experiments)
    experiments = f'<span class="count">{count}</span>'
    if slugs:
        experiments = f'<div>{experiments}<ul class="slugs">{slugs}</ul></div>'
    cells = [
        (
            "Image",
            f'<span class="nowrap">{_swatch(palette.get(image.digest, UNRESOLVED_COLOUR))}'
            f'<code title="{_e(image.digest)}">{_e(short_digest(image.digest))}</code></span>',
        ),
        ("Uploaded", f'<span class="mono">{_e(short_time(image.uploaded))}</span>'),
        ("Tags", f"<span>{_tags(image, repo.breaking_tag)}</span>"),
        ("Experiments", experiments),
    ]
    cells += [(name, f"<span>{_sha_range(version.shas.get(name))}</span>") for name in config_repos]
    return "<tr>" + "".join(f'<td data-label="{_e(k)}">{v}</td>' for k, v in cells) + "</tr>"


def _legend(repo: RepositoryReport, palette: Mapping[str, str]) -> str:
    items = []
    for version in sorted(repo.versions, key=lambda v: v.image.uploaded):
        count = len(version.experiments)
        items.append(
            f"<li>{_swatch(palette.get(version.image.digest, UNRESOLVED_COLOUR))}"
            f"{_e(release_name(version.image))} "
            f"<small>{_e(short_digest(version.image.digest))} · {count} "
            f"experiment{'s' * (count != 1)}</small></li>"
        )
    return f'<ul class="legend">{"".join(items)}</ul>'


def _repository(report: Report, repo: RepositoryReport) -> str:
    palette = colours([v.image for v in repo.versions])
    timeline = render_timeline(repo, palette, report.unresolved, report.taken_at)
    head = ["Image", "Uploaded", "Tags", "Experiments", *report.config_repos]
    rows = "".join(_version_row(v, repo, palette, report) for v in repo.versions)
    if not rows:
        rows = f'<tr class="empty"><td colspan="{len(head)}">No images listed.</td></tr>'
    footnote = _notes([p for v in repo.versions for p in v.experiments])
    return (
        f'<section class="card"><h2>Timeline<small>{_e(repo.repository)}</small></h2>'
        f'<div class="chart">{timeline}</div>{_legend(repo, palette)}'
        '<p class="hint">Each dot is an experiment at its enrollment time, in the colour of '
        "the release it runs; its line leads to that release. Dashed lines are breaking "
        "releases; hollow dots on the right have not enrolled yet and get the newest tooling."
        "</p></section>"
        f'<section class="card"><h2>Tooling versions<small>{_e(repo.repository)}</small></h2>'
        "<table><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{rows}</tbody></table>{footnote}</section>"
    )


def _unresolved(report: Report) -> str:
    if not report.unresolved:
        return ""
    rows = "".join(
        f'<tr><td data-label="Slug">{_slug(p)}</td>'
        f'<td data-label="Dataset"><span class="mono">{_e(p.dataset)}</span></td>'
        f'<td data-label="Enrolled"><span class="mono">{_e(enrolled_text(p))}</span></td>'
        f'<td data-label="Why"><span class="detail">{_e(p.error)}</span></td></tr>'
        for p in report.unresolved
    )
    return (
        '<section class="card"><h2>Listed but not pinnable'
        "<small>the webhook would refuse or fail these pods</small></h2>"
        "<table><thead><tr><th>Slug</th><th>Dataset</th><th>Enrolled</th><th>Why</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>{_notes(report.unresolved)}</section>"
    )


def _unlisted(report: Report) -> str:
    """The datasets that could not be listed: their experiments are missing from the page."""
    failed = [d for d in report.datasets if d.error]
    if not failed:
        return ""
    items = "".join(
        f'<li><code>{_e(d.dataset)}</code>: <span class="detail">{_e(d.error)}</span></li>'
        for d in failed
    )
    return (
        '<section class="card error"><h2>Datasets not listed'
        "<small>their experiments are missing below</small></h2>"
        f'<ul class="slugs">{items}</ul></section>'
    )


def _image_cell(images: Sequence[str]) -> str:
    if not images:
        return '<span class="detail">-</span>'
    out = []
    for reference in images:
        name, _, digest = reference.partition("@")
        short = f"{name.rsplit('/', 1)[-1]}@{short_digest(digest)}" if digest else reference
        out.append(f'<code title="{_e(reference)}">{_e(short)}</code>')
    return "<br>".join(out)


def _decisions(decisions: Sequence[RecentDecision], workers: str, unavailable: str) -> str:
    rows = "".join(
        "<tr>"
        f'<td data-label="Time"><span class="mono">'
        f"{_e(d.time.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%SZ'))}</span></td>"
        f'<td data-label="Slug"><span><span class="slug">{_e(d.slug)}</span>'
        + (f'<br><span class="detail">{_e(d.namespace)}/{_e(d.pod)}</span>' if d.pod else "")
        + "</span></td>"
        f'<td data-label="Outcome"><span><span class="outcome {_e(d.outcome)}">{_e(d.outcome)}'
        "</span>"
        + (f'<br><span class="detail">{_e(d.detail)}</span>' if d.detail else "")
        + "</span></td>"
        f'<td data-label="Reason"><span class="nowrap">{_e(d.reason or "-")}</span></td>'
        f'<td data-label="Image"><span>{_image_cell(d.images)}</span></td>'
        "</tr>"
        for d in decisions
    )
    if unavailable:
        return (
            '<section class="card error"><h2>Recent decisions are unavailable</h2>'
            f"<p>The recent decisions of {_e(workers)} are kept in a directory the worker "
            f"processes share, and it cannot be written or read: {_e(unavailable)}. "
            "Admissions are not affected.</p></section>"
        )
    if not rows:
        rows = '<tr class="empty"><td colspan="5">No decision since the server started.</td></tr>'
    return (
        '<section class="card"><h2>Recent decisions<small>newest first</small></h2>'
        "<table><thead><tr><th>Time</th><th>Slug</th><th>Outcome</th><th>Reason</th>"
        f"<th>Image</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="hint">The newest {len(decisions)} admissions of experiment pods made by '
        f"{_e(workers)}; dry-run reviews are never recorded.</p></section>"
    )


def render_status(status: Status, now: datetime | None = None) -> str:
    settings = status.settings
    report = status.report
    meta = [f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in settings.items() if k != "workers"]
    if report is not None:
        count = report.experiment_count + len(report.unresolved)
        meta.append(
            f"<span><b>{count}</b> experiment{'s' * (count != 1)} from "
            f"{_e(report.enrollments_source)}</span>"
        )
        datasets = ", ".join(str(d.dataset) for d in report.datasets)
        meta.append(f"<span>in <b>{_e(datasets)}</b></span>")
        meta.append(f"<span>as of <b>{_e(short_time(report.taken_at))}</b></span>")
    body = []
    if report is None:
        body.append(
            '<section class="card error"><h2>The report is unavailable</h2>'
            f"<p>{_e(status.error)}</p></section>"
        )
    else:
        body.append(_unlisted(report))
        body += [_repository(report, repo) for repo in report.repositories]
        body.append(_unresolved(report))
    workers = settings.get("workers", "every worker")
    body.append(_decisions(status.decisions, workers, status.decisions_error))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>jetstream-pin status</title>"
        f"<style>{STYLE}</style></head><body>"
        "<header><h1>jetstream-pin <span>status</span></h1>"
        f'<p class="meta">{"".join(meta)}</p></header>'
        f"<main>{''.join(body)}</main>"
        "<footer>Rendered by the webhook on its admin port; the same data as "
        "<code>jetstream-pin report</code> and <code>/status.json</code>.</footer>"
        "</body></html>"
    )
