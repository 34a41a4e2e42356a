"""Loading uploads: every supported format reads, every bad file fails with one clear sentence."""

from __future__ import annotations

import os

import pytest

from playground.errors import IngestError
from playground.rag.loaders import html_to_text, load_document
from tests.rag_fixtures import make_pdf

GOOD_PDF = make_pdf(["The Trail Tent is waterproof to 3000 mm.", "Setup takes five minutes."])

CASES = [
    # name, data, expected text fragment, expected error (None when the file loads)
    ("notes.txt", b"Plain text about tents.", "Plain text about tents.", None),
    ("guide.md", b"# Guide\n\nUse the poles.", "Use the poles.", None),
    ("bom.txt", b"\xef\xbb\xbfText with a byte order mark.", "Text with a byte order", None),
    ("manual.pdf", GOOD_PDF, "waterproof to 3000 mm", None),
    ("page.html", b"<p>Visible</p><script>hidden()</script>", "Visible", None),
    ("UPPER.TXT", b"Suffix case does not matter.", "Suffix case", None),
    ("empty.txt", b"", None, "empty.txt is empty; there is nothing to ingest."),
    ("blank.md", b"  \n\n\t ", None, "blank.md is empty; there is nothing to ingest."),
    (
        "fake.pdf",
        b"this is plain text with a .pdf name",
        None,
        "fake.pdf is not a PDF (no PDF header); export it again as PDF or upload it as text.",
    ),
    (
        "truncated.pdf",
        GOOD_PDF[:60],
        None,
        "truncated.pdf is a damaged PDF",
    ),
    (
        "scan.pdf",
        make_pdf([None, None]),
        None,
        "scan.pdf has no text layer (scanned images?); run OCR on it or upload the text.",
    ),
    (
        "image.txt",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        None,
        "image.txt looks like binary data, not text; upload a real text, Markdown, HTML "
        "or PDF file.",
    ),
    (
        "slides.pptx",
        b"PK\x03\x04 zip",
        None,
        "slides.pptx has an unsupported type '.pptx'; upload .txt, .md, .pdf or .html files.",
    ),
    (
        "only-tags.html",
        b"<html><script>var x = 1;</script><style>p{}</style></html>",
        None,
        "only-tags.html contains no text; there is nothing to ingest.",
    ),
]


@pytest.mark.parametrize(("name", "data", "expected_text", "expected_error"), CASES)
def test_load_document_reads_good_files_and_names_the_problem_of_bad_ones(
    name: str, data: bytes, expected_text: str | None, expected_error: str | None
) -> None:
    if expected_error is None:
        document = load_document(name, data)
        assert expected_text in document.text
        assert document.warnings == []
    else:
        with pytest.raises(IngestError) as caught:
            load_document(name, data)
        assert str(caught.value).startswith(expected_error)
        assert str(caught.value).count("\n") == 0


def test_oversized_file_is_refused_with_its_size_and_the_limit() -> None:
    with pytest.raises(IngestError) as caught:
        load_document("big.txt", b"a" * 3000, max_bytes=2048)
    assert str(caught.value) == (
        "big.txt is 2.9 KB, over the 2.0 KB limit; split it into smaller files or raise the limit."
    )


@pytest.mark.parametrize(
    ("size", "said"),
    [
        (20 * 1024 * 1024 + 5000, "big.txt is 20.005 MB, over the 20.000 MB limit"),
        (20 * 1024 * 1024 + 1, "big.txt is 20,971,521 bytes, over the 20,971,520-byte limit"),
    ],
)
def test_a_file_just_over_the_limit_says_by_how_much(size: int, said: str) -> None:
    with pytest.raises(IngestError) as caught:
        load_document("big.txt", b"", max_bytes=20 * 1024 * 1024, size=size)
    assert str(caught.value).startswith(said + ";")


def test_size_limit_uses_the_reported_size_when_the_bytes_were_not_read() -> None:
    with pytest.raises(IngestError, match=r"big\.pdf is 25\.0 MB, over the 20\.0 MB limit"):
        load_document("big.pdf", b"", size=25 * 1024 * 1024)


WESTERN = "Windows-1252 (Western European)"


def test_cp1252_text_is_decoded_and_the_user_is_told() -> None:
    text = "Café crème: returns within thirty days, naïve façade of the tent’s poles."
    document = load_document("latin.txt", text.encode("cp1252"))
    assert document.text == text
    assert document.warnings == [
        f"latin.txt is not UTF-8; it was read as {WESTERN} (check the text looks right)."
    ]


@pytest.mark.parametrize(
    "text",
    [
        "café",
        "Le café est fermé le lundi.",
        "Größe: 42 cm, Gewicht 1,2 kg. Überzug aus Baumwolle.",
        "¿Dónde está la tienda? Mañana a las 9.",
        "Smörgåsbord och kaffe på morgonen.",
    ],
)
def test_latin1_western_text_is_read_as_western_before_any_guess(text: str) -> None:
    document = load_document("latin.txt", text.encode("latin-1"))
    assert document.text == text
    assert document.warnings == [
        f"latin.txt is not UTF-8; it was read as {WESTERN} (check the text looks right)."
    ]


def test_text_that_is_not_western_is_still_detected() -> None:
    text = "Палатка не пропускает воду, а швы проклеены. Вес палатки полтора килограмма."
    document = load_document("russian.txt", text.encode("cp1251"))
    assert document.text == text
    assert "Windows-1252" not in document.warnings[0]


def test_utf16_text_with_bom_is_read() -> None:
    document = load_document("wide.txt", "Sleeping bag care guide.".encode("utf-16"))
    assert document.text == "Sleeping bag care guide."
    assert document.warnings and "not UTF-8" in document.warnings[0]


def test_random_bytes_named_txt_are_refused_as_binary() -> None:
    with pytest.raises(IngestError, match="looks like binary data"):
        load_document("random.txt", os.urandom(4096).replace(b"\x00", b"\x01"))


def test_pdf_keeps_page_numbers_and_skips_pages_without_text() -> None:
    document = load_document("mixed.pdf", make_pdf(["First page.", None, "Third page."]))
    assert [(p.page, p.text) for p in document.pages] == [(1, "First page."), (3, "Third page.")]


def test_html_keeps_block_structure_and_drops_scripts_and_styles() -> None:
    html = (
        "<html><head><title>Repairs</title><style>p {}</style></head><body>"
        "<h1>Trail Fix</h1><p>We fix &amp; patch.</p><ul><li>Poles</li><li>Zips</li></ul>"
        "<script>track()</script></body></html>"
    )
    assert html_to_text(html) == "Repairs\n\nTrail Fix\n\nWe fix & patch.\n\nPoles\nZips"
