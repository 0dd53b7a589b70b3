"""Doc2vec training speed and quality: rnnkit against gensim, interleaved, on gensim's Lee
corpus.

    PYTHONPATH=python python benchmarks/bench_doc2vec.py [--rounds 5] [--repeat 4]
        [--epochs 10] [--seeds 1] [--workers 1]

Speed: gensim's lee_background.cor (300 news texts) repeated --repeat times, a tag per
copy. For PV-DM and PV-DBOW (vector_size=100, min_count=2, gensim's defaults otherwise)
the two libraries train in turn (A B A B ...) on the same corpus; the score is words of
corpus per second of train() (the vocabulary scan is not timed), wall and CPU time, the
median over the rounds (--rounds 0 skips it).

Quality: one more pair of models on the plain corpus per seed (the mean over seeds
0..n-1): the share of training documents whose inferred vector finds the document itself
first, and among the first 3, of the document vectors. Needs gensim (pip install
gensim==4.4.0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def lee_texts() -> list[list[str]]:
    import gensim

    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    with open(os.path.join(path, "lee_background.cor"), encoding="utf8") as lines:
        return [line.split() for line in lines]


def libraries() -> dict:
    from gensim.models import doc2vec as gensim_doc2vec
    from rnnkit import embeddings

    return {"rnnkit": embeddings, "gensim": gensim_doc2vec}


def train_seconds(
    library, texts: list[list[str]], dm: int, epochs: int, workers: int
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process) of train()."""
    documents = [library.TaggedDocument(words, [i]) for i, words in enumerate(texts)]
    model = library.Doc2Vec(dm=dm, vector_size=100, min_count=2, epochs=epochs, workers=workers)
    model.build_vocab(documents)
    start, start_cpu = time.perf_counter(), time.process_time()
    if library.__name__.startswith("gensim"):
        model.train(documents, total_examples=len(documents), epochs=epochs)
    else:
        model.train(documents, epochs=epochs)
    return time.perf_counter() - start, time.process_time() - start_cpu


def self_retrieval(
    library, texts: list[list[str]], dm: int, epochs: int, seed: int, workers: int
) -> tuple[float, float]:
    documents = [library.TaggedDocument(words, [i]) for i, words in enumerate(texts)]
    model = library.Doc2Vec(
        documents, dm=dm, vector_size=100, min_count=2, epochs=epochs, workers=workers, seed=seed
    )
    first = top3 = 0
    for i, document in enumerate(documents):
        nearest = model.dv.most_similar([model.infer_vector(document.words)], topn=3)
        tags = [tag for tag, _ in nearest]
        first += tags[0] == i
        top3 += i in tags
    return first / len(documents), top3 / len(documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1, help="quality: mean over seeds 0..n-1")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    texts = lee_texts()
    corpus = texts * args.repeat
    words = sum(len(t) for t in corpus) * args.epochs
    print(f"corpus: {len(corpus)} documents, {words // args.epochs} words, {args.epochs} epochs")
    print("| mode | rnnkit words/s | gensim words/s | rnnkit / gensim (wall) | (CPU) | "
          "self-retrieval top-1 (rnnkit / gensim) | top-3 (rnnkit / gensim) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for dm, name in ((1, "PV-DM"), (0, "PV-DBOW")):
        rates: dict[str, list[float]] = {"rnnkit": [], "gensim": []}
        cpu_rates: dict[str, list[float]] = {"rnnkit": [], "gensim": []}
        for _ in range(args.rounds):
            for label, library in libraries().items():
                wall, cpu = train_seconds(library, corpus, dm, args.epochs, args.workers)
                rates[label].append(words / wall)
                cpu_rates[label].append(words / cpu)
        if args.rounds > 0:
            ours, theirs = (statistics.median(rates[k]) for k in ("rnnkit", "gensim"))
            ours_cpu, theirs_cpu = (statistics.median(cpu_rates[k]) for k in ("rnnkit", "gensim"))
            speed = (
                f"{ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} | {ours_cpu / theirs_cpu:.2f}"
            )
        else:
            speed = "- | - | - | -"
        quality = {}
        for label, library in libraries().items():
            runs = [
                self_retrieval(library, texts, dm, args.epochs, seed, args.workers)
                for seed in range(args.seeds)
            ]
            quality[label] = [statistics.mean(run[k] for run in runs) for k in (0, 1)]
        print(
            f"| {name} | {speed} | "
            f"{quality['rnnkit'][0]:.3f} / {quality['gensim'][0]:.3f} | "
            f"{quality['rnnkit'][1]:.3f} / {quality['gensim'][1]:.3f} |"
        )


if __name__ == "__main__":
    main()
