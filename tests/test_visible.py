"""Hidden characters in user text are shown by code point, in the terminal and in the report."""

import json

from gapscope.visible import json_escaped, visible


def test_visible_shows_controls_bidi_and_zero_width_and_keeps_ordinary_text():
    assert visible("a\x1b[31mb\x07c\x9bd\u202ee\u200bf\ufeffg\x00h\u00adi\U000e0041") == \
        "a⟨U+001B⟩[31mb⟨U+0007⟩c⟨U+009B⟩d⟨U+202E⟩e⟨U+200B⟩f⟨U+FEFF⟩g⟨U+0000⟩h⟨U+00AD⟩i⟨U+E0041⟩"
    ordinary = "Grüße,\tcafé\r\nцена 💳 👩\u200d💻 مرحبا"  # layout, accents, scripts, a ZWJ emoji
    assert visible(ordinary) == ordinary


def test_json_escaped_is_the_same_json_value():
    value = {"text": "x\u202ey\x1b[2J\x9b\U000e0041", "name": "é"}  # the last: a tag character, astral
    doc = json_escaped(json.dumps(value, ensure_ascii=False))
    assert json.loads(doc) == value
    assert "\u202e" not in doc and "\x9b" not in doc and "\U000e0041" not in doc and "é" in doc
