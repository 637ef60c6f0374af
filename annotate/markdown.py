"""Campaign guidelines as Markdown, rendered to HTML that is safe to show to workers.

Markdown lets admins write raw HTML, so the rendered HTML goes through nh3 (the Ammonia sanitiser) with a
short allow-list: text formatting, lists, headings, tables, code and links (http, https and mailto only,
opened with rel="noopener noreferrer nofollow"). Scripts, styles, event handlers, iframes and images are
removed.
"""

from __future__ import annotations

from functools import lru_cache

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "h1", "h2", "h3", "h4", "blockquote", "code",
     "pre", "a", "hr", "table", "thead", "tbody", "tr", "th", "td", "del"}
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_CHARS = 50_000


@lru_cache(maxsize=128)
def markdown_to_safe_html(text: str) -> str:
    """Render Markdown to sanitised HTML (cached: the labeling screen shows the same guidelines often)."""
    html = markdown_lib.markdown(text[:MAX_CHARS], extensions=["sane_lists", "tables"], output_format="html")
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )
