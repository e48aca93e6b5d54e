"""The templates' environment: escaping on, misspelt names loud, line breaks as written."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from webhook.insight.rendering import TEMPLATES


def test_printed_text_is_escaped_in_elements_and_attributes() -> None:
    page = TEMPLATES.from_string('<b title="{{ text }}">{{ text }}</b>')
    html = page.render(text="\"><script>alert('x')</script>&")
    assert "<script" not in html
    assert html == (
        '<b title="&#34;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">'
        "&#34;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</b>"
    )


def test_a_misspelt_name_fails_the_render() -> None:
    with pytest.raises(UndefinedError, match="slgu"):
        TEMPLATES.from_string("<b>{{ slgu }}</b>").render(slug="my-experiment")


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n", "<ul><li>a</li><li>b</li></ul>"),
        ('<line x1="1"\n   x2="2"/>', '<line x1="1" x2="2"/>'),
        ("<p>\n  one sentence\n  on two lines.\n</p>", "<p>one sentence on two lines.</p>"),
        ("{% for n in [1, 2] %}\n  <i>{{ n }}</i>\n{% endfor %}\n", "<i>1</i><i>2</i>"),
        ("<p>\n  made by\n  {{ who }};\n</p>", "<p>made by me;</p>"),
        ("{#- a comment\n    on two lines -#}\n\n<p>x</p>", "<p>x</p>"),
    ],
)
def test_line_breaks_vanish_next_to_tags_and_are_spaces_in_text(source: str, rendered: str) -> None:
    assert TEMPLATES.from_string(source).render(who="me") == rendered
