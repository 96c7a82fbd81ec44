"""The priority badges meet WCAG AA for their text (4.5:1), computed from the stylesheet.

The colours are read from web/static/app.css itself (the custom properties and the
`.badge` rules), so changing a colour there without checking it fails here.
Relative luminance and contrast ratio as defined by WCAG 2.x."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[1] / "web" / "static" / "app.css"
AA_NORMAL_TEXT = 4.5


def stylesheet() -> str:
    # Comments could hold colours that are not in force.
    return re.sub(r"/\*.*?\*/", "", CSS.read_text(encoding="utf-8"), flags=re.S)


def custom_properties(css: str) -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", css, re.S)
    assert root, "no :root block in app.css"
    return dict(re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", root.group(1)))


def declarations(css: str, selector: str) -> dict[str, str]:
    """The declarations of every rule whose selector list is exactly `selector`, merged."""
    found: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if selector in [s.strip() for s in selectors.split(",")]:
            found.update(
                (name.strip(), value.strip())
                for name, value in re.findall(r"([\w-]+)\s*:\s*([^;]+)", body)
            )
    return found


def resolve(value: str, properties: dict[str, str]) -> str:
    while (ref := re.fullmatch(r"var\((--[\w-]+)\)", value.strip())) is not None:
        value = properties[ref.group(1)].strip()
    return value


def channels(colour: str) -> tuple[float, float, float]:
    colour = colour.strip().lower()
    named = {"#fff": "#ffffff", "white": "#ffffff", "#000": "#000000", "black": "#000000"}
    colour = named.get(colour, colour)
    match = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", colour)
    assert match, f"not a #rrggbb colour: {colour!r}"
    return tuple(int(part, 16) / 255 for part in match.groups())  # type: ignore[return-value]


def luminance(colour: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_formula_against_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#d4670b", "#ffffff") < AA_NORMAL_TEXT  # the old P2, which failed


@pytest.mark.parametrize("priority", [1, 2, 3, 4, 5])
def test_priority_badges_meet_aa(priority: int) -> None:
    css = stylesheet()
    properties = custom_properties(css)
    badge = declarations(css, ".badge")
    text = resolve(badge["color"], properties)
    background = resolve(declarations(css, f".badge.p{priority}")["background"], properties)
    ratio = contrast(text, background)
    assert ratio >= AA_NORMAL_TEXT, f"P{priority}: {text} on {background} is {ratio:.2f}:1"


def test_other_badges_meet_aa() -> None:
    css = stylesheet()
    properties = custom_properties(css)
    white = resolve(declarations(css, ".badge")["color"], properties)
    major = resolve(declarations(css, ".badge.major")["background"], properties)
    assert contrast(white, major) >= AA_NORMAL_TEXT
    status = declarations(css, ".badge.status")
    assert contrast(resolve(status["color"], properties), status["background"]) >= AA_NORMAL_TEXT
