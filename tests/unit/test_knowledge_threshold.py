"""Why `knowledge.threshold` defaults to 0.5: paraphrases of a saved question score well above
it, unrelated support questions well below, with the sandbox's embeddings (what its model
server answers `/embeddings` with: a signed, hashed bag of words, so paraphrases that share
their content words score high and others near 0) and with the lexical score used without an
embedding model (the same cosine, on word sets). Real embedding models put support paraphrases
around 0.7-0.9 and unrelated support questions around 0.2-0.4, so 0.5 is the middle there too.

The searches themselves run on both databases: every paraphrase finds its entry, and only its
entry; no unrelated question finds any."""

from __future__ import annotations

import pytest

from bot.config import KnowledgeSettings
from sandbox.hash_embeddings import embed
from storage import knowledge
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_async
from storage.models import KnowledgeEntry, utcnow

DEFAULT = KnowledgeSettings().threshold

# A saved question, and how other customers ask the same thing.
PARAPHRASES = [
    ("How do I export my invoices as PDF files?",
     ["Can I export invoices to PDF?", "Is it possible to export my invoices to PDF?"]),
    ("How do I change the email address on my account?",
     ["Can I change my account email address?"]),
    ("Do you ship orders to Canada?", ["Can you ship my order to Canada?"]),
    ("How long does a refund take to arrive?", ["How long until my refund arrives?"]),
    ("Can I add more users to my team plan?", ["How do I add users to our team plan?"]),
    ("Where do I find my API key?", ["Where can I find the API key?"]),
    ("Is there a discount for nonprofits?", ["Do nonprofits get a discount?"]),
]
UNRELATED = [
    "Do you have an Android app for tablets?", "My password reset link expired",
    "What are your opening hours?", "Can I pay by bank transfer?",
    "The dashboard is slow today", "How do I delete my account?",
    "Do you support single sign-on with Okta?",
]


def embedded(a: str, b: str) -> float:
    return knowledge.cosine(embed(a), embed(b))


@pytest.mark.parametrize("score", [embedded, knowledge.lexical_score],
                         ids=["embeddings", "lexical"])
def test_the_default_threshold_separates_paraphrases_from_unrelated_questions(score):
    paraphrase_scores = [score(saved, asked) for saved, askeds in PARAPHRASES
                         for asked in askeds]
    unrelated_scores = [score(saved, other) for saved, _ in PARAPHRASES for other in UNRELATED]
    assert min(paraphrase_scores) >= DEFAULT + 0.15
    assert max(unrelated_scores) <= DEFAULT - 0.1
    assert DEFAULT == 0.5


def test_the_lexical_stem_matches_word_forms():
    assert {knowledge.stem(w) for w in ("invoices", "invoice", "invoiced")} == {"invoic"}
    assert {knowledge.stem(w) for w in ("shipping", "ships", "ship")} == {"ship"}
    assert knowledge.lexical_score("Refunds?", "refund") == 1.0
    assert knowledge.lexical_score("the a of", "anything") == 0.0


@pytest.mark.parametrize("mode", ["embeddings", "lexical"])
async def test_searches_find_the_paraphrased_entry_and_nothing_for_unrelated(database_url,
                                                                             mode):
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            ids = {}
            for index, (question, _) in enumerate(PARAPHRASES):
                entry = KnowledgeEntry(question=question, answer=f"answer {index}",
                                       status="saved", source_key=f"s{index}",
                                       embedding=embed(question), embedding_model="m")
                session.add(entry)
                await session.flush()
                ids[question] = entry.id
            # Neither a proposal nor an expired entry is ever found.
            session.add(KnowledgeEntry(question="Can I export invoices to PDF?", answer="x",
                                       status="proposed", source_key="p"))
            session.add(KnowledgeEntry(question="Can I export invoices to PDF?", answer="x",
                                       status="saved", source_key="e",
                                       expires_at=utcnow().replace(year=2000)))
            await session.commit()

        async def search(text: str) -> list[knowledge.Match]:
            async with sessions() as session:
                if mode == "lexical":
                    return await knowledge.closest_by_words(session, text, threshold=DEFAULT,
                                                            limit=3)
                return await knowledge.closest_by_embedding(session, embed(text), model="m",
                                                            threshold=DEFAULT, limit=3)

        for question, askeds in PARAPHRASES:
            for asked in askeds:
                found = await search(asked)
                assert [m.entry.id for m in found] == [ids[question]], asked
        for other in UNRELATED:
            assert await search(other) == [], other
    finally:
        await engine.dispose()
