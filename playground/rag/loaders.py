"""Turn uploaded bytes (.txt, .md, .pdf, .html) into text, one page at a time.

Every way a file can be unusable ends in one IngestError sentence that names the file and
what to do; recoverable oddities (a non-UTF-8 encoding, unreadable PDF pages) become warnings.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath

from playground.errors import IngestError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm")
_TEXT_SUFFIXES = (".txt", ".md", ".markdown")
_HTML_SUFFIXES = (".html", ".htm")
# Share of control characters above which decoded "text" is really binary data.
_MAX_CONTROL_SHARE = 0.05
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass
class PageText:
    """The text of one page (PDF) or of the whole document (page is None)."""

    text: str
    page: int | None = None


@dataclass
class LoadedDocument:
    """A document's text by page, plus warnings a user should see."""

    source: str
    pages: list[PageText]
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All pages joined, for hashing and previews."""
        return "\n\n".join(page.text for page in self.pages)


def format_size(n_bytes: int) -> str:
    """Human size: 512 B, 3.2 KB, 25.0 MB."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def _sizes_apart(size: int, limit: int) -> tuple[str, str]:
    """A size and a limit written precisely enough to differ ("20.0 MB over 20.0 MB" would not)."""
    said, limit_said = format_size(size), format_size(limit)
    if said != limit_said:
        return said, limit_said
    unit, scale = ("MB", 1024 * 1024) if limit >= 1024 * 1024 else ("KB", 1024)
    for digits in (2, 3):
        said, limit_said = f"{size / scale:.{digits}f} {unit}", f"{limit / scale:.{digits}f} {unit}"
        if said != limit_said:
            return said, limit_said
    return f"{size:,} bytes", f"{limit:,}-byte"


def chunk_count(count: int) -> str:
    """'1 chunk', '3 chunks'."""
    return f"{count} chunk" if count == 1 else f"{count} chunks"


def load_document(
    source: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, size: int | None = None
) -> LoadedDocument:
    """Extract the text of one file; raise IngestError (one sentence) when it is unusable."""
    size = len(data) if size is None else size
    suffix = PurePath(source).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(
            f"{source} has an unsupported type '{suffix or 'none'}'; "
            "upload .txt, .md, .pdf or .html files."
        )
    if size > max_bytes:
        said, limit = _sizes_apart(size, max_bytes)
        raise IngestError(
            f"{source} is {said}, over the {limit} limit; "
            "split it into smaller files or raise the limit."
        )
    if not data.strip():
        raise IngestError(f"{source} is empty; there is nothing to ingest.")
    if suffix == ".pdf":
        document = _load_pdf(source, data)
    else:
        text, warnings = decode_text(source, data)
        if suffix in _HTML_SUFFIXES:
            text = html_to_text(text)
        document = LoadedDocument(source, [PageText(normalize(text))], warnings)
    if not any(page.text.strip() for page in document.pages):
        raise IngestError(f"{source} contains no text; there is nothing to ingest.")
    return document


def normalize(text: str) -> str:
    """Unify newlines, drop trailing spaces and collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def decode_text(source: str, data: bytes) -> tuple[str, list[str]]:
    """Decode UTF-8, else Western (Windows-1252), else detect; binary data is an IngestError.

    A statistical guess on a short Latin-1 file picks exotic code pages ("café" read as
    cp775 became "cafķ"); a person's non-UTF-8 upload is far likelier Western, so that is
    tried first whenever the result reads like Western text.
    """
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _binary(source)
    warnings: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        western = None if data.startswith((b"\xff\xfe", b"\xfe\xff")) else _western(data)
        if western is not None:
            text = western
            warnings = [_read_as(source, "Windows-1252 (Western European)")]
        else:
            text, warnings = _decode_detected(source, data)
    if _looks_binary(text):
        raise _binary(source)
    return text, warnings


# Western letters: ASCII plus the accented letters of Latin-1 and the few Windows-1252 adds.
_WESTERN_LETTER = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿŠšŒœŽžŸƒ]")
_NON_ASCII_LETTER = re.compile(r"[À-ÖØ-öø-ÿŠšŒœŽžŸƒ]")
# Non-letters a Western text uses; anything else above ASCII (¹, ³, ¤, ...) means a wrong guess.
_WESTERN_SYMBOLS = set("\u00a0¡¢£¥§©«®°±²´µ·º»¿×÷€‚„…†‡‰‹›‘’“”•–—˜™")


def _western(data: bytes) -> str | None:
    """The text as Windows-1252 if it reads like Western European text, else None.

    Western text is mostly ASCII with accented letters inside words; other code pages read
    as Windows-1252 give words made almost entirely of accented letters (Cyrillic, Greek)
    or symbols such as ¹ and ³ inside words (Central European).
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None  # bytes Windows-1252 leaves undefined: Latin-1 would make them controls
    letters = len(_WESTERN_LETTER.findall(text))
    accented = len(_NON_ASCII_LETTER.findall(text))
    if not letters or accented / letters > 0.3:
        return None
    for char in text:
        if ord(char) > 0x7F and not _NON_ASCII_LETTER.match(char) and char not in _WESTERN_SYMBOLS:
            return None
    return text


def _read_as(source: str, encoding: str) -> str:
    return f"{source} is not UTF-8; it was read as {encoding} (check the text looks right)."


def _decode_detected(source: str, data: bytes) -> tuple[str, list[str]]:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        # No encoding fits: keep what UTF-8 can read and say so, unless it is binary.
        text = data.decode("utf-8", errors="replace")
        if text.count("\ufffd") > max(8, len(text) // 50):
            raise _binary(source)
        return text, [
            f"{source} is not valid UTF-8 and its encoding could not be detected; "
            "unreadable characters were replaced with �."
        ]
    return str(best), [_read_as(source, best.encoding)]


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    return bool(sample) and len(_CONTROL.findall(sample)) / len(sample) > _MAX_CONTROL_SHARE


def _binary(source: str) -> IngestError:
    return IngestError(
        f"{source} looks like binary data, not text; upload a real text, Markdown, "
        "HTML or PDF file."
    )


def _load_pdf(source: str, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if b"%PDF-" not in data[:1024]:
        raise IngestError(
            f"{source} is not a PDF (no PDF header); export it again as PDF or upload it as text."
        )
    # pypdf logs every recoverable oddity; they are not the user's business.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(
                f"{source} is password-protected; remove the password and upload it again."
            )
        pages_total = len(reader.pages)
    except IngestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise IngestError(
            f"{source} is a damaged PDF ({type(exc).__name__}); export it again and re-upload."
        ) from None
    pages: list[PageText] = []
    unreadable: list[int] = []
    for number in range(1, pages_total + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception:  # one bad page must not lose the others
            unreadable.append(number)
            continue
        text = normalize(text)
        if text:
            pages.append(PageText(text, number))
    if not pages:
        raise IngestError(
            f"{source} has no text layer (scanned images?); run OCR on it or upload the text."
        )
    warnings = []
    if unreadable:
        listed = ", ".join(str(n) for n in unreadable)
        warnings.append(f"{source}: page(s) {listed} could not be read and were skipped.")
    return LoadedDocument(source, pages, warnings)


class _TextExtractor(HTMLParser):
    """Collect visible text; block elements become line breaks, script/style are dropped."""

    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "table",
            "section",
            "article",
            "header",
            "footer",
            "blockquote",
            "pre",
            "dt",
            "dd",
            "title",
            "hr",
        ]
    )
    _SKIP = frozenset(("script", "style", "noscript", "template", "svg"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n" if tag not in ("br", "li", "tr") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS and tag not in ("br", "li", "tr"):
            # Line-level tags break only where they start: a list stays one paragraph.
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, paragraphs separated by blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return normalize("\n".join(lines))
