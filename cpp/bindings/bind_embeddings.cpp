// rnnkit._core.Word2VecTrainer: the word2vec and doc2vec training core on NumPy arrays.
// Python (rnnkit.embeddings) builds the vocabulary tables; the trainer checks every table
// once when constructed (shapes, dtypes, index ranges, so that no id read in the hot loop
// can leave its matrix) and each batch when it is trained, then releases the GIL and
// trains.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "rnnkit/doc2vec.h"
#include "rnnkit/threads.h"
#include "rnnkit/word2vec.h"

namespace py = pybind11;
namespace emb = rnnkit::embeddings;
using i64 = std::int64_t;

namespace {

// A shape as Python prints it: (3, 4), (5,).
std::string shape_str(const py::array& a) { return py::str(a.attr("shape")); }

// A C-contiguous array of dtype T and the given shape (-1: any extent); writeable if asked.
template <typename T>
T* checked(const py::array& a, const char* name, i64 rows, i64 cols, bool writeable) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    throw py::type_error(std::string(name) + " must have dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  }
  const bool ok_shape = cols < 0 ? a.ndim() == 1 && (rows < 0 || a.shape(0) == rows)
                                 : a.ndim() == 2 && a.shape(0) == rows && a.shape(1) == cols;
  if (!ok_shape) {
    throw py::value_error(std::string(name) + " has shape " + shape_str(a) + ", expected (" +
                          (rows < 0 ? std::string("n") : std::to_string(rows)) +
                          (cols < 0 ? ",)" : ", " + std::to_string(cols) + ")"));
  }
  const int need = py::array::c_style | (writeable ? py::detail::npy_api::NPY_ARRAY_WRITEABLE_ : 0);
  if ((a.flags() & need) != need || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    throw py::value_error(std::string(name) + " must be an aligned C-contiguous" +
                          (writeable ? " writeable" : "") + " array");
  }
  return static_cast<T*>(const_cast<void*>(a.data()));
}

class Word2VecTrainer {
 public:
  Word2VecTrainer(py::array syn0, py::object syn1neg, py::object syn1, py::object cum_table,
                  py::array sample_int, py::object codes, py::object points,
                  py::object code_lengths, bool skip_gram, int negative, int window,
                  bool subsample)
      : keep_{syn0, syn1neg, syn1, cum_table, sample_int, codes, points, code_lengths} {
    if (syn0.ndim() != 2 || syn0.shape(0) < 1 || syn0.shape(1) < 1) {
      throw py::value_error("syn0 must be 2-D (V, D) with V, D >= 1, got shape " +
                            shape_str(syn0));
    }
    if (window < 1) throw py::value_error("window must be >= 1, got " + std::to_string(window));
    if (negative < 0) {
      throw py::value_error("negative must be >= 0, got " + std::to_string(negative));
    }
    const i64 V = syn0.shape(0), D = syn0.shape(1);
    model_.vocab_size = V;
    model_.dim = D;
    model_.syn0 = checked<float>(syn0, "syn0", V, D, true);
    model_.sample_int = checked<std::uint32_t>(sample_int, "sample_int", V, -1, false);
    options_.skip_gram = skip_gram;
    options_.negative = negative;
    options_.window = window;
    options_.subsample = subsample;
    if (negative > 0) {
      model_.syn1neg = checked<float>(syn1neg.cast<py::array>(), "syn1neg", V, D, true);
      model_.cum_table = checked<std::uint32_t>(cum_table.cast<py::array>(), "cum_table", V, -1,
                                                false);
      for (i64 w = 1; w < V; ++w) {
        if (model_.cum_table[w] < model_.cum_table[w - 1]) {
          throw py::value_error("cum_table must be nondecreasing (index " + std::to_string(w) +
                                ")");
        }
      }
      if (model_.cum_table[V - 1] == 0 || model_.cum_table[V - 1] >= (1u << 31)) {
        throw py::value_error("cum_table must end in 1..2^31 - 1");
      }
      negative_guide_ =
          emb::build_negative_guide(model_.cum_table, V, &model_.negative_guide_shift);
      model_.negative_guide = negative_guide_.data();
    }
    options_.hierarchical_softmax = !code_lengths.is_none();
    if (options_.hierarchical_softmax) {
      const py::array codes_a = codes.cast<py::array>();
      const i64 L = codes_a.ndim() == 2 ? codes_a.shape(1) : 0;
      model_.syn1 = checked<float>(syn1.cast<py::array>(), "syn1", V - 1, D, true);
      model_.codes = checked<std::uint8_t>(codes_a, "codes", V, L, false);
      model_.points = checked<std::uint32_t>(points.cast<py::array>(), "points", V, L, false);
      model_.code_lengths =
          checked<std::int32_t>(code_lengths.cast<py::array>(), "code_lengths", V, -1, false);
      model_.max_code_length = L;
      for (i64 w = 0; w < V; ++w) {
        const std::int32_t len = model_.code_lengths[w];
        if (len < 0 || len > L) {
          throw py::value_error("code_lengths[" + std::to_string(w) + "] = " +
                                std::to_string(len) + " is outside 0.." + std::to_string(L));
        }
        for (i64 b = 0; b < len; ++b) {
          if (model_.codes[w * L + b] > 1 || model_.points[w * L + b] >= V - 1) {
            throw py::value_error("codes/points of word " + std::to_string(w) +
                                  " must be bits and inner-node ids < V - 1");
          }
        }
      }
    }
    if (negative == 0 && !options_.hierarchical_softmax) {
      throw py::value_error("one of negative > 0 or hierarchical softmax must be on");
    }
  }

  // Trains one batch; returns the words trained on (after dropping). ids (n,) int32 in
  // -1..V-1; sentence_ends (S,) int64 nondecreasing, last = n; rng_states (workers,) uint64.
  i64 train_batch(const py::array& ids, const py::array& sentence_ends, double alpha,
                  const py::array& rng_states, int workers) {
    std::uint64_t* states = checked_run(alpha, rng_states, workers);
    const emb::Word2VecBatch batch = checked_batch(ids, sentence_ends);
    py::gil_scoped_release release;
    // One batch at a time per trainer: the workers' buffers are the trainer's.
    const std::lock_guard<std::mutex> lock(busy_);
    return emb::word2vec_train_batch(model_, options_, batch, static_cast<float>(alpha), states,
                                     workers, workspace_);
  }

  // Trains one batch of documents (doc2vec) with this trainer's word tables: the words as
  // train_batch's, the tags of document s are tags[tag_ends[s-1]..tag_ends[s]) (int32
  // rows of doctag_vectors (n_docs, D) float32), tag_ends (S,) int64.
  i64 train_documents(const py::array& ids, const py::array& sentence_ends,
                      const py::array& tags, const py::array& tag_ends,
                      const py::array& doctag_vectors, double alpha, const py::array& rng_states,
                      int workers, bool dm, bool dm_mean, bool dbow_words, bool learn_words,
                      bool learn_hidden, bool learn_doctags) {
    std::uint64_t* states = checked_run(alpha, rng_states, workers);
    emb::Doc2VecBatch batch;
    batch.words = checked_batch(ids, sentence_ends);
    if (doctag_vectors.ndim() != 2 || doctag_vectors.shape(0) < 1) {
      throw py::value_error("doctag_vectors must be 2-D (n_docs, D) with n_docs >= 1, got shape " +
                            shape_str(doctag_vectors));
    }
    const i64 n_docs = doctag_vectors.shape(0);
    float* docs = checked<float>(doctag_vectors, "doctag_vectors", n_docs, model_.dim, true);
    batch.tags = checked<std::int32_t>(tags, "tags", -1, -1, false);
    batch.tag_ends = checked<i64>(tag_ends, "tag_ends", batch.words.n_sentences, -1, false);
    check_ends(batch.tag_ends, batch.words.n_sentences, tags.shape(0), "tag_ends", "tags");
    for (i64 t = 0; t < tags.shape(0); ++t) {
      if (batch.tags[t] < 0 || batch.tags[t] >= n_docs) {
        throw py::value_error("tags[" + std::to_string(t) + "] = " +
                              std::to_string(batch.tags[t]) + " is outside 0.." +
                              std::to_string(n_docs - 1));
      }
    }
    emb::Doc2VecOptions options;
    options.word = options_;
    options.dm = dm;
    options.dm_mean = dm_mean;
    options.dbow_words = dbow_words;
    options.learn_words = learn_words;
    options.learn_hidden = learn_hidden;
    options.learn_doctags = learn_doctags;
    py::gil_scoped_release release;
    const std::lock_guard<std::mutex> lock(busy_);
    return emb::doc2vec_train_batch(model_, docs, n_docs, options, batch,
                                    static_cast<float>(alpha), states, workers, workspace_);
  }

 private:
  // Checks a run's learning rate and worker count; returns the workers' RNG states.
  static std::uint64_t* checked_run(double alpha, const py::array& rng_states, int workers) {
    if (workers < 1 || workers > rnnkit::kMaxThreads) {
      throw py::value_error("workers must be in 1.." + std::to_string(rnnkit::kMaxThreads) +
                            ", got " + std::to_string(workers));
    }
    if (!std::isfinite(alpha) || alpha < 0) {
      throw py::value_error("alpha must be finite and >= 0, got " + std::to_string(alpha));
    }
    return checked<std::uint64_t>(rng_states, "rng_states", workers, -1, true);
  }

  // ends (S,) must be nondecreasing in 0..n and end at n = len(<of>).
  static void check_ends(const i64* ends, i64 S, i64 n, const char* name, const char* of) {
    for (i64 s = 0; s < S; ++s) {
      if (ends[s] < (s > 0 ? ends[s - 1] : 0) || ends[s] > n) {
        throw py::value_error(std::string(name) + " must be nondecreasing in 0..len(" + of +
                              ")");
      }
    }
    if ((S == 0 && n != 0) || (S > 0 && ends[S - 1] != n)) {
      throw py::value_error(std::string(name) + " must end at len(" + of + ") = " +
                            std::to_string(n));
    }
  }

  // The sentences of a batch, checked: ids (n,) int32 in -1..V-1, sentence_ends (S,).
  emb::Word2VecBatch checked_batch(const py::array& ids, const py::array& sentence_ends) const {
    const std::int32_t* id = checked<std::int32_t>(ids, "ids", -1, -1, false);
    const i64* ends = checked<i64>(sentence_ends, "sentence_ends", -1, -1, false);
    const i64 n = ids.shape(0), S = sentence_ends.shape(0);
    check_ends(ends, S, n, "sentence_ends", "ids");
    for (i64 t = 0; t < n; ++t) {
      if (id[t] < -1 || id[t] >= model_.vocab_size) {
        throw py::value_error("ids[" + std::to_string(t) + "] = " + std::to_string(id[t]) +
                              " is outside -1.." + std::to_string(model_.vocab_size - 1));
      }
    }
    return emb::Word2VecBatch{id, ends, S};
  }

  py::object keep_[8];  // the arrays model_ points into, kept alive
  std::vector<std::uint32_t> negative_guide_;
  emb::Word2VecWorkspace workspace_;
  std::mutex busy_;
  emb::Word2VecModel model_;
  emb::Word2VecOptions options_;
};

}  // namespace

namespace rnnkit::bindings {

void bind_embeddings(py::module_& m) {
  // Test hook: the words negative sampling picks for draws x (each < cum_table[-1]).
  m.def(
      "_word2vec_negative_words",
      [](const py::array& cum_table, const py::array& draws) {
        const auto* cum = checked<std::uint32_t>(cum_table, "cum_table", -1, -1, false);
        const auto* x = checked<std::uint32_t>(draws, "draws", -1, -1, false);
        const i64 V = cum_table.shape(0), n = draws.shape(0);
        if (V < 1 || cum[V - 1] == 0 || cum[V - 1] >= (1u << 31)) {
          throw py::value_error("cum_table must be non-empty and end in 1..2^31 - 1");
        }
        for (i64 w = 1; w < V; ++w) {
          if (cum[w] < cum[w - 1]) throw py::value_error("cum_table must be nondecreasing");
        }
        emb::Word2VecModel model;
        model.vocab_size = V;
        model.cum_table = cum;
        const std::vector<std::uint32_t> guide =
            emb::build_negative_guide(cum, V, &model.negative_guide_shift);
        model.negative_guide = guide.data();
        py::array_t<std::int64_t> words(n);
        for (i64 i = 0; i < n; ++i) {
          if (x[i] >= cum[V - 1]) throw py::value_error("draws must be < cum_table[-1]");
          words.mutable_at(i) = emb::negative_word(model, x[i]);
        }
        return words;
      },
      py::arg("cum_table"), py::arg("draws"));

  py::class_<Word2VecTrainer>(m, "Word2VecTrainer",
                              "Word2vec training core over a model's arrays (internal).")
      .def(py::init<py::array, py::object, py::object, py::object, py::array, py::object,
                    py::object, py::object, bool, int, int, bool>(),
           py::arg("syn0"), py::arg("syn1neg"), py::arg("syn1"), py::arg("cum_table"),
           py::arg("sample_int"), py::arg("codes"), py::arg("points"), py::arg("code_lengths"),
           py::arg("skip_gram"), py::arg("negative"), py::arg("window"), py::arg("subsample"))
      .def("train_batch", &Word2VecTrainer::train_batch, py::arg("ids"),
           py::arg("sentence_ends"), py::arg("alpha"), py::arg("rng_states"),
           py::arg("workers"))
      .def("train_documents", &Word2VecTrainer::train_documents, py::arg("ids"),
           py::arg("sentence_ends"), py::arg("tags"), py::arg("tag_ends"),
           py::arg("doctag_vectors"), py::arg("alpha"), py::arg("rng_states"),
           py::arg("workers"), py::arg("dm"), py::arg("dm_mean"), py::arg("dbow_words"),
           py::arg("learn_words"), py::arg("learn_hidden"), py::arg("learn_doctags"));
}

}  // namespace rnnkit::bindings
