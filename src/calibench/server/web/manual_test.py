import pytest

from calibench.server.web import manual


def test_headings_get_githubs_anchors() -> None:
    assert manual.slug("Calibration data (`--dataset`)") == "calibration-data---dataset"
    assert manual.slug("The web workbench") == "the-web-workbench"
    assert manual.slug("INT8 on CPUs without VNNI") == "int8-on-cpus-without-vnni"


def test_the_readme_is_served_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "## Choosing the calibration data\n\n<script>alert(1)</script>\n\n"
        "![Projects](docs/a.png) see [results](bench/RESULTS.md), [the web](https://x.org) "
        "and [below](#choosing-the-calibration-data).\n"
    )
    monkeypatch.setattr(manual, "readme_text", lambda: text)
    manual.readme_html.cache_clear()
    try:
        html = manual.readme_html()
    finally:
        manual.readme_html.cache_clear()
    assert '<h2 id="choosing-the-calibration-data">' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "[screenshot: Projects]" in html and "<img" not in html
    assert "see results, " in html and "bench/RESULTS.md" not in html
    assert '<a href="https://x.org">the web</a>' in html
    assert '<a href="#choosing-the-calibration-data">below</a>' in html
