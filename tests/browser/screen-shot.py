#!/usr/bin/python3
"""Writes a PNG of the test's X screen (Xvfb) to argv[1].

The desktop tests take their screenshots here rather than through
WebDriver: WebKitWebDriver's screenshot waits for a composited frame, and the
app draws in software (src-tauri/src/window.rs), so it would wait forever.
The X screen is also exactly what a parent would see.
"""

import sys

import gi

gi.require_version("Gdk", "3.0")
from gi.repository import Gdk  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: screen-shot.py OUT.png", file=sys.stderr)
        return 2
    root = Gdk.get_default_root_window()
    if root is None:
        print("screen-shot.py: no X display (DISPLAY is not set)", file=sys.stderr)
        return 1
    pixels = Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height())
    if pixels is None:
        print("screen-shot.py: the screen could not be read", file=sys.stderr)
        return 1
    pixels.savev(sys.argv[1], "png", [], [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
