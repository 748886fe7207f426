"""Reading server-rendered pages the way the tests look at them: by their ``data-testid`` marks."""

from __future__ import annotations

import html
import json
import re
from typing import Any


def texts(page: str, name: str) -> list[str]:
    """The text inside every element carrying ``data-testid=name``, tags stripped."""
    found = re.findall(rf'<(\w+)\b[^>]*\bdata-testid="{name}"[^>]*>(.*?)</\1>', page, re.S)
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()) for _, text in found]


def figure(page: str, name: str) -> dict[str, Any]:
    """The Plotly figure a chart marked ``data-testid=name`` was drawn from."""
    match = re.search(rf'data-testid="{name}" data-figure="([^"]*)"', page)
    assert match, f"no chart {name}"
    return json.loads(html.unescape(match.group(1)))
