"""Groundedness: the share of an answer's sentences that the retrieved chunks support.

A sentence is supported when it is close in meaning to a piece of the chunks (MiniLM cosine,
as before) *and* it does not contradict the chunk sentence it restates. Embeddings see topic,
not truth: "open on Mondays" sits as close to "closed on Sunday and Monday" as a faithful
restatement does. So three cheap rules check the best-matching chunk sentences:

- numbers: every number the sentence states appears in that chunk sentence (number words and
  thousands separators normalised), so "90 days" no longer passes against "60 days";
- negation: a word negated on one side and asserted on the other ("not taped" / "taped",
  "closed" / "open", "never expire" / "expire") is a contradiction, and a negation the answer
  states must be stated by the chunk too;
- entities: names, product codes and week days the sentence mentions appear in that chunk
  paragraph, so swapping "Boise" for "Denver" or "Tuesday" for "Thursday" is caught.

A sentence passes when at least one of its best-matching chunk sentences passes all three.
Which sentences count: of the near ties, those sharing most of the claim's words (then its
subject), so "final-sale items ... 60 days" is held to the final-sale rule; a flip on the very
thing the claim states ("removes viruses" / "does NOT remove viruses") in any near tie is a
contradiction, a flip on something else ("does not remove viruses" / "removes bacteria") is
not. Figures must also keep their unit and the words of their own clause ("comfort 0 °C,
limit -5 °C"); FAQ questions answered "No.", table rows and a small paraphrase lexicon ("can
no longer be trusted" denies "safe") are read too. bench/bench_groundedness.py measures it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.rag.chunking import split_sentences

if TYPE_CHECKING:
    from playground.rag.embeddings import Embedder

# all-MiniLM-L6-v2 cosine similarity: restatements of a chunk sentence or clause score ~0.6-1.0,
# loose paraphrases and same-topic claims not in the text ~0.35-0.52, unrelated ones < 0.25.
GROUNDED_THRESHOLD = 0.55
_CANDIDATES = 4
_NEAR_TIE = 0.15
_MIN_WORDS = 3  # "Yes." or "Sure!" carry no claim to check
_CLAUSE_WORDS = 3
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![A-Za-z]\b|\d|,\d)")
_CLAUSE_SPLIT = re.compile(r",\s+|;\s+|:\s+|\s+(?:and|but|while|whereas)\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+[A-Za-z]+")
_LEAD = re.compile(r"^\s*(?:yes|no|sure|correct|indeed)\b[,.!:;]?\s*", re.IGNORECASE)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90"}
_NEGATORS = {
    "not", "no", "never", "cannot", "can't", "without", "none", "nothing", "neither", "nor",
    "don't", "doesn't", "isn't", "aren't", "won't", "wasn't", "weren't", "shouldn't", "mustn't",
}  # fmt: skip
# Words that state the opposite of another: "closed" is "not open" for the rules below.
_ANTONYMS = {
    "closed": "open", "close": "open", "unavailable": "available", "excluded": "include",
    "prohibited": "allow", "forbidden": "allow", "unsafe": "safe", "optional": "require",
    "resistant": "waterproof", "lose": "keep", "loses": "keep", "lost": "keep",
    "refuse": "accept", "reject": "accept", "different": "same", "dangerous": "safe",
}  # fmt: skip
# Words that say the same as another, so a negation worded one way meets the other:
# "can no longer be trusted" denies what "is still safe" asserts.
_SYNONYMS = {
    "trusted": "safe", "trust": "safe", "reliable": "safe", "permitted": "allow",
    "allowed": "allow", "let": "allow", "needed": "require", "need": "require",
    "required": "require", "mandatory": "require", "retain": "keep", "retains": "keep",
}  # fmt: skip
# Words that put no figure on a quantity: "a lifetime warranty" is not "a 2-year warranty".
_UNBOUNDED = {"lifetime", "life", "forever", "unlimited", "permanent", "permanently"}
_STOP = {
    "a", "an", "the", "is", "are", "be", "been", "being", "was", "were", "it", "its", "to", "of",
    "in", "on", "at", "for", "by", "with", "and", "or", "as", "this", "that", "these", "those",
    "you", "your", "we", "our", "they", "them", "their", "can", "could", "will", "would", "do",
    "does", "did", "has", "have", "had", "any", "all", "also", "so", "if", "from", "up", "out",
    "may", "must", "should", "there", "here", "yes", "just", "only", "within", "such", "after",
    "before", "about", "than", "into", "per", "how", "what", "which", "when", "i", "my", "me",
}  # fmt: skip
# "unrepaired", "unused", "unavailable": the prefix negates a participle or an adjective
_UN = re.compile(r"un([a-z]{3,}(?:ed|able|ible))")
_FREE = re.compile(r"\b(?:costs? nothing|at no (?:cost|charge)|free of charge)\b", re.IGNORECASE)
# "removes bacteria but not viruses": a bare "not X" denies X as the verb's object only
_ELLIPTIC = re.compile(r"(?:,|\bbut)\s+not\s+([A-Za-z][\w-]*)\s*(?=[,.;:]|$)", re.IGNORECASE)
_PASSIVE = {"be", "been", "is", "are", "was", "were", "being"}
_SCOPE = 1  # "cannot ship fuel": the negator denies the next content word, the predicate
_DAYS = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "june", "july", "august", "september", "october", "november",
    "december",
}  # fmt: skip
_NOT_NAMES = {"i", "yes", "no", "the", "a", "an", "us"}  # "US" is "the United States"


def _stem(word: str) -> str:
    """A crude stem, enough to meet 'sealing' with 'seal' and 'shipped' with 'ship'."""
    word = word.lower().replace("’", "'")
    for suffix in ("able", "ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word


_UNBOUNDED_STEMS = {_stem(w) for w in _UNBOUNDED}

# "[1]" or "[2, 3]": a model citing the numbered chunks, not a figure it states
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def numbers_in(text: str) -> set[str]:
    """The numbers a text states: digits (3,000 == 3000) and number words (five == 5)."""
    text = _CITATION.sub(" ", text)
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found


def polarity(text: str) -> tuple[set[str], set[str]]:
    """(asserted, negated) word stems: a negator negates the next few content words."""
    asserted, negated, _ = _polarity(text)
    return asserted, negated


_Objects = dict[tuple[str, bool], set[str]]


def _polarity(text: str) -> tuple[set[str], set[str], _Objects]:
    """(asserted, negated, objects): (stem, negated) -> the content stems it acts on."""
    asserted: set[str] = set()
    negated: set[str] = set()
    objects: _Objects = {}
    # paraphrased negators: "can no longer be trusted", "a technical wash rather than ..."
    text = re.sub(r"\b(?:no longer|rather than|instead of)\b", "not", text, flags=re.IGNORECASE)
    # ... and "nothing" that means free: "costs nothing on orders of $75" denies no orders
    text = re.sub(_FREE, "free", text)
    # What a word acts on is what follows it up to the end of its list ("do not match A,
    # B or C"), or what precedes a passive ("fuel canisters can be shipped").
    for span in re.split(r"[;:.!?()]|\s+(?:but|while|because|so)\s+", text):
        span_words: list[tuple[str, bool, str]] = []  # (stem, negated, raw word before it)
        heads: list[int] = []  # where each clause of the span starts: a list's items
        for clause in re.split(r",|\s+(?:and|or)\s+", span):
            heads.append(len(span_words))
            left = 0
            previous = ""
            for raw in _WORD.findall(clause):
                word = raw.lower().replace("’", "'")
                if word in _NEGATORS or word.endswith("n't"):
                    left = _SCOPE
                    continue  # "are not matched" is a passive too
                unword = _UN.fullmatch(word)
                if word in _ANTONYMS or unword:
                    # "never expire" vs "expires": the antonym carries the negation itself
                    stem = _stem(_ANTONYMS[word] if word in _ANTONYMS else unword.group(1))  # type: ignore[union-attr]
                    is_negated = not left
                elif word in _STOP or word in _NUMBER_WORDS:
                    previous = word
                    continue
                else:
                    stem = _stem(_SYNONYMS.get(word, word))
                    is_negated = bool(left)
                (negated if is_negated else asserted).add(stem)
                left = max(left - 1, 0)
                passive = previous if word.endswith(("ed", "en")) else ""
                span_words.append((stem, is_negated, passive))
                previous = word
        for index, (stem, is_negated, before) in enumerate(span_words):
            # the next few words, and the head of each list item after it: "do not match
            # auction sites, ..., or prices during Black Friday" acts on prices too
            after = {w for w, _, _ in span_words[index + 1 : index + 4]}
            after |= {span_words[h][0] for h in heads if index < h < len(span_words)}
            if before in _PASSIVE:
                after |= {w for w, _, _ in span_words[max(index - 2, 0) : index]}
            objects.setdefault((stem, is_negated), set()).update(after)
    return asserted, negated, objects


def content_words(text: str) -> set[str]:
    """Stems of the words that carry content (no stop words, negators or figures)."""
    asserted, negated, _ = _polarity(text)
    return asserted | negated


def entities_in(text: str, skip_first: bool = True) -> set[str]:
    """Names (capitalised, after the first word unless told), product codes (4S) and days."""
    found: set[str] = set()
    for index, raw in enumerate(_WORD.findall(text)):
        low = raw.lower().rstrip("s") if raw.lower().rstrip("s") in _DAYS else raw.lower()
        code = re.fullmatch(r"\d+[a-z]+", low) and not re.fullmatch(r"\d+(?:st|nd|rd|th)", low)
        name = (index > 0 or not skip_first) and raw[0].isupper() and low not in _NOT_NAMES
        if low in _DAYS or code or name:
            found.add(low)
    return found


def answer_sentences(answer: str) -> list[str]:
    """The claims of an answer: its sentences and list items, short fillers dropped."""
    sentences: list[str] = []
    for line in answer.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)  # list bullets are not words
        sentences.extend(split_sentences(line))
    long_ones = [s for s in sentences if len(s.split()) >= _MIN_WORDS]
    return long_ones or sentences


def _clauses(sentence: str) -> list[str]:
    """Clauses of a long sentence: an answer often restates just one of them."""
    if len(sentence.split()) < 2 * _CLAUSE_WORDS:
        return []
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(sentence)]
    return [p for p in parts if len(p.split()) >= _CLAUSE_WORDS] if len(parts) > 1 else []


def _blocks(text: str) -> list[tuple[str, str, str]]:
    """(heading, block, question) triples: paragraphs, list items and table rows on their own.

    The heading is the last heading or "...:" line above the block: "What is not covered"
    negates the list below it. The question is the "...?" line an FAQ answer answers.
    """
    blocks: list[tuple[str, str, str]] = []
    heading = ""
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if len(lines) == 1 and (lines[0].startswith("#") or lines[0].endswith(":")):
            heading = lines[0].lstrip("#").strip()
            blocks.append((heading, heading, ""))
            continue
        question = lines[0].strip("*_ ") if lines else ""
        if len(lines) > 1 and question.endswith("?"):
            blocks.append((heading, question, ""))
            lines = lines[1:]
        else:
            question = ""
        # list items, and table rows: several lines none of which ends a sentence (an HTML
        # table comes out of the loader as one line per row)
        rows = len(lines) > 1 and not any(re.search(r"[.!?:]\W*$", line) for line in lines)
        if rows or any(re.match(r"(?:[-*•|]|\d+[.)])\s*", line) for line in lines):
            blocks.extend((heading, line, question) for line in lines)
        elif lines:
            blocks.append((heading, " ".join(lines), question))
    return blocks


# "Beacon 300", "Drift -5": a figure that is part of a name, not a quantity
_NAME_NUMBER = re.compile(r"\b([A-Z][A-Za-z]+)\s+-?\d+\b")


def _quantities(text: str) -> set[str]:
    """The numbers of a text that are quantities, not parts of a product's name."""
    kept = _NAME_NUMBER.sub(lambda m: m.group(0) if m.group(1).lower() in _DAYS else " ", text)
    return numbers_in(kept)


_COMPARATORS = {"below", "above", "over", "under", "least", "most", "more", "less", "up", "down"}
_SEGMENT = re.compile(r"[,;:()]\s*|\s+and\s+|\s+or\s+")


def _with_units(text: str) -> set[tuple[str, str]]:
    """(figure, the word after it) pairs: '3,000 mm' -> ('3000', 'mm')."""
    pairs = set()
    for number, unit in re.findall(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*([A-Za-z°%]+)", text):
        pairs.add((number.replace(",", ""), _stem(unit)))
    return pairs


def _number_labels(text: str) -> dict[str, set[str]]:
    """Figure -> the words of its own clause that no other figure's clause has.

    "comfort 0 °C, limit -5 °C": 0 is the comfort rating, 5 the limit.
    """
    words: dict[str, set[str]] = {}
    for segment in _SEGMENT.split(text):
        figures = _quantities(segment)
        if len(figures) == 1:
            labels = content_words(segment) - _COMPARATORS  # "below $75" names no subject
            words.setdefault(next(iter(figures)), set()).update(labels)
    return {n: w - set().union(*(v for m, v in words.items() if m != n)) for n, w in words.items()}


def _swapped_figure(claim: str, source_text: str) -> str:
    """A figure of the claim tied to words the chunk sentence gives another figure, or ''."""
    # its unit first: "135 g" where the chunk says "215 g ... 135 cm"
    units = _with_units(source_text)
    for figure, unit in _with_units(claim):
        own = {u for n, u in units if n == figure}
        if own and unit not in own and any(u == unit for _, u in units):
            return f"gives {figure} {unit} where the chunk has {figure} {sorted(own)[0]}"
    labels = _number_labels(source_text)
    if len(labels) < 2:
        return ""
    for segment in _SEGMENT.split(claim):
        figures = _quantities(segment)
        if len(figures) != 1:
            continue
        figure, words = next(iter(figures)), content_words(segment)
        if figure in labels and not labels[figure] & words:
            for other, other_words in labels.items():
                if other != figure and other_words & words:
                    return f"gives {figure} for what the chunk gives {other}"
    return ""


def _claim_parts(sentence: str) -> list[str]:
    """The clauses of an answer sentence that each state something checkable."""
    claim = _LEAD.sub("", sentence)
    parts = [p.strip() for p in re.split(r";\s+|,\s+(?:but|while|whereas)\s+", claim)]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts if len(parts) > 1 else [claim]


@dataclass
class _Sentence:
    """A chunk sentence with what the rules compare against."""

    text: str
    numbers: set[str]
    asserted: set[str]
    negated: set[str]
    context_entities: set[str]  # its paragraph's and its document title's
    context_negated: set[str]  # its paragraph's and its heading's
    context_words: set[str] = field(default_factory=set)  # its own and its paragraph's
    denied_question: set[str] = field(default_factory=set)  # an FAQ question answered "No"
    about: set[str] = field(default_factory=set)  # context_words and its document title's


@dataclass
class SentenceCheck:
    """How one answer sentence fared: its best similarity, verdict and why."""

    sentence: str
    similarity: float
    supported: bool
    reason: str


@dataclass
class Grounding:
    """Embeds the chunks once (whole, per sentence, per clause) and scores many answers.

    `check_consistency=False` gives the earlier similarity-and-numbers score (the baseline of
    bench/bench_groundedness.py).
    """

    chunk_texts: Sequence[str]
    embedder: Embedder | None = None
    check_consistency: bool = True
    sentences: list[_Sentence] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.embedder is None:
            from playground.rag.embeddings import get_embedder

            self.embedder = get_embedder()
        pieces: list[str] = []
        owner: list[int] = []  # piece -> index into self.sentences, -1 for a whole chunk
        self.piece_texts: list[str] = []
        texts = [t for t in self.chunk_texts if t.strip()]
        titles = [_title(t) for t in texts]
        for i, text in enumerate(texts):
            # A chunk cut from the middle of a document has no title; when the chunk before
            # it was retrieved too, the overlap the chunker repeats shows whose it is.
            head = " ".join(text.split())[:60]
            if not titles[i] and len(head) >= 30:
                for j, other in enumerate(texts):
                    if j != i and titles[j] and head in " ".join(other.split()):
                        titles[i] = titles[j]
                        break
        for text, title in zip(texts, titles, strict=True):
            # A whole chunk dilutes one matching sentence; its sentences alone miss
            # claims spread over two of them. Compare against both.
            pieces.append(text)
            owner.append(-1)
            self.piece_texts.append(text)
            # a product's name and model number sit in the title, not in every sentence
            title_entities = entities_in(title, skip_first=False)
            title_numbers = numbers_in(title)
            for heading, block, question in _blocks(text):
                entities = entities_in(block, skip_first=False) | title_entities
                block_negated = polarity(block)[1] | polarity(heading)[1]
                block_words = content_words(block) | content_words(question)
                denied: set[str] = set()
                if question and re.match(r"no\b", block, re.IGNORECASE):
                    # "Do your filters remove viruses? No.": the answer denies the question
                    denied = content_words(re.sub(r"^\W*\w+\s+", "", question))
                    block_negated |= denied
                for sentence in split_sentences(block):
                    asserted, negated = polarity(sentence)
                    self.sentences.append(
                        _Sentence(
                            sentence,
                            numbers_in(sentence) | title_numbers,
                            asserted,
                            negated | polarity(heading)[1],
                            entities,
                            block_negated,
                            block_words,
                            denied,
                            block_words | content_words(title),
                        )
                    )
                    index = len(self.sentences) - 1
                    # an FAQ answer's subject is in its question: "By phone, Monday to ..."
                    extra = [f"{question} {sentence}"] if question else []
                    for piece in [sentence, *_clauses(sentence), *extra]:
                        pieces.append(piece)
                        owner.append(index)
                        self.piece_texts.append(piece)
        # Embeddings barely see digits: "25 feet of rain" sits as close to a chunk as
        # "3000 mm"; a number the chunks never state is an invented detail.
        self.numbers: set[str] = set().union(*(numbers_in(t) for t in self.chunk_texts))
        self.owner = owner
        self.vectors = self.embedder.encode(pieces) if pieces else None

    def check(self, answer: str, threshold: float = GROUNDED_THRESHOLD) -> list[SentenceCheck]:
        """One SentenceCheck per claim of the answer (empty for an empty answer)."""
        import numpy as np

        sentences = answer_sentences(answer)
        if not sentences or self.vectors is None or self.embedder is None:
            return []
        parts = [_claim_parts(s) if self.check_consistency else [] for s in sentences]
        texts = sentences + [p for group in parts for p in group]
        similarity = self.embedder.encode(texts) @ self.vectors.T
        checks = []
        offset = len(sentences)
        for i, sentence in enumerate(sentences):
            best = float(np.max(similarity[i]))
            rows = similarity[offset : offset + len(parts[i])]
            offset += len(parts[i])
            checks.append(self._check_one(sentence, best, parts[i], rows, threshold))
        return checks

    def score(self, answer: str, threshold: float = GROUNDED_THRESHOLD) -> float | None:
        """Share of the answer's sentences that are supported; None for an empty answer."""
        checks = self.check(answer, threshold)
        if not checks:
            return None
        return round(sum(c.supported for c in checks) / len(checks), 3)

    def _check_one(
        self, sentence: str, best: float, parts: list[str], rows: Any, threshold: float
    ) -> SentenceCheck:
        import numpy as np

        if best < threshold:
            return SentenceCheck(sentence, best, False, f"no chunk says this (best {best:.2f})")
        if not self.check_consistency:
            ok = numbers_in(sentence) <= self.numbers
            return SentenceCheck(sentence, best, ok, "" if ok else "states a number not given")
        for part, row in zip(parts, rows, strict=True):
            # Each clause is held to the chunk sentences it restates best: the best one and
            # any within a hair of it (MiniLM barely tells "8 pm" from "7 pm" or Denver from
            # Boise, so the rules choose among near-ties).
            order, seen = [], set()
            for p in np.argsort(-row):
                if self.owner[p] >= 0 and self.owner[p] not in seen:  # one piece per sentence
                    seen.add(self.owner[p])
                    order.append(p)
                if len(order) == _CANDIDATES:
                    break
            if not order:
                continue
            reason = self._judge(part, order, row)
            if reason:
                return SentenceCheck(sentence, best, False, reason)
        return SentenceCheck(sentence, best, True, "")

    def _judge(self, claim: str, order: list[int], row: Any) -> str:
        """'' when the claim agrees with the chunk sentence it restates, else why not.

        The rules first pick which sentence that is: the closest one whose figures and names
        fit the claim (MiniLM barely tells "8 pm" from "7 pm" or Denver from Boise). Its
        negations then decide, and a flipped negation is never excused by another sentence.
        """
        top = float(row[order[0]])
        words = content_words(_LEAD.sub("", claim))
        # Of the near ties, the claim is held to those sharing most of its words: "30 days"
        # of a returns rule does not ground a price-match claim, and "final-sale items can be
        # returned within 60 days" restates the final-sale rule, not the unused-items one.
        near = [p for p in order if float(row[p]) >= top - _NEAR_TIE]
        # ... and, on a tie, the ones about the claim's subject ("gas canisters can be ...")
        subject = _subject(claim)
        shared = {
            p: (
                len(words & self.sentences[self.owner[p]].context_words),
                bool(subject) and subject <= self.sentences[self.owner[p]].about,
            )
            for p in near
        }
        most = max(shared.values())
        mismatches: list[str] = []
        verdicts: list[str] = []
        said = False  # some near sentence agrees with the claim
        for piece in near:
            source = self.sentences[self.owner[piece]]
            mismatch = _mismatch(claim, source, source.numbers)
            if mismatch:
                if shared[piece] == most:
                    mismatches.append(mismatch)
                continue
            reason, certain = _contradiction(claim, source, self.piece_texts[piece])
            if certain:  # a flip on the very thing the claim states is never excused
                return reason
            if shared[piece] == most:
                verdicts.append(reason)
            said = said or not reason
        if verdicts:
            # a negation the closest sentences leave unsaid may be said by another near one
            # ("... but not viruses" and "It does NOT remove viruses")
            if "" in verdicts or (all(v.startswith("denies") for v in verdicts) and said):
                return ""
            return verdicts[0]
        # A claim may join figures of neighbouring sentences ("12 months ... 24 months"): the
        # closest sentence states some of them, the other candidates the rest.
        source = self.sentences[self.owner[order[0]]]
        stated = numbers_in(claim)
        figures = set().union(*(self.sentences[self.owner[p]].numbers for p in order))
        # (clauses of their own: "$10 per day or $38 per week" is one row's figures)
        joined = len(stated) >= 2 and bool(_quantities(claim) & source.numbers)
        joined = joined and len(_clauses(claim)) > 1
        # ... or join clauses, each figure with its unit as a candidate states it: "the fly is
        # rated to 3,000 mm and all seams are taped"
        units = set().union(*(_with_units(self.sentences[self.owner[p]].text) for p in order))
        joined = joined or (
            len(_clauses(claim)) > 1
            and not stated & source.numbers
            and {n for n, _ in _with_units(claim)} == stated
            and _with_units(claim) <= units
        )
        if joined and not _mismatch(claim, source, figures):
            return _contradiction(claim, source, self.piece_texts[order[0]])[0]
        return mismatches[0]


# "Gas canisters can be returned": the words before the verb name what a claim is about
_VERB = re.compile(
    r"\b(?:is|are|was|were|can|cannot|can't|could|must|should|will|won't|may|do|does|don't|"
    r"doesn't|has|have|had|never|isn't|aren't)\b",
    re.IGNORECASE,
)


def _subject(claim: str) -> set[str]:
    """Content stems before the claim's first verb, empty when it has none to find."""
    claim = _LEAD.sub("", claim)
    found = _VERB.search(claim)
    return content_words(claim[: found.start()]) if found and found.start() > 0 else set()


def _mismatch(claim: str, source: _Sentence, figures: set[str]) -> str:
    """Numbers or names of the claim that the chunk sentence (and its context) lacks."""
    quoted = _short(source.text)
    extra = numbers_in(claim) - figures
    if extra:
        return f"states {', '.join(sorted(extra))} where the chunk says '{quoted}'"
    missing = entities_in(_LEAD.sub("", claim)) - source.context_entities
    if missing:
        return f"names '{sorted(missing)[0]}' where the chunk says '{quoted}'"
    swapped = _swapped_figure(claim, source.text)
    if swapped:
        return f"{swapped} in '{quoted}'"
    unbounded = content_words(claim) & _UNBOUNDED_STEMS - content_words(source.text)
    if unbounded and _quantities(source.text) and not _quantities(claim):
        word = next(w for w in _WORD.findall(claim) if _stem(w) in unbounded)
        return f"says '{word}' where the chunk gives a figure: '{quoted}'"
    return ""


def _contradiction(claim: str, source: _Sentence, piece_text: str) -> tuple[str, bool]:
    """(why, certain): a negation of the claim that the chunk sentence it restates flips.

    Certain when the flipped word acts on the same thing on both sides ("removes viruses"
    against "does NOT remove viruses"); a flip is excused when both name different things
    ("does not remove viruses" against "removes bacteria").
    """
    quoted = _short(source.text)
    asserted, negated, claim_objects = _polarity(_LEAD.sub("", claim))
    asserted, negated = asserted - negated, negated - asserted
    if source.denied_question and source.denied_question <= asserted:
        return f"says yes where the chunk answers no to '{_short(source.text)}'", True
    if piece_text not in source.text:  # an FAQ answer embedded with its question
        piece_text = source.text
    said, denied, objects = _polarity(piece_text)
    for key, after in _polarity(source.text)[2].items():
        objects.setdefault(key, set()).update(after)
    piece_denied = bool(denied)
    # a word denied anywhere in the sentence ("we do not match A, B or C") counts as denied
    # and one asserted anywhere as said ("the seams are not taped, so ..." restates a clause)
    plain_denied = (denied | (source.negated - source.asserted)) - said
    plain_said = (said | (source.asserted - source.negated)) - plain_denied
    both = (said | source.asserted) & (denied | source.negated)
    flipped: dict[str, bool] = {}  # word -> certain
    elliptic = {_stem(w) for w in _ELLIPTIC.findall(claim)}
    for word, is_negated in [(w, False) for w in asserted] + [(w, True) for w in negated]:
        mine = claim_objects.get((word, is_negated), set())
        theirs = objects.get((word, not is_negated), set())
        agreeing = objects.get((word, is_negated), set())
        if word in both:
            # said and denied of different things: what the claim's word acts on decides
            # ("we match the price only; shipping costs are not matched")
            if mine & (theirs - agreeing):
                flipped[word] = True
            continue
        if word not in (plain_said if is_negated else plain_denied):
            continue
        if mine and theirs and not mine & theirs:
            continue  # "does not remove viruses" against "removes bacteria"
        if is_negated and theirs and word in elliptic:
            continue  # "... but not viruses" against "where viruses are a risk"
        flipped[word] = bool(mine & theirs)
    if flipped:
        word = sorted(flipped)[0]
        return f"contradicts '{quoted}' on '{word}'", any(flipped.values())
    # "shipping costs are not." negates what it elides: the claim does state a negation
    stated_negation = any(
        w.lower() in _NEGATORS or w.lower().endswith("n't") for w in _WORD.findall(claim)
    )
    if (
        piece_denied
        and denied & asserted  # "wash by hand" for "... without an agitator" drops nothing
        and not negated
        and not stated_negation
        and not re.search(r"[,;:]", piece_text.rstrip("."))
    ):
        # "Do not cook inside the vestibule" restated without its "not"
        return f"drops the negation of '{quoted}'", False
    if negated and not negated & (source.negated | source.context_negated):
        return f"denies '{sorted(negated)[0]}' where the chunk says '{quoted}'", False
    return "", False


def _title(text: str) -> str:
    """The document title a chunk starts with ("# Trail Tent 2P", "PRIVACY SUMMARY"), or ''."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    is_title = first.startswith("#") or (len(first) < 80 and not first.endswith((".", "?")))
    return first if is_title and not first.startswith(("-", "|", "*")) else ""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def groundedness_score(
    answer: str, chunk_texts: Sequence[str], threshold: float = GROUNDED_THRESHOLD
) -> float | None:
    """Share of supported answer sentences, or None without an answer or chunks."""
    if not answer.strip() or not any(t.strip() for t in chunk_texts):
        return None
    return Grounding(chunk_texts).score(answer, threshold)
