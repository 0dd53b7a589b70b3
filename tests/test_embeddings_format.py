"""rnnkit.embeddings.KeyedVectors: lookups, similarity queries, and the word2vec / GloVe /
fastText vector files, including every malformed file named in an error."""

from __future__ import annotations

import numpy as np
import pytest
from rnnkit.embeddings import KeyedVectors


@pytest.fixture
def kv() -> KeyedVectors:
    # Two clusters: "cat"/"dog" and "car"/"bus"; "kitten" - "cat" + "car" ~ "car"'s kin.
    vectors = np.array(
        [[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [0.0, 1.0, 0.1], [0.1, 0.9, 0.0], [1.0, 0.0, 0.5]],
        dtype=np.float32,
    )
    return KeyedVectors(["cat", "dog", "car", "bus", "kitten"], vectors)


def test_lookups(kv):
    assert len(kv) == 5 and "cat" in kv and "cow" not in kv and 3 not in kv
    assert kv.vector_size == 3 and kv.key_to_index["car"] == 2
    np.testing.assert_array_equal(kv["dog"], kv.vectors[1])
    assert kv[["cat", "bus"]].shape == (2, 3)
    np.testing.assert_array_equal(kv[["cat", "bus"]], kv.vectors[[0, 3]])
    with pytest.raises(KeyError, match="'cow' not in vocabulary"):
        kv["cow"]
    with pytest.raises(KeyError, match="'cow'"):
        kv[["cat", "cow"]]


def test_similarity_and_most_similar(kv):
    unit = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    assert kv.similarity("cat", "dog") == pytest.approx(float(unit[0] @ unit[1]), rel=1e-6)
    top = kv.most_similar("cat", topn=2)
    assert [w for w, _ in top] == ["dog", "kitten"]
    assert top[0][1] == pytest.approx(float(unit[0] @ unit[1]), rel=1e-6)
    # 3CosAdd: the query words are left out of the answer.
    answer = kv.most_similar(positive=["kitten", "car"], negative=["cat"], topn=1)
    assert answer[0][0] == "bus"
    assert len(kv.most_similar("cat", topn=10)) == 4
    assert kv.most_similar(positive=[kv["cat"]], topn=1)[0][0] == "cat"  # a raw vector
    with pytest.raises(ValueError, match="at least one word"):
        kv.most_similar()
    with pytest.raises(KeyError, match="'cow'"):
        kv.most_similar(["cow"])
    with pytest.raises(ValueError, match="topn"):
        kv.most_similar("cat", topn=-1)


def test_constructor_checks():
    with pytest.raises(ValueError, match="2 words but vectors has 3 rows"):
        KeyedVectors(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(TypeError, match="must be a str"):
        KeyedVectors(["a", 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="twice"):
        KeyedVectors(["a", "a"], np.zeros((2, 2)))


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_is_bit_exact(tmp_path, binary):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)] + ["Zürich", "日本"]
    values = rng.standard_normal((52, 7)) * 10.0 ** rng.integers(-9, 9, (52, 1))
    values = values.astype(np.float32)
    path = tmp_path / "v.bin"
    KeyedVectors(words, values).save_word2vec_format(path, binary=binary)
    loaded = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert loaded.index_to_key == words
    assert loaded.vectors.tobytes() == values.tobytes()


def test_c_word2vec_binary_and_fasttext_vec_load(tmp_path):
    # The C tool writes a newline after each binary vector; fastText ends rows with a space.
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "c.bin"
    path.write_bytes(b"2 3\n" + b"".join(w + b" " + v.tobytes() + b"\n" for w, v in
                                          zip([b"one", b"two"], values)))  # fmt: skip
    kv = KeyedVectors.load_word2vec_format(path, binary=True)
    assert kv.index_to_key == ["one", "two"] and np.array_equal(kv.vectors, values)
    path = tmp_path / "ft.vec"
    path.write_text("2 3\none 0 1 2 \ntwo 3 4 5 \n", encoding="utf-8")
    kv = KeyedVectors.load_word2vec_format(path)
    assert kv.index_to_key == ["one", "two"] and np.array_equal(kv.vectors, values)


def test_glove_without_header(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.5 -1.25\nof 2 3\n", encoding="utf-8")
    kv = KeyedVectors.load_word2vec_format(path, no_header=True)
    assert kv.index_to_key == ["the", "of"]
    np.testing.assert_array_equal(kv.vectors, [[0.5, -1.25], [2, 3]])


def test_a_word_listed_twice_keeps_its_first_vector(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("3 1\na 1\nb 2\na 3\n", encoding="utf-8")
    kv = KeyedVectors.load_word2vec_format(path)
    assert kv.index_to_key == ["a", "b"] and kv.vectors.ravel().tolist() == [1, 2]


def binary_file(count: int, dim: int, words: list[bytes], tail: bytes = b"") -> bytes:
    body = b"".join(w + b" " + np.ones(dim, "<f4").tobytes() for w in words)
    return f"{count} {dim}\n".encode() + body + tail


@pytest.mark.parametrize(
    "content, binary, error, match",
    [
        # Long words: the file passes the size check against its header, then ends early.
        (binary_file(2, 4, [b"a" * 20, b"b"])[:-3], True, EOFError, "ends in word 2 of the 2"),
        (binary_file(3, 4, [b"a" * 20, b"b"], b"c 1234"), True, EOFError, "in word 3 of the 3"),
        (binary_file(30, 4, [b"a", b"b"]), True, EOFError, "claims 30 words of 4 floats"),
        (b"3 2\nlongword 1 2\nb 3 4\n", False, EOFError, "ends at line 3, but the header claims 3"),
        (b"30 2\na 1 2\nb 3 4\n", False, EOFError, "claims 30 words of 2 floats"),
        (b"2 2\na 1 2\nb 3 4 5\n", False, ValueError, "line 3 \\(word 'b'\\) has 3 floats"),
        (b"2 2\na 1 2\nb 3\n", False, ValueError, "line 3 \\(word 'b'\\) has 1 floats"),
        (b"1 2\na 1 x\n", False, ValueError, "line 2"),
        (b"10000000000000 300\na 1\n", False, EOFError, "claims 10000000000000 words"),
        (b"1000000000 1000000000\n", True, EOFError, "claims 1000000000 words"),
        (b"hello world\n", False, ValueError, "line 1 must be the header"),
        (b"3\n", False, ValueError, "line 1 must be the header"),
        (b"-1 3\n", False, ValueError, "line 1 must be the header"),
        (b"2 0\n", False, ValueError, "line 1 must be the header"),
        (b"", False, ValueError, "empty"),
        (b"1 2\n\xff\xfe 1 2\n", False, UnicodeDecodeError, "line 2"),
        (binary_file(1, 2, [b"\xc3"]), True, UnicodeDecodeError, "word 1"),
    ],
)
def test_malformed_files_raise_naming_the_problem(tmp_path, content, binary, error, match):
    path = tmp_path / "bad.vec"
    path.write_bytes(content)
    with pytest.raises(error, match=match):
        KeyedVectors.load_word2vec_format(path, binary=binary)


def test_non_utf8_loads_with_replace(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"1 2\ncaf\xe9 1 2\n")
    kv = KeyedVectors.load_word2vec_format(path, unicode_errors="replace")
    assert kv.index_to_key == ["caf\ufffd"]


def test_glove_rows_of_unequal_length_raise(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("a 1 2\nb 1 2 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2 \\(word 'b'\\) has 3 floats, expected 2"):
        KeyedVectors.load_word2vec_format(path, no_header=True)
    with pytest.raises(ValueError, match="only for text"):
        KeyedVectors.load_word2vec_format(path, binary=True, no_header=True)
