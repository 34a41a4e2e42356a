"""Groundedness sees contradictions: flipped negations, changed numbers and swapped names."""

from __future__ import annotations

import pytest

from playground.rag.groundedness import Grounding, entities_in, numbers_in, polarity

HOURS = (
    "Denver, Colorado - 1420 Wynkoop Street. Monday to Saturday 10 am to 8 pm, Sunday 11 am "
    "to 6 pm.\n\nBoise, Idaho - 301 W Main Street. Monday to Saturday 10 am to 7 pm, closed on "
    "Sundays.\n\nFree clinics: on the first Tuesday of each month, each store hosts an evening "
    "clinic at 6:30 pm."
)
RETURNS = (
    "# Returns policy\n\n- Unused items in their original packaging can be returned within 60 "
    "days of delivery for a full refund.\n- Final-sale items cannot be returned."
)
TENT = (
    "# Trail Tent 2P: owner's manual\n\nPacked weight is 1.6 kg including poles and stakes. "
    "All seams are factory taped, so the tent does not need seam sealing."
)
STOVE = "Never use the stove inside a tent, vestibule or car: risk of carbon monoxide poisoning."


@pytest.fixture(scope="module")
def chunks() -> Grounding:
    """The chunks embedded once (real MiniLM) for every case below."""
    return Grounding([HOURS, RETURNS, TENT, STOVE])


@pytest.mark.parametrize(
    "answer",
    [
        "The Boise store is closed on Sundays.",
        "Denver is open Monday to Saturday from 10 am to 8 pm.",
        "Unused items can be returned within 60 days of delivery for a full refund.",
        "The Trail Tent 2P weighs 1.6 kg including poles and stakes.",
        "The seams are factory taped, so the tent does not need seam sealing.",
        "No, never use the stove inside a tent or vestibule.",
        "Each store hosts an evening clinic on the first Tuesday of each month.",
    ],
)
def test_faithful_restatements_stay_grounded(chunks: Grounding, answer: str) -> None:
    assert chunks.score(answer) == 1.0, chunks.check(answer)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("The Boise store is open on Sundays.", "contradicts"),  # the example
        ("Unused items can be returned within 90 days of delivery.", "states 90"),
        ("The Trail Tent 2P weighs 2.6 kg including poles and stakes.", "states 2.6"),
        ("The seams are not taped, so the tent needs seam sealing.", "contradicts"),
        ("You can use the stove inside the vestibule.", "contradicts"),
        ("Final-sale items can be returned.", "contradicts"),
        ("Each store hosts an evening clinic on the first Thursday of each month.", "thursday"),
    ],
)
def test_contradictions_are_not_grounded(chunks: Grounding, answer: str, why: str) -> None:
    checks = chunks.check(answer)
    assert chunks.score(answer) == 0.0, checks
    assert why in checks[0].reason and "\n" not in checks[0].reason


def test_only_the_contradicting_sentence_counts_against_the_answer(chunks: Grounding) -> None:
    answer = "Unused items can be returned within 60 days. Final-sale items can be returned."
    assert chunks.score(answer) == 0.5


def test_the_similarity_only_baseline_misses_what_the_rules_catch(chunks: Grounding) -> None:
    answer = "The Boise store is open on Sundays."
    chunks.check_consistency = False
    try:
        assert chunks.score(answer) == 1.0  # the earlier score called this grounded
    finally:
        chunks.check_consistency = True
    assert chunks.score(answer) == 0.0


def test_rules_read_numbers_negations_and_names() -> None:
    assert numbers_in("about five minutes, 3,000 mm, $6.95") == {"5", "3000", "6.95"}
    assert numbers_in("the Summit 4S and Trail Tent 2P") == set()
    assert "open" in polarity("closed on Sundays")[1]
    assert "tap" in polarity("the seams are not taped")[1]
    assert "tap" in polarity("the seams are taped")[0]
    assert {"boise", "sunday", "4s"} <= entities_in("The Boise store and the 4S are shut Sundays")


def test_a_citation_marker_is_not_a_number_the_chunks_must_state() -> None:
    """The embedded model often starts with "[1]" (the chunk it used): that is no figure."""
    from playground.rag.groundedness import numbers_in

    assert numbers_in("[1] Yes, the tent is waterproof [2, 3].") == set()
    assert numbers_in("[1] It weighs 1.6 kg.") == {"1.6"}


def test_an_answer_citing_its_chunk_is_still_grounded() -> None:
    from playground.rag.groundedness import groundedness_score

    chunk = (
        "# Trail Tent 2P\n\nAll fly and floor seams are factory taped, so the tent is "
        "waterproof out of the box and does not need seam sealing."
    )
    assert groundedness_score("[1] Yes, the trail tent is waterproof.", [chunk]) == 1.0


# Chunks cut from the sample corpus, for the rules added to see contradictions worded in
# other ways (bench/bench_groundedness.py measures them on the labelled sets).
FAQ = (
    "**Do you sell gift cards?**\nYes, digital gift cards from $25 to $500. They never expire "
    "and can be used online or in any store.\n\n**Do your filters remove viruses?**\nNo. The "
    "AquaPure filter removes bacteria and protozoa; use chemical treatment as well where "
    "viruses are a risk."
)
FILTER = (
    "# AquaPure squeeze filter: instructions\n\nThe AquaPure is a 0.1-micron hollow-fiber "
    "filter that removes 99.9999% of bacteria and 99.9% of protozoa. It does NOT remove "
    "viruses, chemicals or heavy metals.\n\n## Freezing\n\nDo not let a wet filter freeze: ice "
    "damages the hollow fibers and the filter can no longer be trusted, even if it looks fine."
)
RULES = (
    "# Returns and exchanges policy\n\n## Time limits\n\n- Unused items in their original "
    "condition and packaging can be returned within 60 days of delivery for a full refund.\n"
    '- Final-sale items (marked "Final sale" on the product page, including clearance and '
    "custom-embroidered items) cannot be returned.\n- Gas canisters and opened food items "
    "cannot be returned for safety and hygiene reasons."
)
DRIFT = (
    "DRIFT -5 DOWN SLEEPING BAG - CARE AND USE\n\nTemperature ratings (EN/ISO 23537): comfort "
    "0 °C, limit -5 °C, extreme -18 °C.\n\nFill: 650 g of 750 fill-power down. Total weight "
    "is 1.05 kg for the Regular size (fits people up to 183 cm) and 1.12 kg for the Long size "
    "(up to 198 cm).\n\nStorage: never store the bag compressed in its stuff sack. Keep it "
    "loose in the large cotton storage sack supplied, or hang it in a dry closet. Long "
    "compression breaks down the down clusters and the bag loses warmth."
)
# the next chunk of the same file: it starts with the overlap the chunker repeats
DRIFT_NEXT = (
    "Long compression breaks down the down clusters and the bag loses warmth.\n\nWashing: wash "
    "by hand or in a front-loading machine on a gentle cycle at 30 °C. Never dry-clean the bag."
)
REPAIRS = (
    "Trail Fix repair program\n\nCommon repairs and prices\n\nTent pole section "
    "replacement$15 per section\nZipper slider replacement$20\nFull zipper replacement$45\n"
    "Fabric patch (tear under 10 cm)$25\n\nHow it works\n\nClean and dry the item before you "
    "send it; we return dirty items unrepaired."
)
POLES = (
    "CARBON TREKKING POLES - USER GUIDE\n\nOur carbon trekking poles weigh 215 g each and "
    "adjust from 105 to 135 cm with an aluminum flick-lock clamp."
)
WARRANTY = (
    "# Warranty\n\n## Lifetime warranty\n\nAll products are guaranteed against defects for "
    "the lifetime of the product.\n\n## Electronics\n\nElectronics (such as the Beacon 300 "
    "headlamp and its battery) and stove igniters are covered for 2 years from the date of "
    "purchase."
)
PRICE_MATCH = (
    "# Price match promise\n\n- The request must be made within 14 days of your purchase.\n"
    "- We match the price only; shipping costs are not matched.\n\nUse a technical wash, not "
    "regular detergent or fabric softener, which ruin the water repellency.\n\nPro purchases "
    "are limited to two of the same item per year and cannot be combined with other discounts "
    "or price matching."
)
SHIPPING = (
    "SHIPPING POLICY\n\nStandard shipping is free on orders of $75 or more within the "
    "contiguous United States. Below $75, standard shipping costs $5.95."
)


@pytest.fixture(scope="module")
def more() -> dict[str, Grounding]:
    """One scorer per chunk set (real MiniLM), embedded once for the cases below."""
    return {
        "faq": Grounding([FAQ, FILTER]),
        "filter": Grounding([FILTER]),
        "returns": Grounding([RULES]),
        "drift": Grounding([DRIFT]),
        "drift-next": Grounding([DRIFT_NEXT, DRIFT]),
        "repairs": Grounding([REPAIRS]),
        "poles": Grounding([POLES]),
        "warranty": Grounding([WARRANTY]),
        "price": Grounding([PRICE_MATCH]),
        "shipping": Grounding([SHIPPING]),
        "tent": Grounding([TENT.replace("Packed", "The fly is rated to 3,000 mm. Packed")]),
    }


@pytest.mark.parametrize(
    ("scorer", "answer"),
    [
        # an FAQ "No." answers its own question
        ("faq", "Yes, the AquaPure filter removes viruses as well as bacteria and protozoa."),
        # a flip in any near-tie sentence, not only the first that fits the figures
        ("filter", "The AquaPure filter removes viruses, chemicals and heavy metals."),
        # paraphrased negation: "can no longer be trusted" denies "safe"
        ("faq", "A frozen filter is still safe to use as long as it looks fine."),
        # the near tie that fits "60 days" is about unused items, not final-sale ones
        ("returns", "Final-sale items such as clearance items can be returned within 60 days."),
        ("returns", "Gas canisters can be returned within 60 days of delivery."),
        # figures swapped inside one sentence
        ("drift", "The Drift -5 has a comfort rating of -5 °C and a limit rating of -18 °C."),
        ("drift", "Total weight is 1.12 kg for the Regular size and 1.05 kg for the Long size."),
        # a figure with another figure's unit
        ("poles", "The carbon trekking poles weigh 135 g each."),
        # an HTML table's rows, one line each
        ("repairs", "A full zipper replacement costs $20."),
        # "unrepaired" is "not repaired"
        ("repairs", "Dirty items are cleaned and repaired as usual."),
        # "lifetime" where the chunk gives a figure
        ("warranty", "The Beacon 300 headlamp is covered by the lifetime warranty."),
        # said of one thing ("the price"), denied of another ("shipping costs")
        ("price", "Yes, shipping costs are matched along with the price."),
    ],
)
def test_contradictions_the_earlier_rules_missed(
    more: dict[str, Grounding], scorer: str, answer: str
) -> None:
    assert more[scorer].score(answer) == 0.0, more[scorer].check(answer)


@pytest.mark.parametrize(
    ("scorer", "answer"),
    [
        # "does not remove viruses" is no flip of "removes bacteria"
        ("faq", "No, the AquaPure filter does not remove viruses."),
        ("faq", "Digital gift cards never expire and can be used online or in any store."),
        ("returns", "Unused items can be returned within 60 days of delivery."),
        ("returns", "Final-sale items, such as clearance items, cannot be returned."),
        ("drift", "The Drift -5 has a comfort rating of 0 °C and a limit rating of -5 °C."),
        ("drift", "Total weight is 1.05 kg for the Regular size and 1.12 kg for the Long size."),
        ("poles", "Each carbon trekking pole weighs 215 g."),
        ("repairs", "A full zipper replacement costs $45."),
        ("warranty", "The Beacon 300 headlamp is covered for 2 years."),
        # an elliptical "are not." still states the negation
        ("price", "No, only the price is matched; shipping costs are not."),
        # "rather than" says what "not" says
        ("price", "Use a technical wash rather than regular detergent or fabric softener."),
        # an elliptical "but not viruses" denies what "removes" acts on, not viruses at large
        ("faq", "It removes bacteria and protozoa but not viruses, so also treat the water."),
        # "not keep it compressed" is no flip of "keep it loose"
        ("drift", "No, don't keep it compressed in the stuff sack."),
        ("price", "Pro purchases aren't combinable with other discounts or price matching."),
        # "costs nothing" is "free", and "below $75" names no subject of $75
        ("shipping", "Standard shipping costs nothing on orders of $75 or more in the US; "
         "below that it is $5.95."),
        # the chunk's subject is the title of the chunk it overlaps
        ("drift-next", "No, never dry-clean the Drift bag."),
        # figures of one clause, negation of the other
        ("tent", "Yes, the fly is rated to 3,000 mm and the seams are factory taped, so it "
         "does not need seam sealing."),
    ],
)  # fmt: skip
def test_faithful_paraphrases_stay_grounded(
    more: dict[str, Grounding], scorer: str, answer: str
) -> None:
    assert more[scorer].score(answer) == 1.0, more[scorer].check(answer)
