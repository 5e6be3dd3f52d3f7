"""Draw the LINE rich-menu image: bot/channels/assets/richmenu.png.

What it is: a one-off asset generator, run by a developer when the menu's labels or look change:

    .venv/bin/pip install -e ".[assets]"   # Pillow
    apt-get install -y fonts-noto-cjk      # Noto Sans CJK JP Bold
    .venv/bin/python scripts/make_richmenu.py

It draws one coloured tile per area of ``bot.channels.line.RICH_MENU_AREAS`` (same size, same
order, same bounds as ``richmenu_request()``), each with a simple white icon made of Pillow shapes
and the area's label in Noto Sans CJK JP Bold, and writes the PNG that ``nanbyo-bot line richmenu``
uploads.

What it is not: not used at run time. The bot uploads the committed PNG and needs neither Pillow
nor the font; the image is not regenerated on install.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.channels.line import RICH_MENU_AREAS, RICH_MENU_HEIGHT, RICH_MENU_WIDTH, richmenu_request

OUT = Path(__file__).resolve().parent.parent / "bot" / "channels" / "assets" / "richmenu.png"
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")  # Debian's fonts-noto-cjk
FONT_FAMILY = "Noto Sans CJK JP"  # the .ttc holds JP, KR, SC, TC and HK faces; the JP glyph forms matter
MAX_BYTES = 1024 * 1024  # LINE's limit for a rich-menu image

SS = 2  # drawn at twice the size and scaled down, so the icons' edges are smooth
WHITE = (255, 255, 255)
GAP = 10  # white margin around each tile, in final pixels
RADIUS = 40
# Tile colours: each has a contrast ratio of at least 7:1 with white text (WCAG AAA).
BLUE, GREEN, BROWN, PURPLE = (0x1F, 0x4E, 0x8C), (0x15, 0x5E, 0x3F), (0x8A, 0x3E, 0x00), (0x5E, 0x3A, 0x8E)

Box = tuple[float, float, float, float]


# --- icons: white shapes in a square box, details cut out in the tile colour ---------------


def bubble(d: ImageDraw.ImageDraw, box: Box, bg: tuple[int, int, int]) -> None:
    """A speech bubble with three dots (相談する)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = (x0, y0 + h * 0.08, x1, y0 + h * 0.74)
    d.rounded_rectangle(body, radius=h * 0.2, fill=WHITE)
    d.polygon([(x0 + w * 0.22, body[3] - 2), (x0 + w * 0.44, body[3] - 2), (x0 + w * 0.16, y1)], fill=WHITE)
    cy, r = (body[1] + body[3]) / 2, h * 0.07
    for fx in (0.28, 0.5, 0.72):
        cx = x0 + w * fx
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=bg)


def calculator(d: ImageDraw.ImageDraw, box: Box, bg: tuple[int, int, int]) -> None:
    """A calculator: a display and a 3x3 keypad (自己負担を計算)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = (x0 + w * 0.14, y0, x1 - w * 0.14, y1)
    d.rounded_rectangle(body, radius=w * 0.1, fill=WHITE)
    bw = body[2] - body[0]
    pad = bw * 0.13
    d.rounded_rectangle((body[0] + pad, y0 + pad, body[2] - pad, y0 + h * 0.32), radius=bw * 0.04, fill=bg)
    keys_top, keys_bottom = y0 + h * 0.32 + pad * 0.8, y1 - pad
    kx, ky = (bw - 2 * pad) / 3, (keys_bottom - keys_top) / 3
    for row in range(3):
        for col in range(3):
            kx0, ky0 = body[0] + pad + col * kx, keys_top + row * ky
            d.rounded_rectangle(
                (kx0 + kx * 0.12, ky0 + ky * 0.12, kx0 + kx * 0.88, ky0 + ky * 0.88), radius=kx * 0.15, fill=bg
            )


def bell(d: ImageDraw.ImageDraw, box: Box, bg: tuple[int, int, int]) -> None:
    """A bell (更新のお知らせ)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.ellipse((cx - w * 0.07, y0, cx + w * 0.07, y0 + h * 0.14), fill=WHITE)  # the knob
    d.chord((cx - w * 0.32, y0 + h * 0.08, cx + w * 0.32, y0 + h * 0.62), 180, 360, fill=WHITE)  # the dome
    d.polygon(
        [
            (cx - w * 0.32, y0 + h * 0.35),
            (cx + w * 0.32, y0 + h * 0.35),
            (cx + w * 0.42, y0 + h * 0.74),
            (cx - w * 0.42, y0 + h * 0.74),
        ],
        fill=WHITE,
    )  # the flare
    d.rounded_rectangle((cx - w * 0.46, y0 + h * 0.70, cx + w * 0.46, y0 + h * 0.82), radius=h * 0.06, fill=WHITE)
    d.chord((cx - w * 0.13, y0 + h * 0.74, cx + w * 0.13, y1), 0, 180, fill=WHITE)  # the clapper


def pin(d: ImageDraw.ImageDraw, box: Box, bg: tuple[int, int, int]) -> None:
    """A map pin (窓口を探す)."""
    x0, y0, x1, y1 = box
    w = x1 - x0
    cx, r = (x0 + x1) / 2, w * 0.34
    cy = y0 + r
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=WHITE)
    # The sides touch the circle where they are tangent to it, so the outline has no kink.
    dist = y1 - cy
    tx, ty = r * (1 - (r / dist) ** 2) ** 0.5, cy + r * r / dist
    d.polygon([(cx - tx, ty), (cx + tx, ty), (cx, y1)], fill=WHITE)
    hole = r * 0.42
    d.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=bg)


# Postback data -> (label as printed, one line each; icon; tile colour). The lines joined must be
# the area's label, so a renamed area fails here instead of showing an old label.
TILES: dict[
    str, tuple[tuple[str, ...], Callable[[ImageDraw.ImageDraw, Box, tuple[int, int, int]], None], tuple[int, int, int]]
] = {
    "menu": (("相談する",), bubble, BLUE),
    "start:copay": (("自己負担を", "計算"), calculator, GREEN),
    "start:reminder": (("更新の", "お知らせ"), bell, BROWN),
    "office": (("窓口を", "探す"), pin, PURPLE),
}


def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """The Japanese face of the collection at ``path``, or exit with how to install it."""
    if not path.exists():
        sys.exit(
            f"error: font not found: {path}\n"
            "install it with: apt-get update && apt-get install -y fonts-noto-cjk (or pass --font)"
        )
    for index in range(16):
        try:
            font = ImageFont.truetype(str(path), size, index=index)
        except OSError:
            break
        if font.getname()[0] == FONT_FAMILY:
            return font
    return ImageFont.truetype(str(path), size)  # a single-face font given with --font


def draw(font_path: Path) -> Image.Image:
    """The rich-menu image, drawn on the tiles of ``richmenu_request()``."""
    request = richmenu_request()
    assert (request.size.width, request.size.height) == (RICH_MENU_WIDTH, RICH_MENU_HEIGHT)
    img = Image.new("RGB", (RICH_MENU_WIDTH * SS, RICH_MENU_HEIGHT * SS), WHITE)
    d = ImageDraw.Draw(img)
    font = load_font(font_path, 108 * SS)
    line_height = 136 * SS
    for area, (label, data) in zip(request.areas, RICH_MENU_AREAS, strict=True):
        lines, icon, colour = TILES[data]
        assert "".join(lines) == label, f"{data}: the printed lines {lines} are not the label {label!r}"
        b = area.bounds
        x0, y0, x1, y1 = (b.x + GAP) * SS, (b.y + GAP) * SS, (b.x + b.width - GAP) * SS, (b.y + b.height - GAP) * SS
        d.rounded_rectangle((x0, y0, x1, y1), radius=RADIUS * SS, fill=colour)
        cx = (x0 + x1) / 2
        size = 260 * SS
        icon_top = y0 + 70 * SS
        icon(d, (cx - size / 2, icon_top, cx + size / 2, icon_top + size), colour)
        # The label block is centred in the space under the icon.
        text_top, text_bottom = icon_top + size + 20 * SS, y1 - 50 * SS
        top = (text_top + text_bottom) / 2 - line_height * len(lines) / 2
        for n, line in enumerate(lines):
            width = d.textlength(line, font=font)
            assert width <= x1 - x0 - 40 * SS, f"{line!r} does not fit its tile"
            d.text((cx, top + line_height * (n + 0.5)), line, font=font, fill=WHITE, anchor="mm")
    return img.resize((RICH_MENU_WIDTH, RICH_MENU_HEIGHT), Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the LINE rich-menu image (needs Pillow and fonts-noto-cjk).")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the PNG (default: {OUT})")
    parser.add_argument("--font", type=Path, default=FONT, help=f"a Japanese bold font (default: {FONT})")
    args = parser.parse_args(argv)
    img = draw(args.font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out, format="PNG", optimize=True)
    size = args.out.stat().st_size
    if size >= MAX_BYTES:
        print(f"error: {args.out} is {size} bytes; LINE accepts at most {MAX_BYTES}", file=sys.stderr)
        return 1
    shown = args.out.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    print(f"{shown}: {img.width}x{img.height}, {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
