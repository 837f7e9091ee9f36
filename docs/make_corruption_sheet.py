"""Draw docs/corruptions.png: one visible synthetic image under every corruption type
(columns, in the benchmark's order) at every severity (rows), exactly as
``vireid eval --corrupt`` feeds it to a 128 × 64 model (the quickstarts' input size).

    PYTHONPATH=src python docs/make_corruption_sheet.py [--out docs/corruptions.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from vireid.data.cache import load_rgb
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.evaluation.corruption import CORRUPTIONS, SEVERITIES, corrupt_image, resize_like_test

HEIGHT, WIDTH = 128, 64
LABEL_W, HEADER_H, GAP = 46, 118, 2


def _vertical_text(text: str, font, height: int) -> Image.Image:
    strip = Image.new("RGB", (height, 14), "white")
    ImageDraw.Draw(strip).text((2, 0), text, fill="black", font=font)
    return strip.rotate(90, expand=True)


def sheet(img, seed: int = 0) -> Image.Image:
    """(HEIGHT, WIDTH, 3) uint8 → the contact sheet (clean row, then severities 1..5)."""
    font = ImageFont.load_default(size=12)
    cols, rows = len(CORRUPTIONS), 1 + len(SEVERITIES)
    out = Image.new(
        "RGB",
        (LABEL_W + cols * (WIDTH + GAP), HEADER_H + rows * (HEIGHT + GAP)),
        "white",
    )
    draw = ImageDraw.Draw(out)
    for j, name in enumerate(CORRUPTIONS):
        x = LABEL_W + j * (WIDTH + GAP)
        out.paste(_vertical_text(name, font, HEADER_H - 4), (x + WIDTH // 2 - 7, 2))
        for i, sev in enumerate((0, *SEVERITIES)):
            cell = img if sev == 0 else corrupt_image(img, name, sev, seed)
            out.paste(Image.fromarray(cell), (x, HEADER_H + i * (HEIGHT + GAP)))
    for i, label in enumerate(("clean", *(f"s{s}" for s in SEVERITIES))):
        draw.text((4, HEADER_H + i * (HEIGHT + GAP) + HEIGHT // 2 - 6), label, "black", font)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "corruptions.png")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_sysu(tmp, SynthSpec(ids=10, seed=0, height=HEIGHT, width=WIDTH))
        path = sorted((Path(tmp) / "cam1").rglob("*.jpg"))[0]
        img = resize_like_test(load_rgb(str(path)), HEIGHT, WIDTH)
    # 5 bits per channel keep the committed file under 1 MB without visible banding (a
    # 256-colour palette posterises the brightness and contrast columns)
    ImageOps.posterize(sheet(img), 5).save(a.out, optimize=True)
    print(a.out)


if __name__ == "__main__":
    main()
