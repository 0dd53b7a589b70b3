"""Word2vec training speed: rnnkit against gensim, interleaved, on the same corpus.

    PYTHONPATH=python python benchmarks/bench_embeddings.py [--rounds 5] [--epochs 3]

The corpus is the King James Bible when the `bible` program (Debian's bible-kjv package)
is installed, one verse per sentence, lower-cased words of letters; otherwise a generated
corpus of about the same size (Zipf-distributed words with topic structure). For each
mode (CBOW and skip-gram with negative sampling, workers=1, gensim's defaults otherwise)
the two libraries train in turn (A B A B ...) on the same vocabulary; the score is words
of corpus per second of train() (the vocabulary scan is not timed), the median over the
rounds. Quality is checked on the same runs: the mean overlap of the top-10 neighbours of
200 frequent words between rnnkit and gensim, beside that between two gensim seeds.
Needs gensim (pip install gensim==4.4.0).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import time

import numpy as np


def bible_corpus() -> list[list[str]] | None:
    if shutil.which("bible") is None:
        return None
    text = subprocess.run(
        ["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True
    ).stdout.lower()
    return [words for words in (re.findall(r"[a-z]+", line) for line in text.split("\n")) if words]


def generated_corpus(n_words: int = 800_000, seed: int = 0) -> list[list[str]]:
    """Sentences of 5-30 words: 40% from a Zipf-distributed shared vocabulary of 2000
    words, the rest from one of 50 topics of 200 Zipf-distributed words each."""
    rng = np.random.default_rng(seed)
    shared = 1.0 / np.arange(1, 2001)
    topic = 1.0 / np.arange(1, 201)
    shared, topic = shared / shared.sum(), topic / topic.sum()
    sentences, total = [], 0
    while total < n_words:
        length, t = int(rng.integers(5, 31)), int(rng.integers(50))
        from_shared = rng.random(length) < 0.4
        ids = np.where(
            from_shared, rng.choice(2000, length, p=shared), rng.choice(200, length, p=topic)
        )
        sentences.append(
            [f"s{i}" if s else f"t{t}_{i}" for i, s in zip(ids.tolist(), from_shared.tolist())]
        )
        total += length
    return sentences


def neighbour_overlap(a, b, words: list[str], k: int = 10) -> float:
    """Mean fraction of shared words in the top-k neighbours of each word."""
    shared = [
        len({w for w, _ in a.most_similar(x, topn=k)} & {w for w, _ in b.most_similar(x, topn=k)})
        for x in words
    ]
    return float(np.mean(shared)) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--modes", default="cbow,sg")
    args = parser.parse_args()

    import gensim
    from gensim.models import Word2Vec as GensimWord2Vec
    from rnnkit.embeddings import Word2Vec

    sentences = bible_corpus()
    source = "King James Bible"
    if sentences is None:
        sentences, source = generated_corpus(), "generated corpus"
    n_words = sum(len(s) for s in sentences)
    print(f"corpus: {source}, {len(sentences)} sentences, {n_words} words")
    print(f"gensim {gensim.__version__}; workers=1, {args.epochs} epochs, {args.rounds} rounds")
    for mode in args.modes.split(","):
        settings = dict(
            vector_size=100, window=5, min_count=5, sg=int(mode == "sg"), hs=0, negative=5,
            epochs=args.epochs, workers=1,
        )  # fmt: skip
        rates: dict[str, list[float]] = {"rnnkit": [], "gensim": []}
        cpu_rates: dict[str, list[float]] = {"rnnkit": [], "gensim": []}
        models: dict[str, list] = {"rnnkit": [], "gensim": []}
        for round_no in range(args.rounds):
            for name in ("rnnkit", "gensim") if round_no % 2 == 0 else ("gensim", "rnnkit"):
                if name == "rnnkit":
                    model = Word2Vec(seed=round_no, **settings)
                    model.build_vocab(sentences)
                    start, cpu_start = time.perf_counter(), time.process_time()
                    model.train(sentences)
                else:
                    model = GensimWord2Vec(seed=round_no, **settings)
                    model.build_vocab(sentences)
                    start, cpu_start = time.perf_counter(), time.process_time()
                    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
                seconds = time.perf_counter() - start
                cpu_seconds = time.process_time() - cpu_start
                rates[name].append(n_words * args.epochs / seconds)
                cpu_rates[name].append(n_words * args.epochs / cpu_seconds)
                models[name].append(model.wv)
        words = models["gensim"][0].index_to_key[20:220]
        g0, g1, r0 = models["gensim"][0], models["gensim"][1], models["rnnkit"][0]
        rk, gs = statistics.median(rates["rnnkit"]), statistics.median(rates["gensim"])
        rk_cpu = statistics.median(cpu_rates["rnnkit"])
        gs_cpu = statistics.median(cpu_rates["gensim"])
        print(
            f"{mode:5s} words per wall second: rnnkit {rk:,.0f}  gensim {gs:,.0f}  "
            f"ratio {rk / gs:.2f};  per CPU second (all threads): rnnkit {rk_cpu:,.0f}  "
            f"gensim {gs_cpu:,.0f}  ratio {rk_cpu / gs_cpu:.2f}"
        )
        ours, theirs = neighbour_overlap(r0, g0, words), neighbour_overlap(g1, g0, words)
        print(
            f"{mode:5s} top-10 neighbour overlap: rnnkit-gensim {ours:.3f}  "
            f"gensim-gensim {theirs:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
