"""Help: the README, served by the workbench itself as one page (each page's Help link opens
the section that explains it), and the site icon. Nothing is fetched from elsewhere: the README
is the installed package's own (its long description), or the checkout's when run from one."""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from markdown_it import MarkdownIt
from markdown_it.token import Token

from calibench.server.web.pages import page
from calibench.server.web.templating import STATIC

pages = APIRouter(include_in_schema=False)
CHECKOUT_README = Path(__file__).resolve().parents[4] / "README.md"
"""``README.md`` beside ``src/`` when calibench runs from a checkout."""


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens
    ("Calibration data (`--dataset`)" → ``calibration-data---dataset``), so a README link works
    the same here and there."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def readme_text() -> str:
    if CHECKOUT_README.is_file():
        return CHECKOUT_README.read_text(encoding="utf-8")
    try:
        described = importlib.metadata.metadata("calibench").get_payload()  # type: ignore[attr-defined]
    except importlib.metadata.PackageNotFoundError:
        described = None
    return str(described or "The README is not installed with this copy of calibench.")


@functools.lru_cache(maxsize=1)
def readme_html() -> str:
    """The README as HTML: raw HTML in it is escaped, each heading has its GitHub anchor, and
    images (which live beside the README, not on this server) are left out."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(readme_text())
    for heading, inline in itertools.pairwise(tokens):
        if heading.type == "heading_open":
            heading.attrSet("id", slug(inline.content))
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _served(token.children)
    return str(parser.renderer.render(tokens, parser.options, {}))


def _served(children: list[Token]) -> list[Token]:
    """Images become their alt text, and links to files of the repository (which this server
    does not serve) their plain text; links to anchors and to the web stay."""
    kept: list[Token] = []
    open_links: list[bool] = []
    for token in children:
        if token.type == "image":
            alt = Token("text", "", 0)
            alt.content = f"[screenshot: {token.content}]" if token.content else "[screenshot]"
            kept.append(alt)
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            served = href.startswith(("#", "http://", "https://", "/"))
            open_links.append(served)
            if served:
                kept.append(token)
        elif token.type == "link_close":
            if open_links.pop() if open_links else True:
                kept.append(token)
        else:
            kept.append(token)
    return kept


@pages.get("/help", response_class=HTMLResponse)
def help_page(request: Request) -> HTMLResponse:
    return page(request, "help.html", {"readme": readme_html(), "active": "help"})


@pages.get("/favicon.ico", response_class=FileResponse)
def favicon() -> FileResponse:
    """Browsers ask for it on their own, whatever the page's icon link says."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
