"""Template loaders that send less: layout whitespace between tags is dropped when a template is loaded.

The labeling pane is rendered once per judgment set, so every byte of indentation in its template is sent
(and compressed) thousands of times an hour. `LeanLoader` removes whitespace that holds a line break and
sits between two tags, once, when the template source is read (the cached loader keeps the result), so
rendering costs nothing extra — unlike `{% spaceless %}`, which runs a regular expression over every
rendered page. Whitespace inside a line (`</kbd> <kbd>`) is kept, so inline text still reads the same;
text and template variables are never touched. Only templates named in LEAN_TEMPLATES are changed.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.template.loaders.filesystem import Loader as FilesystemLoader

# Whitespace with at least one line break between the end of a tag (or template tag) and the start of
# the next one.
_BETWEEN_TAGS = re.compile(r"(>|%\})[ \t]*\n\s*(?=<|\{%)")


def strip_layout_whitespace(source: str) -> str:
    """`source` without the line-break whitespace between tags (see the module docstring)."""
    return _BETWEEN_TAGS.sub(r"\1", source)


class LeanLoader(FilesystemLoader):
    """The filesystem loader, with layout whitespace stripped from the templates named in LEAN_TEMPLATES."""

    def get_contents(self, origin: Any) -> str:
        """The template's source, lean when the template is listed."""
        source = super().get_contents(origin)
        if origin.template_name in getattr(settings, "LEAN_TEMPLATES", ()):
            return strip_layout_whitespace(source)
        return source
