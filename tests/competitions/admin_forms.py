"""Posting an admin change form as a browser would: every field the page holds, with its
current value, then the test's changes on top (inlines and their management forms too)."""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client


class _FormFields(HTMLParser):
    """The successful controls of the page's form named `form_id`."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            checkable = a.get("type") in ("checkbox", "radio")
            if checkable and "checked" not in a:
                return
            self.fields.setdefault(name, []).append(a.get("value", "on" if checkable else ""))
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # The browser drops the one newline that follows <textarea>.
            self.fields[self._textarea] = ["".join(self._text).removeprefix("\n")]
            self._textarea = None


def admin_form_post(client: Client, url: str, form_id: str, changes: dict[str, str]):
    """GET the change page at `url`, then POST its form with `changes` applied."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    parser = _FormFields(form_id)
    parser.feed(page.content.decode())
    data: dict[str, list[str]] = dict(parser.fields)
    for name, value in changes.items():
        data[name] = [value]
    return client.post(url, data)
