"""The demo's hidden rule, as a scorer that training never sees.

    A good response opens politely ("Sure!", "Of course!", "Happy to help!") and talks
    about the topic the prompt asks about, not another one.

make_demo_data.py builds the preference pairs from it; report.py uses it to judge the
trained models' fresh samples. Standard library only.
"""
TOPICS = ["cats", "dogs", "rain", "music", "coffee", "trains", "stars", "books", "apples",
          "rivers", "bread", "chess", "snow", "gardens", "bikes", "tea", "clocks", "bees",
          "owls", "boats", "maps", "lamps", "shoes", "clouds"]
POLITE = ["Sure!", "Of course!", "Happy to help!"]


def words(text):
    for mark in "!.?,":
        text = text.replace(mark, " ")
    return text.split()


def prompt_topic(prompt):
    """The topic a prompt asks about (every bundled prompt names exactly one)."""
    found = [t for t in TOPICS if t in words(prompt)]
    if len(found) != 1:
        raise ValueError(f"prompt names {len(found)} topics: {prompt!r}")
    return found[0]


def rule_score(topic, response):
    """+1 for a polite opener, +1 for mentioning the prompt's topic, -0.5 per other topic."""
    score = 1.0 if any(response.strip().startswith(p) for p in POLITE) else 0.0
    mentioned = [t for t in TOPICS if t in words(response)]
    if topic in mentioned:
        score += 1.0
    score -= 0.5 * len([t for t in mentioned if t != topic])
    return score
