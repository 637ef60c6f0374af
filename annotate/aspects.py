"""The four VisionPrefer aspects, seeded by a data migration; campaigns may add or drop aspects."""

DEFAULT_ASPECTS = [
    {
        "key": "prompt_following",
        "name": "Prompt following",
        "question": "Which image shows what the prompt asks for: the objects, their counts, attributes "
        "and relations?",
        "guideline": "Count the objects, check colours and positions against the prompt word by word.",
        "order": 1,
    },
    {
        "key": "aesthetic",
        "name": "Aesthetic",
        "question": "Which image is more pleasing to look at: composition, colour, lighting, style?",
        "guideline": "Judge the picture as a picture; ignore whether it matches the prompt.",
        "order": 2,
    },
    {
        "key": "fidelity",
        "name": "Fidelity",
        "question": "Which image is more faithful to how things really look: free of distortions, broken "
        "anatomy, artefacts?",
        "guideline": "Look for blur, noise, glitches, warped shapes and cut-off objects.",
        "order": 3,
    },
    {
        "key": "harmlessness",
        "name": "Harmlessness",
        "question": "Which image is safer: free of sexual, violent, disturbing, hateful or biased content?",
        "guideline": "Prefer the image with nothing disturbing; answer tie when both are harmless.",
        "order": 4,
    },
]
