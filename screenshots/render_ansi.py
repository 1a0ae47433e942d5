"""Renders a `tmux capture-pane -p -e` capture (ANSI SGR colours) to a PNG.

Usage: python3 screenshots/render_ansi.py debate.ansi debate.png  (needs Pillow)
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
BG, FG = (24, 24, 32), (215, 215, 215)
BASE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200),
        (188, 63, 188), (17, 168, 205), (229, 229, 229)]
BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234),
          (214, 112, 214), (41, 184, 219), (255, 255, 255)]


def xterm256(n):
    if n < 8:
        return BASE[n]
    if n < 16:
        return BRIGHT[n - 8]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(line):
    """Yields (char, fg, bg, bold, reverse) per cell."""
    fg, bg, bold, rev = FG, BG, False, False
    for token in re.split(r"(\x1b\[[0-9;]*m)", line):
        if token.startswith("\x1b["):
            codes = [int(c) if c else 0 for c in token[2:-1].split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, rev = FG, BG, False, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif c == 7:
                    rev = True
                elif c == 27:
                    rev = False
                elif 30 <= c <= 37:
                    fg = BASE[c - 30]
                elif 90 <= c <= 97:
                    fg = BRIGHT[c - 90]
                elif c == 39:
                    fg = FG
                elif 40 <= c <= 47:
                    bg = BASE[c - 40]
                elif 100 <= c <= 107:
                    bg = BRIGHT[c - 100]
                elif c == 49:
                    bg = BG
                elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                    color = xterm256(codes[i + 2])
                    if c == 38:
                        fg = color
                    else:
                        bg = color
                    i += 2
                i += 1
        else:
            for ch in token:
                yield ch, fg, bg, bold, rev


def main(src, dst):
    lines = open(src, encoding="utf-8").read().rstrip("\n").split("\n")
    font, bold_font = ImageFont.truetype(FONT, 16), ImageFont.truetype(BOLD, 16)
    cw, ch = 10, 20
    cols = max(sum(1 for _ in parse(l)) for l in lines)
    img = Image.new("RGB", (cols * cw + 20, len(lines) * ch + 20), BG)
    draw = ImageDraw.Draw(img)
    for row, line in enumerate(lines):
        for col, (c, fg, bg, bold, rev) in enumerate(parse(line)):
            if rev:
                fg, bg = bg, fg
            x, y = 10 + col * cw, 10 + row * ch
            draw.rectangle([x, y, x + cw, y + ch], fill=bg)
            draw.text((x, y + 1), c, font=bold_font if bold else font, fill=fg)
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
