"""Server-rendered charts of the town overview: the geometry of SVG bar charts (the template
draws them, ``_charts.html``). No JavaScript and no chart library: a bar chart is a few
rectangles, and the page stays readable with scripts off and in a screenshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.console.i18n import term, translator

if TYPE_CHECKING:
    from services.console.i18n import Lang

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 36, 28, 12
SERIES = (("reported", "#1f6fb2"), ("closed", "#2e8b57"))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, int, str]]  # x, y, text
    axis: list[tuple[float, str]]  # y, value
    legend: list[tuple[str, str]]  # colour, name
    baseline: float


def _scale_max(values: list[int]) -> int:
    """The axis top: a round number at or above the largest value, divisible by the 4 gridlines."""
    top: int = max(values, default=0)
    step: int = 10 ** (len(str(max(top, 1))) - 1)
    rounded = max(4, ((top + step - 1) // step) * step)
    return int(-(-rounded // 4) * 4)


def daily_chart(days: list[dict[str, Any]], lang: Lang) -> Chart:
    """Reported and closed per day (上报 / 办结 每日), one group of two bars per day."""
    t = translator(lang)
    top = _scale_max([int(d.get(name, 0)) for d in days for name, _ in SERIES])
    plot_h = HEIGHT - BOTTOM - TOP
    group = (WIDTH - LEFT) / max(len(days), 1)
    bar_w = max(2.0, group * 0.8 / len(SERIES))
    bars, labels = [], []
    for i, day in enumerate(days):
        x0 = LEFT + i * group + group * 0.1
        for j, (name, colour) in enumerate(SERIES):
            value = int(day.get(name, 0))
            h = plot_h * value / top
            title = f"{day['day']} {t(name)}: {value}"
            bars.append(Bar(x0 + j * bar_w, TOP + plot_h - h, bar_w, h, colour, title))
        labels.append((x0 + bar_w, HEIGHT - 10, str(day["day"])[5:]))
    axis = [(TOP + plot_h * (1 - k / 4), str(round(top * k / 4))) for k in range(5)]
    return Chart(WIDTH, HEIGHT, bars, labels, axis, [(c, t(n)) for n, c in SERIES], TOP + plot_h)


def category_chart(by_category: dict[str, Any], lang: Lang) -> Chart:
    """Reported and closed per category (分类), one group of two bars per category."""
    t = translator(lang)
    rows = [(c, (e.get("kpis") or {})) for c, e in by_category.items()]
    top = _scale_max([int(k.get(name, 0)) for _, k in rows for name, _ in SERIES])
    plot_h = HEIGHT - BOTTOM - TOP
    group = (WIDTH - LEFT) / max(len(rows), 1)
    bar_w = min(48.0, group * 0.8 / len(SERIES))
    bars, labels = [], []
    for i, (category, figures) in enumerate(rows):
        x0 = LEFT + i * group + (group - bar_w * len(SERIES)) / 2
        for j, (name, colour) in enumerate(SERIES):
            value = int(figures.get(name, 0))
            h = plot_h * value / top
            bars.append(
                Bar(x0 + j * bar_w, TOP + plot_h - h, bar_w, h, colour, f"{term(lang, category)} {t(name)}: {value}")
            )
        labels.append((x0 + bar_w, HEIGHT - 10, term(lang, category)))
    axis = [(TOP + plot_h * (1 - k / 4), str(round(top * k / 4))) for k in range(5)]
    return Chart(WIDTH, HEIGHT, bars, labels, axis, [(c, t(n)) for n, c in SERIES], TOP + plot_h)
