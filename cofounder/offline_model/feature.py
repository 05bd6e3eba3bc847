"""The feature the scripted coder adds to slugkit once the project exists: `slugify` gains a
`max_length` that cuts the slug at a separator, with its tests."""

from __future__ import annotations

# slugify as the feature leaves it, replacing the function whole; the pattern is the fixed one.
FUNCTION = '''def slugify(
    text: str, separator: str = "-", max_length: int | None = None
) -> str:
    """Lower-case ASCII words of `text` joined by `separator`; with `max_length`, cut at the last
    separator that keeps it that short (a first word longer than that is cut itself)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", separator, ascii_text.lower()).strip(separator)
    if max_length is None or len(slug) <= max_length:
        return slug
    cut = slug.rfind(separator, 0, max_length + len(separator)) if separator else -1
    return slug[:cut] if cut > 0 else slug[:max_length]
'''

TESTS_PATH = "tests/test_max_length.py"
TESTS = """from slugkit import slugify


def test_a_long_slug_is_cut_at_a_separator():
    assert slugify("The quick brown fox", max_length=12) == "the-quick"


def test_a_cut_leaves_no_trailing_separator():
    assert slugify("Hello World Again", max_length=12) == "hello-world"


def test_short_slugs_stay_whole_and_a_long_first_word_is_cut():
    assert slugify("Hello World", max_length=11) == "hello-world"
    assert slugify("Supercalifragilistic", max_length=5) == "super"
"""

# The line the docs step adds to the README the first build wrote.
README_EDIT = {
    "old": "Run the tests with",
    "new": "`slugify(text, max_length=20)` cuts a slug at a separator.\n\nRun the tests with",
}
