"""The Jinja2 environment the status page and its timeline are rendered with.

Autoescape is on for every template: whatever a template prints (slugs,
tags, pod names, messages: all untrusted) is escaped unless it is `Markup`,
which only this package's own text (the stylesheet) is. Undefined names
fail the render instead of printing nothing, so a misspelt field shows at
once in the tests.

The templates are written one element to a line for reading, but the page
is served with no whitespace between elements: between inline elements
(tags, swatches, codes) a line break would render as a space. `JoinLines`
therefore rewrites each line break, with the indentation around it, when a
template is loaded: next to a tag or a template statement (`>` or `%}`
before it, `<` or `{%` after it) it is dropped; elsewhere (between an
element's attributes, within a sentence) it becomes one space.
"""

from __future__ import annotations

import re

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension

_LINE_BREAK = re.compile(r"[ \t]*(?:\n[ \t]*)+")
_ENDS_ELEMENT = (">", "%}", "#}")
_STARTS_ELEMENT = ("<", "{%", "{#")


class JoinLines(Extension):
    """Template source on one line: breaks next to tags dropped, others one space."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _LINE_BREAK.sub(_join, source)


def _join(line_break: re.Match[str]) -> str:
    source = line_break.string
    if source.endswith(_ENDS_ELEMENT, 0, line_break.start()):
        return ""
    return "" if source.startswith(_STARTS_ELEMENT, line_break.end()) else " "


def environment() -> Environment:
    templates = Environment(
        loader=PackageLoader("webhook.insight", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=[JoinLines],
    )
    templates.filters["pct"] = percent
    return templates


def percent(value: float) -> str:
    """A horizontal position in the timeline: percent of the drawing's width."""
    return f"{value:.2f}%"


TEMPLATES = environment()
