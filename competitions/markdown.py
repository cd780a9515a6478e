"""Markdown rendered safely: organizers write descriptions and rules, participants read them."""

import html

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}


def render_markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["tables", "fenced_code"])
    # nh3 drops scripts, event handlers and javascript: URLs; only then is the HTML trusted.
    return mark_safe(nh3.clean(html, tags=_ALLOWED_TAGS, link_rel="noopener nofollow"))


SUMMARY_CHARS = 200


def plain_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The first paragraph of Markdown that is not a heading, as plain text, cut at a word
    boundary near `limit` characters: a competition card's summary."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        block = block.strip()
        if not block or block.startswith(("#", "```", "|", "<")):
            continue
        # Tags dropped, entities decoded: the template escapes the text again.
        plain = html.unescape(nh3.clean(md.markdown(block), tags=set()))
        plain = " ".join(plain.split())
        if len(plain) <= limit:
            return plain
        return plain[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return ""
