"""Seeded synthetic corpora for the offline default. Each is learnable by a small model.

- synthetic-vizwiz: questions in the style blind users ask about their photos (templates with slots).
- synthetic-sentiment: labelled sentences whose polarity words decide the label (5% label noise).
- synthetic-kb: passages about invented entities + questions answered in exactly one passage.
"""
from __future__ import annotations

import random

OBJECTS = ["shirt", "can", "box", "bottle", "bill", "label", "screen", "package", "jar", "card", "sweater",
           "medicine", "remote", "envelope", "mug", "book", "bag", "cereal box", "soup can", "pill bottle"]
COLORS_Q = ["what color is this {o}?", "what colour is the {o}?", "can you tell me the color of this {o}?"]
VIZWIZ_TEMPLATES = [
    "what is this?", "what is in this {o}?", "what does this {o} say?", "can you read the {o} for me?",
    "what kind of {o} is this?", "is this {o} {c}?", "how much is this {o}?", "what is the expiration date on this {o}?",
    "what is written on the {o}?", "is the {o} open or closed?", "what brand is this {o}?",
    "what are the cooking instructions on this {o}?", "how many {o}s are there?", "is there anything in this {o}?",
    "which way is the {o} facing?", "what is the temperature on the {o}?", "please tell me what this {o} is.",
] + COLORS_Q
COLORS = ["red", "blue", "green", "black", "white", "yellow", "gray", "pink", "brown", "purple", "orange"]
FILLERS = ["", "", "", "please ", "hi, ", "thank you. ", "sorry, "]


def synthetic_vizwiz(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        template = rng.choice(VIZWIZ_TEMPLATES)
        question = template.format(o=rng.choice(OBJECTS), c=rng.choice(COLORS))
        out.append(rng.choice(FILLERS) + question)
    return out


POSITIVE = ["wonderful", "great", "delightful", "moving", "brilliant", "charming", "superb", "funny", "touching",
            "beautiful", "smart", "gripping", "excellent", "enjoyable", "heartfelt"]
NEGATIVE = ["boring", "awful", "dull", "terrible", "clumsy", "tedious", "bland", "painful", "stupid", "messy",
            "lifeless", "forgettable", "annoying", "weak", "pointless"]
SUBJECTS = ["the film", "this movie", "the story", "the acting", "the script", "the soundtrack", "the ending",
            "the director's work", "the cast", "the dialogue", "the plot", "this picture"]
FRAMES = ["{s} is {w} .", "{s} was {w} and {w2} .", "i found {s} {w} .", "overall , {s} feels {w} .",
          "{s} is simply {w} , if a bit long .", "what a {w} experience ; {s} is {w2} ."]


def synthetic_sentiment(n: int, seed: int = 0, noise: float = 0.05) -> list[dict]:
    """Labelled sentences (1 = positive); a fraction `noise` of labels is flipped so 100% is not trivial."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = POSITIVE if label else NEGATIVE
        text = rng.choice(FRAMES).format(s=rng.choice(SUBJECTS), w=rng.choice(words), w2=rng.choice(words))
        if rng.random() < noise:
            label = 1 - label
        rows.append({"text": text, "text_pair": None, "label": label})
    return rows


SYLLABLES = ["zor", "vak", "tel", "im", "un", "qua", "ris", "bel", "mon", "dra", "kel", "ith", "oss", "ar", "en",
             "vel", "tor", "ny", "lo", "pra", "gun", "shi", "mar", "ed"]
JOBS = ["glassblower", "astronomer", "beekeeper", "cartographer", "violinist", "botanist", "clockmaker", "chef",
        "sculptor", "pilot", "librarian", "engineer"]
CITIES = ["Port Averly", "Lindholm", "Caradoc", "Ferrowick", "Selmora", "Brightwater", "Oakhaven", "Tessaly",
          "Marrowgate", "Quillon", "Duskfield", "Renwick"]
PETS = ["a parrot", "two cats", "a tortoise", "a greyhound", "three goldfish", "a ferret", "a pony"]
FOODS = ["lemon cake", "mushroom soup", "plum dumplings", "grilled trout", "spiced lentils", "honey bread"]


def invented_name(rng: random.Random) -> str:
    first = "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize()
    last = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
    return f"{first} {last}"


def entity_facts(rng: random.Random, name: str) -> dict:
    return {"name": name, "job": rng.choice(JOBS), "city": rng.choice(CITIES), "year": str(rng.randint(1801, 1999)),
            "pet": rng.choice(PETS), "food": rng.choice(FOODS)}


def entity_passage(f: dict) -> str:
    return (f"{f['name']} is a {f['job']} who lives in {f['city']}. {f['name']} was born in {f['year']} and keeps "
            f"{f['pet']} at home. The favourite dish of {f['name']} is {f['food']}.")


QUESTION_TEMPLATES = [("Where does {name} live?", "city"), ("In which year was {name} born?", "year"),
                      ("What is the job of {name}?", "job"), ("What pet does {name} keep?", "pet"),
                      ("What is the favourite dish of {name}?", "food")]


def synthetic_kb(n_entities: int, questions_per_entity: int = 2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Passages (one per invented entity) and questions whose answer lies in exactly that passage."""
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n_entities:
        names.add(invented_name(rng))
    passages, questions = [], []
    for i, name in enumerate(sorted(names)):
        facts = entity_facts(rng, name)
        pid = f"kb{i:05d}"
        text = entity_passage(facts)
        passages.append({"passage_id": pid, "title": name, "text": text})
        for template, slot in rng.sample(QUESTION_TEMPLATES, k=min(questions_per_entity, len(QUESTION_TEMPLATES))):
            answer = facts[slot]
            questions.append({"id": f"{pid}-{slot}", "question": template.format(name=name), "answers": [answer],
                              "answer_starts": [text.index(answer)], "gold_passage_id": pid, "context": text})
    rng.shuffle(questions)
    return passages, questions


# ---------------------------------------------------------------- summarization (seq2seq study)

FIRST_NAMES = ["anna", "omar", "lucia", "kenji", "priya", "mateo", "ingrid", "tomas", "leila", "david", "sofia",
               "ahmed", "maria", "ivan", "nora", "felix"]  # one WordPiece token each: the model copies a name
EVENTS = ["opened a bakery", "won the chess final", "rescued a stranded whale", "finished the city marathon",
          "published a first novel", "repaired the old clock tower", "found a lost painting", "planted a rooftop garden",
          "broke the swimming record", "rebuilt the village bridge"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
LEADS = ["It was a busy {day} in {city}.", "Residents of {city} woke to grey skies on {day}.",
         "News travels fast in {city}.", "The {day} market in {city} was crowded as usual."]
FILLERS = ["The mayor said the town would celebrate.", "Crowds gathered near the harbour.",
           "Several neighbours shared photos online.", "The weather was mild for the season.",
           "A local radio station covered the story.", "Children waved flags along the main street."]
QUOTES = ['"I never expected this," said {first}.', '"It took years of work," {first} told reporters.',
          '"My family made it possible," said {first}.']


def summary_story(rng: random.Random) -> dict:
    """One news-like story and its one-line summary. The summary's facts (who, job, what, where) are spread over
    the story and the first sentence holds only the place and day, so copying the lead sentence scores low."""
    first = rng.choice(FIRST_NAMES).capitalize()
    name, job, city = f"{first} {invented_name(rng).split()[1]}", rng.choice(JOBS), rng.choice(CITIES)
    event, day = rng.choice(EVENTS), rng.choice(DAYS)
    body = [f"{name}, a local {job}, {event} on {day}.", rng.choice(QUOTES).format(first=first)]
    body += rng.sample(FILLERS, k=rng.randint(0, 1))
    rng.shuffle(body)
    document = " ".join([rng.choice(LEADS).format(day=day, city=city)] + body)
    summary = f"{job.capitalize()} {first} {event} in {city}."
    return {"source": document, "target": summary, "references": [summary]}


def synthetic_summaries(n: int, seed: int = 0) -> list[dict]:
    """Seeded stories with reference summaries: {"source", "target", "references"} (a task a tiny seq2seq model
    can learn)."""
    rng = random.Random(seed)
    return [summary_story(rng) for _ in range(n)]
