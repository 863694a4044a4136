"""A small HTML reader for the dashboard tests, built on the standard library's parser."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attributes: dict[str, str | None]
    text: str = ""


class ParsedPage(HTMLParser):
    """Every start tag with its attributes, the text of each element and the body of each <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.scripts: list[str] = []
        self._open: list[Element] = []
        self._script_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.elements.append(element)
        if tag not in {"meta", "br", "hr", "img", "link", "input"}:
            self._open.append(element)
        if tag == "script":
            self._script_parts = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.scripts.append("".join(self._script_parts))
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        # Script bodies (plotly.js is about 5 MB) go only to `scripts`, which keeps the parser fast.
        if self._open and self._open[-1].tag == "script":
            self._script_parts.append(data)
            return
        for element in self._open:
            element.text += data

    def find(self, tag: str | None = None, **attributes: str) -> list[Element]:
        """Return the elements with this tag (any when None) whose attributes have these values."""
        expected = {name.replace("_", "-"): value for name, value in attributes.items()}
        return [
            element
            for element in self.elements
            if (tag is None or element.tag == tag)
            and all(element.attributes.get(name) == value for name, value in expected.items())
        ]

    def within(self, container: Element, tag: str, class_name: str) -> Element:
        """Return the first element with `tag` and `class_name` after `container` in document order."""
        start = self.elements.index(container)
        for element in self.elements[start + 1 :]:
            if element.tag == tag and class_name in (element.attributes.get("class") or "").split():
                return element
        raise AssertionError(f"No <{tag} class={class_name!r}> after {container}")


def parse_page(text: str) -> ParsedPage:
    page = ParsedPage()
    page.feed(text)
    page.close()
    return page
