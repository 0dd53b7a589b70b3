"""Pretrained word vectors in a sentiment classifier: random, frozen and fine-tuned embeddings.

    King James Bible -> Word2Vec (skip-gram) -> KeyedVectors
    Embedding.from_keyed_vectors(kv, vocabulary) -> LSTM (with lengths) -> Linear -> 2 classes

Word2Vec learns from the 790,000 words of the King James Bible (public domain, shipped
compressed in examples/data) which words are used alike, without any labels. The labelled
task is small: sentences in the Bible's English built from templates ("the king was not
very wicked", "i despised the city but the land was pleasant"; "not" flips the word after
it, after "but" only the second clause counts, as in sentiment.py). The sentiment words
(adjectives such as good / wicked, verbs such as loved / despised) are split in two halves:
the labelled training sentences use only the first, and the classifier is tested on
held-out sentences made of the first half ("seen words") and on sentences made only of
the second ("new words"), which no labelled sentence contains.

A classifier whose embedding starts random has learnt nothing about a word it never saw
in training; pretrained vectors carry what the unlabelled corpus says about it. Three
embeddings, the rest of the model the same, over --runs seeds (each a new word split,
new sentences, new initial weights; Word2Vec is trained once, with workers=1 so that its
vectors are the same on every run):

    random      nn.Embedding(V, E), N(0, 1), trained
    frozen      Embedding.from_keyed_vectors(kv, vocab) (freeze=True): never updated
    fine-tuned  the same, freeze=False: updated with the rest of the model

    python examples/sentiment_pretrained.py                # about 2-3 minutes on 2 cores
    python examples/sentiment_pretrained.py --runs 1 --corpus-verses 5000 --w2v-epochs 2
"""

from __future__ import annotations

import argparse
import lzma
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentiment
from argtypes import ArgumentParser, add_backend_argument, file_problem, float_in, int_at_least

try:
    from rnnkit import nn
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    from rnnkit import nn
from rnnkit.embeddings import KeyedVectors, Word2Vec

DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "kjv.txt.xz"
VARIANTS = ("random", "frozen", "fine-tuned")

# --------------------------------------------------------------------------- the corpus


def read_corpus(path: Path, max_verses: int) -> list[list[str]]:
    """Lower-cased words of each line (verse) of a UTF-8 text, .xz-compressed or not; lines
    starting with '#' (the source note) are left out; ``max_verses`` 0 reads them all."""
    opener = lzma.open if path.suffix == ".xz" else open
    sentences = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            words = re.findall(r"[a-z]+", line.lower())
            if words:
                sentences.append(words)
            if len(sentences) == max_verses:
                break
    return sentences


def show_neighbours(kv: KeyedVectors, log) -> None:
    """Nearest neighbours of a few words, and two analogies (3CosAdd), as a sanity check."""
    for word in ("good", "wicked", "rejoice", "jerusalem"):
        if word in kv:
            near = ", ".join(f"{w} {s:.2f}" for w, s in kv.most_similar(positive=[word], topn=6))
            log(f"  nearest to {word!r}: {near}")
    for a, b, c in (("king", "man", "woman"), ("brother", "he", "she")):
        if all(w in kv for w in (a, b, c)):
            top = kv.most_similar(positive=[a, c], negative=[b], topn=3)
            log(f"  {a} - {b} + {c} = " + ", ".join(f"{w} {s:.2f}" for w, s in top))


# --------------------------------------------------------------------------- the labelled data

SUBJECTS = [
    "the king", "the city", "the land", "the people", "his servant", "the prophet", "her son",
    "the house", "the fruit", "the way", "the man", "the woman", "the priest", "the kingdom",
]  # fmt: skip
VERBS = ["was", "is", "became", "shall be"]
DEGREES = ["", "very", "exceeding", "most"]
# Sentiment words, each list split in two halves per run: "seen" and "new".
GOOD = [
    "good", "righteous", "holy", "blessed", "just", "upright", "faithful", "merciful", "wise",
    "glad", "pleasant", "precious", "perfect", "pure", "clean", "beautiful", "fair", "joyful",
    "gracious", "comely", "honourable", "excellent", "worthy", "kind",
]  # fmt: skip
BAD = [
    "evil", "wicked", "cursed", "unclean", "sinful", "foolish", "vile", "abominable", "bitter",
    "grievous", "ungodly", "unrighteous", "proud", "corrupt", "desolate", "vain",
    "sorrowful", "false", "froward", "perverse", "filthy", "cruel", "deceitful", "treacherous",
]  # fmt: skip
FOND = ["loved", "praised", "honoured", "comforted", "exalted", "magnified", "favoured", "esteemed"]
SCORN = ["hated", "despised", "abhorred", "forsook", "rejected", "smote", "mocked", "rebuked"]


def split_words(seed: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each list of sentiment words cut in two random halves: (seen, new)."""
    rng = np.random.default_rng(seed)
    seen, new = {}, {}
    for name, words in (("good", GOOD), ("bad", BAD), ("fond", FOND), ("scorn", SCORN)):
        order = rng.permutation(len(words))
        half = len(words) // 2
        seen[name] = [words[i] for i in order[:half]]
        new[name] = [words[i] for i in order[half:]]
    return seen, new


def _clause(rng: np.random.Generator, words: dict[str, list[str]]) -> tuple[str, int]:
    """One clause and its label (1 good, 0 bad) from the sentiment words ``words``."""
    good = bool(rng.integers(2))
    if rng.random() < 0.3:  # "i despised the city"
        verb = rng.choice(words["fond"] if good else words["scorn"])
        return f"i {verb} {rng.choice(SUBJECTS)}", int(good)
    negated = bool(rng.random() < 0.4)  # "the king was not very wicked"
    parts = [rng.choice(SUBJECTS), rng.choice(VERBS), "not" if negated else ""]
    parts += [rng.choice(DEGREES), rng.choice(words["good"] if good else words["bad"])]
    return " ".join(p for p in parts if p), int(good != negated)


def make_sentences(
    n: int, words: dict[str, list[str]], rng: np.random.Generator, exclude: set[str]
) -> list[tuple[str, int]]:
    """``n`` distinct labelled sentences not in ``exclude``; a quarter are "A but B"."""
    found: dict[str, int] = {}
    while len(found) < n:
        text, label = _clause(rng, words)
        if rng.random() < 0.25:  # "A but B": B decides, and B contradicts A
            second, label2 = _clause(rng, words)
            while label2 == label:
                second, label2 = _clause(rng, words)
            text, label = f"{text} but {second}", label2
        if text not in exclude:
            found.setdefault(text, label)
    return list(found.items())


# --------------------------------------------------------------------------- the runs


def classifier(variant: str, vocab: sentiment.Vocab, kv: KeyedVectors, args, seed: int):
    """sentiment.py's LSTM classifier with the embedding of ``variant``; also returns the
    vocabulary words that ``kv`` lacks (empty for the random embedding)."""
    model_args = argparse.Namespace(**{**vars(args), "embed": kv.vector_size, "seed": seed})
    model = sentiment.Classifier(len(vocab), model_args)
    if variant == "random":
        return model, []
    emb, missing = nn.Embedding.from_keyed_vectors(
        kv, vocab.itos, freeze=variant == "frozen", padding_idx=0, seed=seed
    )
    model.emb = model.modules[0] = emb  # the modules list is what the optimiser trains
    return model, missing


def one_run(seed: int, kv: KeyedVectors, args, log) -> dict[str, dict[str, float]]:
    """Train the three variants on one word split and one set of sentences."""
    seen, new = split_words(seed)
    rng = np.random.default_rng(seed)
    train = make_sentences(args.train_sentences, seen, rng, set())
    test_seen = make_sentences(args.test_sentences, seen, rng, {t for t, _ in train})
    test_new = make_sentences(args.test_sentences, new, rng, set())
    every_word = [t for t, _ in train + test_seen + test_new]
    vocab = sentiment.Vocab(every_word)  # the new words get rows too: untrained ones
    log(
        f"run seed {seed}: {len(train)} training sentences, held out {len(test_seen)} with "
        f"seen and {len(test_new)} with new sentiment words; new good words: "
        f"{', '.join(new['good'][:5])} ...; new bad words: {', '.join(new['bad'][:5])} ..."
    )
    fit_args = argparse.Namespace(**{**vars(args), "seed": seed})
    results = {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        model, missing = classifier(variant, vocab, kv, args, seed)
        if missing:
            log(f"  {variant}: {len(missing)} word(s) not in the vectors: {', '.join(missing)}")
        sentiment.fit(model, vocab, train, test_seen, fit_args, lambda *a, **k: None)
        results[variant] = {
            "train": sentiment.accuracy(model, vocab, train),
            "seen": sentiment.accuracy(model, vocab, test_seen),
            "new": sentiment.accuracy(model, vocab, test_new),
        }
        r = results[variant]
        log(
            f"  {variant:10s}  train acc {r['train']:.3f}  held-out acc: seen words "
            f"{r['seen']:.3f}, new words {r['new']:.3f}  ({time.perf_counter() - t0:.1f} s)"
        )
    return results


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    positive = int_at_least(1)
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="text for Word2Vec (.xz or not)")
    p.add_argument("--corpus-verses", type=int_at_least(0), default=0, help="lines used (0: all)")
    p.add_argument("--vector-size", type=positive, default=100, help="word vector size")
    p.add_argument("--w2v-epochs", type=positive, default=5, help="Word2Vec passes")
    p.add_argument("--min-count", type=positive, default=5, help="Word2Vec's rarest word count")
    p.add_argument("--train-sentences", type=positive, default=300, help="labelled, seen words")
    p.add_argument("--test-sentences", type=positive, default=200, help="per held-out set")
    p.add_argument("--runs", type=positive, default=3, help="runs, seeds --seed, --seed + 1, ...")
    p.add_argument("--hidden", type=positive, default=64, help="LSTM hidden size")
    p.add_argument("--epochs", type=positive, default=12, help="passes over the training set")
    p.add_argument("--batch-size", type=positive, default=32, help="sentences per batch")
    p.add_argument("--lr", type=float_in(0), default=5e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float_in(0), default=5.0, help="max gradient norm")
    add_backend_argument(p)
    p.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of Word2Vec and of the first run"
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Train Word2Vec, then the three classifiers per run; print and return the accuracies."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # what sentiment.Classifier and sentiment.fit read besides the options above
    args.cell, args.layers, args.bidirectional = "lstm", 1, False
    start = time.perf_counter()
    try:
        corpus = read_corpus(Path(args.corpus), args.corpus_verses)
    except (OSError, UnicodeDecodeError, lzma.LZMAError) as e:
        problem = str(e) if isinstance(e, lzma.LZMAError) else file_problem(e)
        parser.error(f"--corpus {args.corpus}: {problem}")
    log = (lambda *a, **k: None) if args.quiet else print
    n_words = sum(len(s) for s in corpus)
    if not corpus:
        parser.error(f"--corpus {args.corpus}: no words in it")
    t0 = time.perf_counter()
    try:
        w2v = Word2Vec(
            corpus, vector_size=args.vector_size, window=5, min_count=args.min_count, sg=1,
            epochs=args.w2v_epochs, workers=1, seed=args.seed,
        )  # fmt: skip
    except ValueError as e:  # no word occurs --min-count times
        parser.error(f"--corpus {args.corpus} with --min-count {args.min_count}: {e}")
    kv = w2v.wv
    log(
        f"Word2Vec (skip-gram) on {len(corpus)} verses, {n_words} words: {len(kv)} words of "
        f"{kv.vector_size} dimensions in {time.perf_counter() - t0:.1f} s"
    )
    show_neighbours(kv, log)
    runs = [one_run(seed, kv, args, log) for seed in range(args.seed, args.seed + args.runs)]
    print(f"held-out accuracy over {args.runs} run(s), mean (lowest-highest); chance is 0.5:")
    summary = {}
    for variant in VARIANTS:
        summary[variant] = {}
        cells = []
        for part in ("seen", "new"):
            values = np.array([r[variant][part] for r in runs])
            summary[variant][part] = float(values.mean())
            spread = f"({values.min():.3f}-{values.max():.3f})"
            cells.append(f"{part} words {values.mean():.3f} {spread}")
        print(f"  {variant:10s}  " + "   ".join(cells))
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {"runs": runs, "summary": summary, "vocabulary_size": len(kv)}


if __name__ == "__main__":
    main()
